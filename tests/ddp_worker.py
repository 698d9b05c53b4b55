"""Training runs that tests/test_distributed.py launches with ``torchrun --nproc_per_node=2`` (CPU, gloo).

Each ``run_*`` function also runs in one process (no process group); the
tests compare the two. ``python -m torch.distributed.run --standalone
--nproc_per_node=2 tests/ddp_worker.py OUT [RECIPE ARGS]`` writes
``OUT/rank<r>.pt`` and then runs ``scripts/train_face_embedding.py`` with the
recipe arguments, as torchrun would.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    TensorDataset,
    WeightedRandomSampler,
)

from course_utils.data.sampling import PKBatchSampler
from course_utils.distributed import (
    GatheredLoss,
    barrier,
    close_distributed,
    init_distributed,
    is_main_process,
    shard_loader,
)
from course_utils.metric_learning.losses import ArcFaceLoss, TripletLoss
from course_utils.metric_learning.miners import BatchHardMiner
from course_utils.train import (
    BestCheckpoint,
    accuracy,
    fit,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["run_cross_entropy", "run_resume", "run_triplet", "run_arcface", "loose_parameters_rejected",
           "shard_loader_cases", "run_recipe", "main"]


def _images(n: int = 64) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g))


def _net() -> nn.Module:
    """A small CNN without BatchNorm: (N, 1, 8, 8) -> (N, 5)."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_cross_entropy(batch_size: int, *, checkpoint: Path | None = None) -> dict[str, Any]:
    """Cross-entropy + SGD with momentum, 2 epochs in order (8 steps at batch 8 per rank x 2 ranks or batch 16)."""
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = _images()
    callbacks = [BestCheckpoint(checkpoint, monitor="train_loss", restore_best=False)] if checkpoint else []
    history = fit(model, DataLoader(data, batch_size=batch_size), loss_fn=F.cross_entropy, optimizer=opt, epochs=2,
                  metrics={"acc": accuracy}, val_loader=DataLoader(TensorDataset(*data[:11]), batch_size=4),
                  device="cpu", progress=False, callbacks=callbacks)
    return {"params": _state(model), "history": history.records}


def run_resume(batch_size: int, path: Path) -> dict[str, Any]:
    """3 epochs in one go versus 1 epoch, a checkpoint, and epochs 2-3 in fresh objects (run under torchrun).

    The data are shuffled by a ``DistributedSampler`` whose order depends on
    the epoch that fit gives it; ``epochs`` records the last one it was given.
    """
    sampler = DistributedSampler(_images(), shuffle=True, seed=0)
    loader = DataLoader(_images(), batch_size=batch_size, sampler=sampler)
    kw: dict[str, Any] = {"loss_fn": F.cross_entropy, "device": "cpu", "progress": False}
    straight = _net()
    fit(straight, loader, optimizer=torch.optim.SGD(straight.parameters(), lr=0.1, momentum=0.9), epochs=3, **kw)
    epochs = [sampler.epoch]
    first = _net()
    opt = torch.optim.SGD(first.parameters(), lr=0.1, momentum=0.9)
    fit(first, loader, optimizer=opt, epochs=1, **kw)
    if is_main_process():
        save_checkpoint(path, first, optimizer=opt, meta={"epoch": 1})
    barrier()
    resumed = _net()
    opt = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
    load_checkpoint(path, resumed, optimizer=opt)
    fit(resumed, loader, optimizer=opt, epochs=3, start_epoch=2, **kw)
    return {"straight": _state(straight), "resumed": _state(resumed), "epochs": epochs + [sampler.epoch]}


def _identities() -> TensorDataset:
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(8).repeat_interleave(4)
    x = torch.randn(8, 6, generator=g)[labels] + 0.7 * torch.randn(32, 6, generator=g)
    return TensorDataset(x, labels)


