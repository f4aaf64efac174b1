"""Child: worker 0 of T raises KeyboardInterrupt mid-run; the others must finish with right results.

Usage: ``python interrupt_worker.py DEVICE THREADS N``. The interrupted thread's traceback goes
to stderr (threading's excepthook); stdout says which workers finished and whether they were
correct; exit 0 when they all were, 3 otherwise. Used by ``keyboard_interrupt_in_worker``.
"""

import sys
import threading

import torch


def main(argv: list[str]) -> int:
    device, n_threads, n = argv[0], int(argv[1]), int(argv[2])
    ok: dict[int, bool] = {}

    def work(i: int) -> None:
        g = torch.Generator().manual_seed(i)
        x = torch.randn(n, n, generator=g) / n**0.5
        want = x.double() @ x.double()
        xd = x.to(device)
        for k in range(10):
            if i == 0 and k == 3:
                raise KeyboardInterrupt("worker 0 interrupted mid-run")
            y = xd @ xd
        ok[i] = bool(torch.allclose(y.cpu().double(), want, rtol=1e-2, atol=1e-2))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    good = sorted(ok) == list(range(1, n_threads)) and all(ok.values())
    print("others finished", sorted(ok), "correct", good, flush=True)
    return 0 if good else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
