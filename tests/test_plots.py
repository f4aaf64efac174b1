"""The sweep figures, drawn from small synthetic frames (nothing runs a workload here)."""

import matplotlib
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from mpslab.report.plots import STATUS_COLORS, plot_latency, plot_outcome_matrix, plot_throughput, save_figure
from mpslab.studies.sweep import summarize

ENV = dict(device="cpu", workload="seed", env_torch="2.13.0+test", env_device_name="TestCPU")
NAN = float("nan")


def frame(runs, **extra):
    """Rows like a sweep's: (mode, threads, streams, outcome, ops_per_s, p50, p99) per run."""
    return pd.DataFrame(
        [
            dict(
                ENV,
                mode=m,
                threads=t,
                streams=s,
                outcome=o,
                ops_per_s=v,
                latency_p50_ms=p50,
                latency_p99_ms=p99,
                repeat=i,
                **extra,
            )
            for i, (m, t, s, o, v, p50, p99) in enumerate(runs)
        ]
    )


def two_series(fail=False):
    runs = []
    for s, base in (("shared", 100.0), ("per-thread", 80.0)):
        for t in (1, 2, 4):
            for k, f in enumerate((0.9, 1.0, 1.2)):
                outcome = "mismatch" if fail and s == "shared" and t == 4 and k == 0 else "ok"
                runs.append(("in-process", t, s, outcome, base * t * f, 0.5 * t, 2.0 * t))
        for f in (0.95, 1.0, 1.1):
            runs.append(("batched", 4, s, "ok", base * 40 * f, 1.0, 1.5))
    return frame(runs)


def by_gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


def close(fig):
    matplotlib.pyplot.close(fig)


def test_throughput_axes_lines_bands_and_baselines():
    df = two_series()
    fig = plot_throughput(df)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert "threads" in ax.get_xlabel()
    assert ax.get_ylabel() == "operations per second (ops/s)"
    title = ax.get_title()
    assert "TestCPU" in title and "torch 2.13.0+test" in title and "workload seed" in title
    medians = by_gid(ax.lines, "median")
    assert len(medians) == 2 and len(by_gid(ax.collections, "ci-band")) == 2
    shared = [ln for ln in medians if ln.get_label() == "streams=shared"][0]
    assert list(shared.get_xdata()) == [1, 2, 4]
    assert list(shared.get_ydata()) == [100.0, 200.0, 400.0]  # medians of 0.9x, 1x, 1.2x
    baselines = by_gid(ax.lines, "baseline")
    assert sorted(ln.get_ydata()[0] for ln in baselines) == [3200.0, 4000.0]
    # each baseline is drawn in its series' colour
    colour = {ln.get_label(): ln.get_color() for ln in medians}
    base_shared = [ln for ln in baselines if ln.get_ydata()[0] == 4000.0][0]
    assert base_shared.get_color() == colour["streams=shared"] and "batch 4" in base_shared.get_label()
    assert by_gid(ax.collections, "failed") == []  # every run ok: no failure marks
    close(fig)


def test_throughput_marks_failed_points():
    fig = plot_throughput(two_series(fail=True))
    ax = fig.axes[0]
    failed = by_gid(ax.collections, "failed")
    assert len(failed) == 1
    assert failed[0].get_offsets().tolist() == [[4.0, 400.0]]
    assert "1/3" in [t.get_text() for t in ax.texts]
    close(fig)


def test_throughput_marks_a_point_where_every_run_crashed():
    df = frame(
        [
            ("in-process", 1, "shared", "ok", 100.0, 1, 2),
            ("in-process", 2, "shared", "crash", NAN, NAN, NAN),
            ("in-process", 2, "shared", "hang", NAN, NAN, NAN),
        ]
    )
    fig = plot_throughput(df)
    ax = fig.axes[0]
    failed = by_gid(ax.collections, "failed")
    assert len(failed) == 1 and failed[0].get_offsets()[:, 0].tolist() == [2.0]
    assert "2/2" in [t.get_text() for t in ax.texts]
    close(fig)


def test_throughput_reads_a_summary_as_well_as_rows():
    df = two_series(fail=True)
    a, b = plot_throughput(df), plot_throughput(summarize(df))
    ydata = lambda fig: sorted(tuple(ln.get_ydata()) for ln in fig.axes[0].lines)  # noqa: E731
    assert ydata(a) == ydata(b)
    close(a), close(b)


