"""Child: T threads queue device work without synchronising, then the interpreter exits.

Usage: ``python queued_work_exit.py DEVICE THREADS N ITERS``. An event recorded after the work is
queried just before exit (``pending_at_exit True`` means work was still queued); ``exiting`` is
printed last. Used by the probe ``shutdown`` and the edge case ``exit_with_device_work_queued``.
Not a test of results: the caller checks the exit code and the absence of crash text.
"""

import sys
import threading

import torch


def main(argv: list[str]) -> int:
    device, n_threads, n, iters = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    xs = [torch.randn(n, n, device=device) / n**0.5 for _ in range(n_threads)]

    def enqueue(i: int) -> None:
        x = xs[i]
        for _ in range(iters):
            x = torch.tanh(x @ xs[i])
        xs[i] = x

    threads = [threading.Thread(target=enqueue, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    event = None
    if device.startswith("cuda"):
        event = torch.cuda.Event()
    elif device == "mps":
        event = torch.mps.event.Event()
    if event is not None:
        event.record()
        print("pending_at_exit", not event.query(), flush=True)
    print("exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
