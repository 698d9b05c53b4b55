"""Benchmark: course_utils.train.fit versus a minimal hand-written PyTorch loop.

Both train the same small CNN on the same in-memory data for the same number
of steps; we report images/s for each and their ratio (target >= 0.95). On a
GPU it also measures the speed-up from mixed precision and channels_last.

    python benchmarks/bench_fit.py                # CPU (or the best device)
    python benchmarks/bench_fit.py --device cuda --image-size 64 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_utils.settings import resolve_device, seed_everything
from course_utils.train import amp_dtype, autocast_context, fit, make_loader


def small_cnn(in_chans: int = 1, num_classes: int = 10, width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_chans, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes),
    )


def hand_loop(model, loader, opt, device, steps, dtype=None, channels_last=False):
    """The plainest correct loop: what a tutorial would write."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    done = 0
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, dtype):
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            done += 1
            if done >= steps:
                break
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_fit(model, loader, opt, device, steps, amp, channels_last):
    fit(model, loader, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, device=device,
        amp=amp, channels_last=channels_last, progress=False, max_steps_per_epoch=steps)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="print one JSON line too")
    args = ap.parse_args()

    device = resolve_device(args.device)
    seed_everything(0)
    n = args.batch_size * args.steps
    x = torch.randn(n, 1, args.image_size, args.image_size)
    y = torch.randint(0, 10, (n,))
    loader = make_loader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True, device=device,
                         drop_last=True)
    images = args.batch_size * args.steps

    def measure(amp, channels_last):
        def fresh():
            torch.manual_seed(0)
            m = small_cnn(width=args.width).to(device)
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
            return m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

        dtype = amp_dtype(device, amp)
        # warm-up (allocator, cuDNN autotune, thread pools)
        m, o = fresh()
        hand_loop(m, loader, o, device, min(5, args.steps), dtype, channels_last)
        t_fit, t_hand = [], []
        for _ in range(args.repeats):  # interleave to share any drift fairly
            m, o = fresh()
            t_hand.append(timed(lambda: hand_loop(m, loader, o, device, args.steps, dtype, channels_last)))
            m, o = fresh()
            t_fit.append(timed(lambda: run_fit(m, loader, o, device, args.steps, amp, channels_last)))
        hand_ips = images / statistics.median(t_hand)
        fit_ips = images / statistics.median(t_fit)
        return {"amp": str(dtype).replace("torch.", "") if dtype else "off", "channels_last": channels_last,
                "hand_img_s": round(hand_ips, 1), "fit_img_s": round(fit_ips, 1),
                "ratio": round(fit_ips / hand_ips, 3)}

    configs = [(False, False)]
    if device.type == "cuda":
        configs += [("auto", False), (False, True), ("auto", True)]
    results = [measure(a, c) for a, c in configs]
    print(f"device={device} threads={torch.get_num_threads()} image={args.image_size}px "
          f"batch={args.batch_size} steps={args.steps} repeats={args.repeats} torch={torch.__version__}")
    print(f"{'amp':>8} {'ch_last':>8} {'hand img/s':>11} {'fit img/s':>10} {'ratio':>6}")
    for r in results:
        print(f"{r['amp']:>8} {str(r['channels_last']):>8} {r['hand_img_s']:>11.1f} {r['fit_img_s']:>10.1f} "
              f"{r['ratio']:>6.3f}")
    if len(results) > 1:
        base = results[0]["fit_img_s"]
        for r in results[1:]:
            print(f"speed-up of fit with amp={r['amp']}, channels_last={r['channels_last']}: "
                  f"{r['fit_img_s'] / base:.2f}x")
    if args.json:
        print(json.dumps({"device": str(device), "results": results}))


if __name__ == "__main__":
    main()
