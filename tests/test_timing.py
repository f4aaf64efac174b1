"""Device-synchronised timers and repeated measurement."""

import pytest

from mpslab.run.backends import CpuBackend
from mpslab.run.timing import Measurement, SyncTimer, measure


class CountingBackend(CpuBackend):
    def __init__(self):
        super().__init__()
        self.syncs = 0
        self.log = []

    def synchronize(self):
        self.syncs += 1
        self.log.append("sync")


def test_timer_synchronises_before_each_clock_reading():
    b = CountingBackend()
    with SyncTimer(b) as t:
        b.log.append("work")
    assert b.log == ["sync", "work", "sync"]
    assert t.seconds >= 0


def test_measure_warms_up_then_samples_each_bracketed_by_syncs():
    b = CountingBackend()
    calls = []
    m = measure(lambda: calls.append(1), b, warmup=2, repeats=5, number=3)
    assert len(calls) == 2 + 5 * 3
    assert b.syncs == 2 * 5
    assert len(m.samples) == 5 and m.number == 3


def test_median_iqr_and_spread_warnings():
    quiet = Measurement([1.0, 1.01, 0.99, 1.0, 1.02, 0.98])
    assert quiet.median == pytest.approx(1.0)
    assert quiet.warnings == []
    noisy = Measurement([1.0, 1.2, 0.85, 1.0, 1.3, 0.9])
    assert "may be noisy" in noisy.warnings[0] or "not trustworthy" in noisy.warnings[0]
    gross = Measurement([1.0, 2.0, 0.5, 1.0, 3.0, 0.4])
    assert "not trustworthy" in gross.warnings[0]
    assert "WARNING" in str(gross)
    assert "only 2 samples" in Measurement([1.0, 2.0]).warnings[0]


@pytest.mark.parametrize(
    "kw, fragment", [({"repeats": 0}, "repeats=0"), ({"warmup": -1}, "warmup=-1"), ({"number": 1.5}, "number=1.5")]
)
def test_measure_refuses_bad_counts(kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        measure(lambda: None, "cpu", **kw)
