"""The edge cases that need a child process: exit with work queued or threads in ops,
KeyboardInterrupt in a worker or in the main thread, and MPS ``elapsed_time`` on unrecorded events.

What it is: one action per case, each starting a script from ``mpslab/studies/scripts/``
(ordinary modules, run by path under the current interpreter) and judging its exit code,
crash text and output with ``check_child``; and ``exit_with_queued_work``, the body of
``exit_with_device_work_queued`` as a plain function (device, threads, size, timeout) that
other catalogues can call too.

What it is not: the child programs (``mpslab.studies.scripts``), the child-process plumbing
(``mpslab.studies.child``) or the expectations per backend (``catalogue``).
"""

from __future__ import annotations

from mpslab.studies.child import ChildResult, run_script
from mpslab.studies.edges.expect import CaseContext, ChildCrashed, WrongResult
from mpslab.trials.outcomes import Outcome

__all__ = [
    "check_child",
    "daemon_threads_exit",
    "elapsed_before_record",
    "exit_with_device_work",
    "exit_with_queued_work",
    "keyboard_interrupt_in_worker",
    "keyboard_interrupt_main",
]


def check_child(res: ChildResult, *, want_rc: int, stderr_has: str = "", stdout_has: str = "") -> str:
    """What a child did, in a line; ``ChildCrashed`` / ``WrongResult`` when it is not what was wanted."""
    if res.timed_out:
        raise ChildCrashed(f"child {res.describe()}")
    crash = res.crash_text()
    if crash or res.returncode != want_rc:
        tail = "\n".join(res.stderr.strip().splitlines()[-8:])
        raise ChildCrashed(
            f"child {res.describe()}"
            + (f" (crash text: {', '.join(crash)})" if crash else "")
            + f"; expected exit {want_rc}"
            + (f"\nchild stderr (last lines):\n{tail}" if tail else "")
        )
    if stderr_has and stderr_has not in res.stderr:
        raise WrongResult(f"child exit {res.returncode} but stderr lacks {stderr_has!r}")
    if stdout_has and stdout_has not in res.stdout:
        raise WrongResult(f"child exit {res.returncode} but stdout lacks {stdout_has!r}: {res.stdout.strip()[-200:]!r}")
    return f"child exit {res.returncode}, no crash text; stdout: {' | '.join(res.stdout.strip().splitlines()[-2:])}"


def elapsed_before_record(ctx: CaseContext) -> str:
    if ctx.kind == "mps":
        # In a child: reading torch's MPS event pool, elapsed_time waits for a completion
        # notification that an event never recorded does not get, so it may never return.
        res = run_script("mps_elapsed_unrecorded", [], timeout=min(ctx.timeout, 60.0))
        if res.timed_out:
            raise ChildCrashed(f"elapsed_time on unrecorded MPS events gave no answer: {res.describe()}")
        for line in res.stdout.splitlines():
            if line.startswith("RAISED "):
                _, name, *msg = line.split(" ", 2)
                kind = {"RuntimeError": RuntimeError, "ValueError": ValueError, "TypeError": TypeError}.get(name)
                if kind is None:
                    raise ChildCrashed(f"child raised {name}: {' '.join(msg)}")
                raise kind(" ".join(msg))
            if line.startswith("RETURNED "):
                return f"returned {line.split(' ', 1)[1]} ms for events never recorded"
        raise ChildCrashed(f"child gave no answer: {res.describe()}")
    start, end = ctx.backend.new_event(enable_timing=True), ctx.backend.new_event(enable_timing=True)
    ms = start.elapsed_time(end)
    return f"returned {ms!r} ms for events never recorded"


def exit_with_queued_work(device: str, *, threads: int, size: int, timeout: float) -> str:
    """One spawned trial of the scenario ``exit-after-work``: ``max(2, threads)`` threads queue device
    work, nothing synchronises, the interpreter exits (one implementation, reached from both catalogues).

    Returns what the child did; raises ``ChildCrashed`` unless the trial ended ``ok`` (exit 0 with its
    result written, no signal).
    """
    from mpslab.studies.scenarios.lifecycle import exit_after_work_trial

    row = exit_after_work_trial(device, max(2, threads), max(size, 1024), 200, timeout)
    if row.get("outcome") != Outcome.OK:
        tail = str(row.get("stderr_tail") or "").strip().splitlines()[-3:]
        raise ChildCrashed(
            f"outcome {row.get('outcome')}, exit {row.get('exit_code')}, signal {row.get('signal')}: "
            + " | ".join(tail)
        )
    return (
        f"{max(2, threads)} thread(s) queued {max(size, 1024)}x{max(size, 1024)} matmuls x 200, no synchronize; "
        f"the child exited 0 in {float(row.get('wall_s') or 0):.1f} s"
    )


def exit_with_device_work(ctx: CaseContext) -> str:
    return exit_with_queued_work(str(ctx.device), threads=ctx.threads, size=ctx.size, timeout=ctx.timeout)


def daemon_threads_exit(ctx: CaseContext) -> str:
    res = run_script("daemon_threads_exit", [str(ctx.device), max(2, ctx.threads), 128], timeout=ctx.timeout)
    return check_child(res, want_rc=0, stdout_has="exiting")


def keyboard_interrupt_in_worker(ctx: CaseContext) -> str:
    res = run_script("interrupt_worker", [str(ctx.device), max(2, ctx.threads), ctx.size], timeout=ctx.timeout)
    return check_child(res, want_rc=0, stderr_has="KeyboardInterrupt", stdout_has="correct True")


def keyboard_interrupt_main(ctx: CaseContext) -> str:
    res = run_script("interrupt_main", [str(ctx.device), max(2, ctx.threads), ctx.size], timeout=ctx.timeout)
    return check_child(res, want_rc=130, stdout_has="canary True")
