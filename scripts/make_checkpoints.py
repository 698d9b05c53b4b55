"""Make the pretrained source checkpoints that ship in course_utils/checkpoints/.

Each checkpoint is trained from a frozen recipe (``course_utils.pretrained.RECIPES``)
on data that is always available (SynthFaces, scikit-learn's digits), then
written as ``<name>.pt`` (weights + metadata, loadable with
``weights_only=True``) and ``<name>.json`` (recipe, data, seed, accuracy,
training time, file size and digest, versions).

    python scripts/make_checkpoints.py                       # all of them (minutes on 2 CPU cores)
    python scripts/make_checkpoints.py --only faces_simclr   # one
    python scripts/make_checkpoints.py --out /tmp/ckpt --epochs 1 --max-train-images 128   # a quick try

Runs are reproducible on the same machine and versions: every random draw
comes from the recipe's seed. The notebooks only read the files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from course_utils.pretrained import CHECKPOINT_DIR, RECIPES, save_source_checkpoint, train_source_model
from course_utils.settings import resolve_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="recipes to run (default: all)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help=f"output folder (default {CHECKPOINT_DIR})")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs (trials only)")
    parser.add_argument("--max-train-images", type=int, default=None, help="cap the training images (trials only)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.only or list(RECIPES)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads -> {args.out}")
    t_all = time.perf_counter()
    for name in names:
        recipe = RECIPES[name]
        if args.epochs is not None:
            recipe = recipe.replace(epochs=args.epochs)
        if args.max_train_images is not None:
            recipe = recipe.replace(max_train_images=args.max_train_images)
        print(f"\n== {name}: {recipe.method} on {recipe.data}, {recipe.model} {dict(recipe.model_kwargs)}, "
              f"{recipe.image_size} px, {recipe.epochs} epochs, seed {recipe.seed}", flush=True)
        result = train_source_model(recipe, device=device, progress=False)
        pt, js = save_source_checkpoint(result, args.out)
        m = result.meta
        print(f"   accuracy {m['accuracy']:.3f} ({m['accuracy_kind']}), linear probe {m['linear_probe_accuracy']:.3f}, "
              f"chance {m['chance_accuracy']:.3f}; trained in {m['training_seconds']:.0f} s; "
              f"{pt.stat().st_size / 1024:.0f} kB -> {pt}, {js.name}", flush=True)
    print(f"\nall done in {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
