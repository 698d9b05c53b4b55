"""Benchmark: dlib's face descriptors versus the PyTorch port, in descriptors per second.

dlib computes ``face_recognition_model_v1.compute_face_descriptor(chip)`` one
aligned 150 x 150 chip at a time (how the ``face_recognition`` package and
most tutorials call it); the port (:func:`course_utils.pretrained.dlib_format.load_dlib_resnet`)
runs the same network on batches. Both see the same chips (random pixels: the
cost does not depend on the content): dlib as it comes, the port with
PyTorch's default thread count and with one thread (on a busy machine the
default count's OpenMP workers can wait for each other). The
descriptors are compared too, so a fast but wrong port cannot pass unnoticed.
Target on a 2-core CPU: the port batched >= 5x dlib.

    python benchmarks/bench_face_descriptors.py
    python benchmarks/bench_face_descriptors.py --batch-sizes 1 32 64 --n-port 256 --json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from course_utils.pretrained.dlib_format import dlib_model_files, load_dlib_resnet
from course_utils.settings import resolve_device


def dlib_rate(chips: np.ndarray, path: str) -> tuple[float, np.ndarray]:
    """Descriptors/s of dlib, one chip per call, and the descriptors ``(N, 128)``."""
    import dlib

    rec = dlib.face_recognition_model_v1(path)
    rec.compute_face_descriptor(chips[0])  # warm-up
    start = time.perf_counter()
    out = [np.asarray(rec.compute_face_descriptor(c)) for c in chips]
    return len(chips) / (time.perf_counter() - start), np.stack(out)


def port_rate(model: torch.nn.Module, chips: np.ndarray, batch_size: int, device: torch.device) -> tuple[float, np.ndarray]:
    """Descriptors/s of the port on ``(N, 150, 150, 3)`` uint8 chips, in batches (conversion included)."""
    images = torch.from_numpy(chips).permute(0, 3, 1, 2)  # (N, 3, 150, 150) uint8

    def run() -> list[torch.Tensor]:
        outs = []
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                x = images[i : i + batch_size].to(device, non_blocking=True).float()
                outs.append(model(x).cpu())
        if device.type == "cuda":
            torch.cuda.synchronize()
        return outs

    with torch.inference_mode():  # warm-up
        model(images[:batch_size].to(device).float())
    start = time.perf_counter()
    outs = run()
    return len(images) / (time.perf_counter() - start), torch.cat(outs).double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-dlib", type=int, default=32, help="chips for dlib (one call each)")
    parser.add_argument("--n-port", type=int, default=128, help="chips for the port (a multiple of the batch sizes)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts for the port (default: the default count, then 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, auto ...")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    device = resolve_device(args.device)
    files = dlib_model_files()
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, size=(max(args.n_dlib, args.n_port), 150, 150, 3), dtype=np.uint8)
    model = load_dlib_resnet(device=device)

    default_threads = torch.get_num_threads()
    threads = args.threads or sorted({default_threads, 1}, reverse=True)
    print(f"CPU cores: {os.cpu_count()}, default torch threads: {default_threads}, device: {device}, "
          f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    d_rate, d_desc = dlib_rate(chips[: args.n_dlib], str(files["recognition"]))
    rows = [{"method": "dlib compute_face_descriptor, 1 chip/call", "threads": "-", "batch": 1,
             "chips": args.n_dlib, "desc_per_s": d_rate, "speedup": 1.0, "max_abs_diff": 0.0}]
    for t in threads:
        torch.set_num_threads(t)
        for bs in args.batch_sizes:
            n = args.n_port if bs > 1 else min(args.n_port, args.n_dlib)
            rate, desc = port_rate(model, chips[:n], bs, device)
            k = min(len(desc), len(d_desc))
            rows.append({"method": "PyTorch port", "threads": t if device.type == "cpu" else "-", "batch": bs,
                         "chips": n, "desc_per_s": rate, "speedup": rate / d_rate,
                         "max_abs_diff": float(np.abs(desc[:k] - d_desc[:k]).max())})
    torch.set_num_threads(default_threads)

    print(f"{'method':44s} {'threads':>7s} {'batch':>5s} {'chips':>5s} {'desc/s':>8s} {'x dlib':>7s} {'max|diff|':>10s}")
    for r in rows:
        print(f"{r['method']:44s} {r['threads']!s:>7s} {r['batch']:5d} {r['chips']:5d} {r['desc_per_s']:8.1f} "
              f"{r['speedup']:7.2f} {r['max_abs_diff']:10.2e}")
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
