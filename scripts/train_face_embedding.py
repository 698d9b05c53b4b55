"""Train a face embedding on your own identity data set, on one GPU, several, or several machines.

The data: one folder per person (``ROOT/<person>/<image>``, any format
Pillow reads), read with :func:`course_utils.data.load_face_folder`. A share
of the *people* (``--test-fraction``) is held out; at the end their faces are
embedded and scored with the course's verification and identification
metrics (ROC AUC, EER, TAR at a FAR, rank-1, open-set DIR), written to
``OUT/metrics.json``.

The loss: ArcFace (``--loss arcface``, a classifier over the training
identities with an angular margin) or batch-hard triplet (``--loss triplet``,
P identities x K images per batch; ``--mining global`` mines the batch
gathered from every process instead of each process's own).

    python scripts/train_face_embedding.py --data ~/faces --out runs/faces            # one process
    torchrun --nproc_per_node=4 scripts/train_face_embedding.py --data ~/faces --out runs/faces
    # two machines with 8 GPUs each: run this on both, with --node_rank=0 on host0 and 1 on the other
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=host0:29500 \\
        scripts/train_face_embedding.py --data /shared/faces --out /shared/runs/faces
    # continue an interrupted run from OUT/last.pt (same command plus --resume)
    torchrun --nproc_per_node=4 scripts/train_face_embedding.py --data ~/faces --out runs/faces --resume

Batch sizes are per process: with N processes the global batch is N times
larger (scale ``--lr`` accordingly). On CUDA it trains with bf16/fp16 mixed
precision and channels_last; on the CPU it runs in fp32 (gloo backend). Only
rank 0 prints, writes checkpoints and evaluates. See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.data import TensorImageDataset, identity_split, load_face_folder
from course_utils.data.sampling import PKBatchSampler
from course_utils.distributed import (
    DistEnv,
    GatheredLoss,
    close_distributed,
    init_distributed,
    is_main_process,
    main_process_first,
    print_main,
    rank_seed,
    set_sampler_epoch,
)
from course_utils.augment import augment_faces
from course_utils.evaluation import evaluate_embeddings
from course_utils.metric_learning.losses import ArcFaceLoss, TripletLoss
from course_utils.metric_learning.miners import BatchHardMiner
from course_utils.models import create_model
from course_utils.models.embedding import (
    EmbeddingNet,
    PerImageStandardize,
    face_backbone,
)
from course_utils.settings import seed_everything
from course_utils.train import (
    Callback,
    TrainState,
    fit,
    load_checkpoint,
    make_loader,
    predict,
    save_checkpoint,
)

__all__ = ["RecipeConfig", "parse_args", "main"]


@dataclass(frozen=True)
class RecipeConfig:
    """Everything a run depends on (also stored in its checkpoints)."""

    data: str
    out: str = "runs/face_embedding"
    image_size: int = 112
    rgb: bool = True
    arch: str = "face_backbone"
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    loss: str = "arcface"
    mining: str = "rank"
    margin: float = 0.2
    batch_size: int = 128
    p: int = 16
    k: int = 4
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 5e-4
    amp: str = "auto"
    channels_last: bool | None = None
    sync_bn: bool = False
    augment: bool = True
    test_fraction: float = 0.1
    max_impostors: int = 200_000
    workers: int | None = None
    seed: int = 0
    device: str = "auto"
    max_steps_per_epoch: int | None = None
    resume: bool = False


def parse_args(argv: list[str] | None = None) -> RecipeConfig:
    """Command line -> :class:`RecipeConfig`."""
    d = RecipeConfig(data="")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with one folder of images per person")
    ap.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    ap.add_argument("--image-size", type=int, default=d.image_size)
    ap.add_argument("--grey", dest="rgb", action="store_false", help="train on grey images")
    ap.add_argument("--arch", default=d.arch, help="face_backbone (default) or a course_utils.models zoo name")
    ap.add_argument("--widths", default=",".join(map(str, d.widths)), help="face_backbone stem,stage widths")
    ap.add_argument("--embedding-dim", type=int, default=d.embedding_dim)
    ap.add_argument("--loss", choices=("arcface", "triplet"), default=d.loss)
    ap.add_argument("--mining", choices=("rank", "global"), default=d.mining,
                    help="triplet: mine each process's batch, or the batch gathered from all processes")
    ap.add_argument("--margin", type=float, default=d.margin, help="triplet margin")
    ap.add_argument("--batch-size", type=int, default=d.batch_size, help="arcface: images per process and step")
    ap.add_argument("--p", type=int, default=d.p, help="triplet: identities per process and step")
    ap.add_argument("--k", type=int, default=d.k, help="triplet: images per identity")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (cosine schedule)")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default=d.amp, help="mixed precision (CUDA)")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="channels_last memory format (default: on with CUDA)")
    ap.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs (CUDA only)")
    ap.add_argument("--no-augment", dest="augment", action="store_false", help="no flips/shifts/brightness")
    ap.add_argument("--test-fraction", type=float, default=d.test_fraction, help="share of people held out")
    ap.add_argument("--max-impostors", type=int, default=d.max_impostors)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers per process")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--device", default=d.device, help="auto, cuda or cpu")
    ap.add_argument("--max-steps-per-epoch", type=int, default=None, help="cut epochs short (smoke tests)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    a = ap.parse_args(argv)
    values = vars(a)
    values["widths"] = tuple(int(w) for w in str(a.widths).split(","))
    return RecipeConfig(**values)


def load_data(cfg: RecipeConfig) -> tuple[TensorImageDataset, TensorImageDataset | None]:
    """Training people (targets renumbered ``0..K-1``) and held-out people (``None`` with no test fraction)."""
    with main_process_first():  # rank 0 decodes and caches; the others then read the cache
        ds = load_face_folder(cfg.data, image_size=cfg.image_size, rgb=cfg.rgb, min_images_per_person=2)
    if cfg.test_fraction > 0:
        split = identity_split(ds.targets, test_fraction=cfg.test_fraction, seed=cfg.seed)
        train, test = ds.subset(split.train), ds.subset(split.test)
    else:
        train, test = ds, None
    train.targets = np.unique(train.targets, return_inverse=True)[1].astype(np.int64)
    return train, test


def build_model(cfg: RecipeConfig, *, in_chans: int) -> EmbeddingNet:
    """Backbone -> pooled -> linear -> BatchNorm -> unit sphere, with per-image standardisation first."""
    if cfg.arch == "face_backbone":
        backbone: nn.Module = face_backbone(in_chans=in_chans, widths=cfg.widths)
    else:
        backbone = create_model(cfg.arch, num_classes=0, in_chans=in_chans)
    return EmbeddingNet(backbone, embedding_dim=cfg.embedding_dim, input_norm=PerImageStandardize())


def build_loss(cfg: RecipeConfig, *, num_classes: int) -> nn.Module:
    """ArcFace over the training people, or batch-hard triplet (per process or on the gathered batch)."""
    if cfg.loss == "arcface":
        return ArcFaceLoss(num_classes, embedding_dim=cfg.embedding_dim)
    loss = TripletLoss(cfg.margin, miner=BatchHardMiner(margin=cfg.margin))
    return GatheredLoss(loss) if cfg.mining == "global" else loss


class EpochCheckpoint(Callback):
    """After each epoch: rank 0 writes ``last.pt`` (weights, loss, optimizer, scheduler, epoch); every
    rank re-seeds for the next epoch, so a resumed run draws the same augmentations."""

    def __init__(self, path: Path, *, modules: nn.Module, scheduler: Any, cfg: RecipeConfig, env: DistEnv) -> None:
        self.path, self.modules, self.scheduler, self.cfg, self.env = path, modules, scheduler, cfg, env

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:  # noqa: D102
        print_main(f"epoch {state.epoch}/{self.cfg.epochs}  loss {record['train_loss']:.4f}  "
                   f"lr {record['lr']:.2e}  {record['images_per_s']:.0f} img/s "
                   f"({self.env.world_size} process(es))", flush=True)
        if is_main_process():
            meta = {"epoch": state.epoch, "scheduler": self.scheduler.state_dict(), "record": dict(record),
                    "config": json.loads(json.dumps(asdict(self.cfg)))}
            save_checkpoint(self.path, self.modules, optimizer=state.optimizer, meta=meta)
        seed_everything(rank_seed(self.cfg.seed, epoch=state.epoch + 1))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate on the held-out people, and return the metrics (on rank 0; ``{}`` elsewhere)."""
    cfg = parse_args(argv)
    env = init_distributed(device=cfg.device, seed=cfg.seed)
    out = Path(cfg.out)
    train, test = load_data(cfg)
    n_classes = int(train.targets.max()) + 1
    print_main(f"{len(train)} training images of {n_classes} people, "
               f"{0 if test is None else len(test)} held-out images; {env.world_size} process(es) on {env.device}")

    model = build_model(cfg, in_chans=train.image_shape[0])
    if cfg.sync_bn and env.distributed and env.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    loss = build_loss(cfg, num_classes=n_classes)
    model.to(env.device)
    loss.to(env.device)
    modules = nn.ModuleDict({"model": model, "loss": loss})  # what a checkpoint holds
    optimizer = torch.optim.AdamW(modules.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.epochs))

    last = out / "last.pt"
    start_epoch = 1
    if cfg.resume and last.is_file():
        ckpt = load_checkpoint(last, modules, optimizer=optimizer, map_location=env.device)
        scheduler.load_state_dict(ckpt["meta"]["scheduler"])
        start_epoch = int(ckpt["meta"]["epoch"]) + 1
        print_main(f"resuming from {last} at epoch {start_epoch}")
    seed_everything(rank_seed(cfg.seed, epoch=start_epoch))

    if cfg.loss == "triplet":
        sampler = PKBatchSampler(train.targets, p=cfg.p, k=cfg.k, seed=cfg.seed)
        loader = make_loader(train, batch_sampler=sampler, device=env.device, num_workers=cfg.workers)
    else:
        loader = make_loader(train, batch_size=cfg.batch_size, shuffle=True, drop_last=True, device=env.device,
                             num_workers=cfg.workers)
    set_sampler_epoch(loader, start_epoch - 1)  # a P x K sampler resumes its epoch sequence (fit does it under DDP)

    channels_last = env.device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
    t0 = time.perf_counter()
    if start_epoch <= cfg.epochs:
        fit(model, loader, loss_fn=loss, optimizer=optimizer, epochs=cfg.epochs, start_epoch=start_epoch,
            scheduler=scheduler, device=env.device, amp=False if cfg.amp == "off" else cfg.amp,
            channels_last=channels_last, train_transform=augment_faces if cfg.augment else None,
            max_steps_per_epoch=cfg.max_steps_per_epoch,
            callbacks=[EpochCheckpoint(last, modules=modules, scheduler=scheduler, cfg=cfg, env=env)])
    metrics: dict[str, float] = {}
    if is_main_process():
        metrics["train_seconds"] = time.perf_counter() - t0
        save_checkpoint(out / "embedding.pt", model, meta={"config": json.loads(json.dumps(asdict(cfg)))})
        if test is not None:
            emb, labels = predict(model, test, device=env.device)
            metrics.update(evaluate_embeddings(emb, labels, max_impostors=cfg.max_impostors, seed=cfg.seed))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print("held-out people: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)
    close_distributed()
    return metrics


if __name__ == "__main__":
    main()