def run_triplet(p: int, *, n_batches: int, gathered: bool) -> dict[str, torch.Tensor]:
    """Batch-hard triplet on P x 2 batches; under torchrun fit makes the sampler distributed."""
    data = _identities()
    torch.manual_seed(2)
    model = nn.Linear(6, 4)
    loss: nn.Module = TripletLoss(0.5, miner=BatchHardMiner(margin=0.5))
    if gathered:
        loss = GatheredLoss(loss)
    sampler = PKBatchSampler(data.tensors[1].numpy(), p=p, k=2, n_batches=n_batches, seed=0)
    fit(model, DataLoader(data, batch_sampler=sampler), loss_fn=loss,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05), epochs=2, device="cpu", progress=False)
    return _state(model)


def run_arcface(batch_size: int) -> dict[str, torch.Tensor]:
    """ArcFace: the loss's class weights are parameters too (fit wraps the loss in DDP)."""
    data = _identities()
    torch.manual_seed(4)
    model, loss = nn.Linear(6, 4), ArcFaceLoss(8, embedding_dim=4, s=8.0)
    opt = torch.optim.SGD([*model.parameters(), *loss.parameters()], lr=0.1)
    fit(model, DataLoader(data, batch_size=batch_size), loss_fn=loss, optimizer=opt, epochs=2, device="cpu",
        progress=False)
    return {"model." + k: v for k, v in _state(model).items()} | {"loss." + k: v for k, v in _state(loss).items()}


def loose_parameters_rejected() -> bool:
    """fit refuses an optimizer parameter that neither the model nor the loss owns (it would drift per rank)."""
    model, stray = nn.Linear(6, 4), nn.Parameter(torch.zeros(3))
    try:
        fit(model, DataLoader(_identities(), batch_size=8), loss_fn=lambda out, y: out.pow(2).mean(),
            optimizer=torch.optim.SGD([*model.parameters(), stray], lr=0.1), device="cpu", progress=False)
    except ValueError as err:
        return "neither to the model nor to loss_fn" in str(err)
    return False


def shard_loader_cases() -> dict[str, bool]:
    """What shard_loader does with loaders it cannot split, and with rank-aware ones."""
    data = _identities()
    weighted = DataLoader(data, sampler=WeightedRandomSampler(torch.ones(len(data)), len(data)), batch_size=4)
    try:
        shard_loader(weighted)
        refused = False
    except ValueError as err:
        refused = "Cannot split" in str(err)
    mine = DataLoader(data, sampler=DistributedSampler(data, shuffle=False), batch_size=4)
    plain = shard_loader(DataLoader(data, batch_size=4, shuffle=True))
    return {"refused": refused, "kept": shard_loader(mine) is mine,
            "split": len(plain.sampler) == len(data) // 2 and isinstance(plain.sampler, DistributedSampler)}


def run_recipe(argv: list[str]) -> None:
    """The face-embedding recipe, run as ``__main__`` in this torchrun job (last: it closes the group)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "train_face_embedding.py"
    saved = sys.argv
    sys.argv = [str(script), *argv]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved


def main() -> None:
    """``ddp_worker.py OUT [RECIPE ARGS...]``: the runs above, then the recipe when arguments follow."""
    out = Path(sys.argv[1])
    env = init_distributed(device="cpu", seed=0)
    results: dict[str, Any] = {
        "rank": env.rank, "world_size": env.world_size, "backend": str(env.backend),
        "threads": torch.get_num_threads(),
        "cross_entropy": run_cross_entropy(8, checkpoint=out / f"best-rank{env.rank}.pt"),
        "resume": run_resume(8, out / "resume.pt"),
        "triplet_gathered": run_triplet(2, n_batches=6, gathered=True),
        "triplet_per_rank": run_triplet(2, n_batches=6, gathered=False),
        "arcface": run_arcface(8),
        "loose_rejected": loose_parameters_rejected(),
        "shard_loader": shard_loader_cases(),
    }
    torch.save(results, out / f"rank{env.rank}.pt")
    if len(sys.argv) > 2:
        run_recipe(sys.argv[2:])
    close_distributed()


if __name__ == "__main__":
    main()
