"""Benchmark: ContrastiveLoss over all pairs, from the distance matrix versus gathering every pair.

The previous implementation mined all N(N-1)/2 pairs, copied both vectors
of each pair (32,640 x 128 at N = 256) and computed paired distances; the
current one reads the pairs off the (N, N) distance matrix. Both are timed
forward + backward; the values are checked equal. Target: >= 10x at N = 256.

    python benchmarks/bench_contrastive.py
    python benchmarks/bench_contrastive.py --batch-size 512 --dim 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from course_utils.metric_learning.losses import ContrastiveLoss
from course_utils.metric_learning.miners import PairMiner
from course_utils.settings import resolve_device


def _time(fn, *, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after two warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, args.dim, generator=g).to(device)
    x = torch.nn.functional.normalize(x, dim=1).requires_grad_(True)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=g).to(device)
    loss_fn = ContrastiveLoss(1.0)

    def matrix() -> torch.Tensor:
        x.grad = None
        loss = loss_fn(x, labels)
        loss.backward()
        return loss

    def gathered() -> torch.Tensor:  # what forward did before: mine all pairs, gather their vectors
        x.grad = None
        loss = loss_fn(x, labels, pairs=PairMiner(margin=1.0)(x, labels))
        loss.backward()
        return loss

    fast, slow = matrix().item(), gathered().item()
    assert abs(fast - slow) <= 1e-5 * max(1.0, abs(slow)), (fast, slow)
    t_new = _time(matrix, repeats=args.repeats, device=device)
    t_old = _time(gathered, repeats=args.repeats, device=device)
    result = {
        "device": str(device), "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "dim": args.dim, "pairs": args.batch_size * (args.batch_size - 1) // 2,
        "matrix_ms": round(1000 * t_new, 3), "gathered_ms": round(1000 * t_old, 3),
        "speedup": round(t_old / t_new, 1), "loss": fast,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
