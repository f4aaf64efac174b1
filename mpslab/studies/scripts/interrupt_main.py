"""Child: SIGINT reaches the main thread while it computes and T workers run.

Usage: ``python interrupt_main.py DEVICE THREADS N``. The main thread sends itself SIGINT at
iteration 20, catches KeyboardInterrupt, stops and joins the workers, checks a canary matmul
and exits 130 (4 if it was never interrupted). Used by ``keyboard_interrupt_main_mid_run``.
"""

import os
import signal
import sys
import threading

import torch


def main(argv: list[str]) -> int:
    device, n_threads, n = argv[0], int(argv[1]), int(argv[2])
    # a parent started in the background (`cmd &` in a script) may hand SIGINT down ignored, and then
    # Python installs no KeyboardInterrupt handler: install it, so the case tests what it says
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    done: dict[int, int] = {}

    def work(i: int) -> None:
        x = torch.randn(n, n, device=device) / n**0.5
        k = 0
        while not stop.is_set():
            x = torch.tanh(x @ x)
            k += 1
        done[i] = k

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    x = torch.randn(n, n, device=device) / n**0.5
    code = 4
    k = 0
    try:
        for k in range(1000000):
            x = torch.tanh(x @ x)
            if k == 20:
                os.kill(os.getpid(), signal.SIGINT)
        print("never interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted at main iteration", k, flush=True)
        code = 130
    finally:
        stop.set()
        for t in threads:
            t.join()
    a = torch.arange(16.0, device=device).reshape(4, 4)
    print("canary", float((a @ a).sum().item()) == 3920.0, "workers stopped", sorted(done), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