def test_single_series_without_baseline_and_log_y_choice():
    df = frame([("in-process", t, "shared", "ok", v, 1, 2) for t, v in ((1, 10.0), (2, 5000.0))])
    fig = plot_throughput(df, baseline=False)
    ax = fig.axes[0]
    assert [ln.get_label() for ln in by_gid(ax.lines, "median")] == ["median"]
    assert ax.get_yscale() == "log"  # 500x range
    close(fig)
    fig = plot_throughput(df, logy=False)
    assert fig.axes[0].get_yscale() == "linear"
    close(fig)


def test_throughput_refuses_a_frame_without_threaded_rows():
    with pytest.raises(ValueError, match="no threaded rows"):
        plot_throughput(frame([("batched", 4, "shared", "ok", 1.0, 1, 1)]))
    with pytest.raises(KeyError, match="ops_per_s"):
        plot_throughput(pd.DataFrame({"threads": [1]}))


def test_latency_p50_and_p99_per_series():
    fig = plot_latency(two_series())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert ax.get_ylabel() == "latency per iteration (ms)"
    p50, p99 = by_gid(ax.lines, "p50"), by_gid(ax.lines, "p99")
    assert len(p50) == len(p99) == 2
    shared50 = [ln for ln in p50 if "shared" in ln.get_label()][0]
    shared99 = [ln for ln in p99 if "shared" in ln.get_label()][0]
    assert list(shared50.get_ydata()) == [0.5, 1.0, 2.0] and list(shared99.get_ydata()) == [2.0, 4.0, 8.0]
    assert shared50.get_linestyle() == "-" and shared99.get_linestyle() == "--"
    assert "torch 2.13.0+test" in ax.get_title()
    close(fig)


def test_outcome_matrix_counts_and_colours():
    runs = [("in-process", 1, "shared", "ok", 1.0, 1, 1)] * 3
    runs += [
        ("in-process", 2, "shared", o, 1.0, 1, 1) for o in ("ok", "error", "mismatch", "mismatch", "crash", "hang")
    ]
    runs += [("batched", 2, "shared", "ok", 9.0, 1, 1)]  # not a grid point: left out
    fig = plot_outcome_matrix(frame(runs))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ok", "error", "mismatch", "crash", "hang"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["threads=1 (n=3)", "threads=2 (n=6)"]
    assert [t.get_text() for t in ax.texts] == ["3", "0", "0", "0", "0", "1", "1", "2", "1", "1"]
    cells = [p for p in ax.patches if (p.get_gid() or "").startswith("cell-")]
    assert len(cells) == 10
    mismatch = [p for p in cells if p.get_gid() == "cell-mismatch"][1]
    assert to_hex(mismatch.get_facecolor()[:3]) == STATUS_COLORS["mismatch"]
    empty = [p for p in cells if p.get_gid() == "cell-error"][0]
    assert to_hex(empty.get_facecolor()[:3]) == "#f2f2f2"
    assert "workload seed" in ax.get_title()
    close(fig)


def test_figures_save_as_png_and_svg(tmp_path):
    df = two_series(fail=True)
    for name, fig in (
        ("throughput", plot_throughput(df)),
        ("latency", plot_latency(df)),
        ("outcomes", plot_outcome_matrix(df)),
    ):
        paths = save_figure(fig, name, str(tmp_path))
        assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "svg"]
        with open(paths[0], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        with open(paths[1], encoding="utf-8") as f:
            assert "<svg" in f.read(2000)
        close(fig)


def test_edge_matrix_keeps_the_catalogue_order_and_groups_checks_per_backend():
    from mpslab.report.plots import plot_edge_matrix

    rows = []
    for backend in ("cpu", "cuda"):
        for case, ok in (("zeta_case", True), ("alpha_case", False)):
            rows.append(
                dict(
                    case=case,
                    backend=backend,
                    status="pass" if ok else "fail",
                    expected_met_alone=ok,
                    expected_met_with_others=True,
                    isolated=True,
                    healthy=None if backend == "cuda" else True,
                    env_torch="2.13.0+test",
                )
            )
    fig = plot_edge_matrix(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["zeta_case", "alpha_case"]  # first seen, not sorted
    columns = [t.get_text() for t in ax.get_xticklabels()]
    assert len(columns) == 10 and columns[:5] == [
        "cpu: as expected\n(alone)",
        "cpu: as expected\n(with others)",
        "cpu: isolated",
        "cpu: healthy",
        "cpu: status",
    ]
    assert all(c.startswith("cuda: ") for c in columns[5:])
    cells = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert ((0.5, 1.5), "fail") in cells and ((8.5, 0.5), "pass") in cells  # a missing check shows the status
    matplotlib.pyplot.close(fig)
