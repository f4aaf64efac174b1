"""Child: ``elapsed_time`` between two MPS timing events that were never recorded.

Usage: ``python mps_elapsed_unrecorded.py``. Prints ``RAISED <type> <first line>`` or
``RETURNED <ms>``; it may also never return (the caller's timeout decides). Run in a child
because torch's MPS event pool can wait forever for a completion an unrecorded event never gets.
Used by the edge case ``elapsed_time_before_record`` on MPS.
"""

import sys

import torch


def main(argv: list[str]) -> int:
    a = torch.mps.event.Event(enable_timing=True)
    b = torch.mps.event.Event(enable_timing=True)
    try:
        ms = a.elapsed_time(b)
    except Exception as exc:
        print("RAISED", type(exc).__name__, (str(exc).splitlines() or [""])[0], flush=True)
        return 0
    print("RETURNED", ms, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
