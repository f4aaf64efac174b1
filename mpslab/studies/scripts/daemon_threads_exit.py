"""Child: daemon threads loop on matmuls; the main thread returns, so the interpreter exits
while they are inside torch ops.

Usage: ``python daemon_threads_exit.py DEVICE THREADS N``. Prints ``exiting with K daemon
threads ...`` once every thread is working. Used by the edge case ``exit_while_threads_in_ops``;
the caller checks the exit code and crash text (torch 2.13 on CPython 3.11 may abort here).
"""

import sys
import threading
import time

import torch


def main(argv: list[str]) -> int:
    device, n_threads, n = argv[0], int(argv[1]), int(argv[2])
    started = threading.Barrier(n_threads + 1)

    def work() -> None:
        x = torch.randn(n, n, device=device) / n**0.5
        started.wait()
        while True:
            x = torch.tanh(x @ x)

    for _ in range(n_threads):
        threading.Thread(target=work, daemon=True).start()
    started.wait()
    time.sleep(0.2)
    print("exiting with", threading.active_count() - 1, "daemon threads inside their op loops", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
