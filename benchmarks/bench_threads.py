"""Benchmark: a notebook-04-sized CPU training, quiet and beside two CPU-bound competitor processes.

Each configuration runs in a fresh child process (OpenMP reads its settings
when PyTorch loads), once on a quiet machine and once while two busy-loop
processes compete for the cores. Reported: seconds, and the loaded / quiet
ratio (target <= 3x with the course's thread policy; notebook 04 took 15x
with PyTorch's default threads).

Configurations:

* ``torch-default``: PyTorch's defaults (one thread per core, OpenMP's active wait);
* ``policy``: what ``import course_utils`` sets (``cpu_thread_policy``: one thread
  for tiny fast-mode models, passive OpenMP wait);
* ``policy-cores``: the policy for larger models (physical cores / local world size).

The machine may be shared: the script prints ``os.getloadavg()`` before each run.

    python benchmarks/bench_threads.py                 # all configurations
    python benchmarks/bench_threads.py --steps 60 --configs policy torch-default
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time, json
config, steps = sys.argv[1], int(sys.argv[2])
wait_policy = os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP's default)")  # what OpenMP reads when torch loads
import torch
from course_utils.settings import apply_cpu_thread_policy, seed_everything
if config == "policy":
    apply_cpu_thread_policy(device="cpu", tiny=True)
elif config == "policy-cores":
    apply_cpu_thread_policy(device="cpu", tiny=False)
else:
    torch.set_num_threads(os.cpu_count())
from course_utils.metric_learning.losses import TripletLoss
from course_utils.metric_learning.miners import BatchHardMiner
from course_utils.models.embedding import EmbeddingNet, PerImageStandardize, face_backbone
from course_utils.train import fit
seed_everything(0)
g = torch.Generator().manual_seed(0)
images = torch.rand(30 * 40, 1, 32, 32, generator=g)  # 30 people x 40 batches of P x K = 6 x 5 at 32 px
labels = torch.arange(6).repeat_interleave(5).repeat(40)
batches = [(images[i:i + 30], labels[i:i + 30]) for i in range(0, len(images), 30)]
net = EmbeddingNet(face_backbone(in_chans=1), embedding_dim=64, normalize=True, input_norm=PerImageStandardize())
opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
loss = TripletLoss(0.2, miner=BatchHardMiner())
fit(net, batches[:2], loss_fn=loss, optimizer=opt, epochs=1, device="cpu", progress=False)  # warm-up
t0 = time.perf_counter()
fit(net, batches, loss_fn=loss, optimizer=opt, epochs=max(1, steps // len(batches)), device="cpu", progress=False,
    max_steps_per_epoch=min(steps, len(batches)))
print(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads(),
                  "omp_wait_policy": wait_policy}))
"""

BUSY = "import time\nend = time.time() + 3600\nx = 0\nwhile time.time() < end:\n    x += 1\n"


def run_child(config: str, steps: int) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("COURSE_CPU_THREADS", None)
    env["COURSE_FAST"] = "1"
    if config != "torch-default":  # as when course_utils is imported before torch (scripts, torchrun, kernel env)
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, "-c", CHILD, config, str(steps)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["policy", "torch-default", "policy-cores"])
    args = parser.parse_args()
    results = []
    for config in args.configs:
        load_quiet = os.getloadavg()[0]
        quiet = run_child(config, args.steps)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.competitors)]
        try:
            time.sleep(1.0)
            load_busy = os.getloadavg()[0]
            loaded = run_child(config, args.steps)
        finally:
            for p in busy:
                p.kill()
                p.wait()
        results.append({
            "config": config, "threads": quiet["threads"], "omp_wait_policy": quiet["omp_wait_policy"],
            "quiet_s": round(quiet["seconds"], 2), "loaded_s": round(loaded["seconds"], 2),
            "ratio": round(loaded["seconds"] / quiet["seconds"], 2),
            "loadavg_before_quiet": round(load_quiet, 2), "loadavg_before_loaded": round(load_busy, 2),
        })
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"cpu_count": os.cpu_count(), "steps": args.steps, "results": results}, indent=2))


if __name__ == "__main__":
    main()
