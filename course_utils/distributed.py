"""Training on several processes (GPUs or CPU cores) with PyTorch's DistributedDataParallel.

Launch any script that calls :func:`init_distributed` and then
:func:`course_utils.train.fit` with ``torchrun``::

    torchrun --nproc_per_node=4 scripts/train_face_embedding.py --data /path/to/faces

:func:`init_distributed` reads torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``), joins the process group (``nccl`` on CUDA, ``gloo`` on the
CPU), pins each process to its GPU, gives it its share of the CPU threads and
its own seed. Without torchrun it does nothing but seed and return a
one-process :class:`DistEnv`, so the same script runs on a laptop.

``fit`` sees the process group and then, on its own:

* wraps the model (and a loss with parameters, such as ArcFace's class
  weights) in ``DistributedDataParallel``: gradients are averaged over the
  ranks, so every rank keeps identical weights;
* shards the training loader (:func:`shard_loader`): a plain data set gets a
  ``DistributedSampler``, a :class:`~course_utils.data.sampling.PKBatchSampler`
  becomes a :class:`~course_utils.data.sampling.DistributedPKBatchSampler`
  (disjoint identities on the ranks at every step); the validation loader is
  split without padding so its numbers are exact;
* sums the loss and metrics over the ranks (:func:`reduce_sums`), so every
  rank gets the same history and the callbacks decide the same way;
* shows the progress bar and writes ``BestCheckpoint`` files on rank 0 only.

Which losses see what. A loss that is a mean of per-sample terms
(cross-entropy, ArcFace, CosFace, center loss) needs nothing more: the mean
of the ranks' means is the mean over the global batch, and DDP averages the
gradients, so *N* processes with batch *B* train like one process with batch
*N x B*. A loss that compares samples with each other (batch-hard or
semi-hard triplet mining, NT-Xent) sees only the rank's own batch: mining per
rank is cheaper and is what multi-GPU FaceNet-style training usually does,
but it is *not* the same as mining the global batch (fewer, easier
negatives). Wrap such a loss in :class:`GatheredLoss` to compute it on the
embeddings gathered from all ranks (gradients flow back to each rank's own
samples); with a :class:`DistributedPKBatchSampler` it then equals the
one-process loss on the ``N x p`` identity batch.
"""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from course_utils.data.sampling import DistributedPKBatchSampler, PKBatchSampler
from course_utils.settings import (
    get_settings,
    limit_cpu_threads,
    resolve_device,
    seed_everything,
)

__all__ = [
    "DistEnv",
    "init_distributed",
    "close_distributed",
    "current_env",
    "is_main_process",
    "barrier",
    "main_process_first",
    "print_main",
    "threads_per_process",
    "rank_seed",
    "reduce_sums",
    "all_gather_with_grad",
    "GatheredLoss",
    "ShardSampler",
    "shard_loader",
    "set_sampler_epoch",
    "wrap_ddp",
    "FitParts",
    "prepare_fit",
    "all_finite",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a (possibly one-process) job.

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: number of processes in the job.
        local_rank: rank on this machine (the GPU index under torchrun).
        local_world_size: processes on this machine.
        backend: ``"nccl"``, ``"gloo"``, or ``None`` without a process group.
        device: this process's compute device.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        """Whether a process group with more than one process is running."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and prints)."""
        return self.rank == 0


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _group_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def current_env(device: str | torch.device | None = None) -> DistEnv:
    """This process's :class:`DistEnv`, read from the initialised process group (else one process).

    Args:
        device: reported as ``device`` (default: the current CUDA device under
            ``nccl``, else :func:`~course_utils.settings.resolve_device`).
    """
    if not _group_ready():
        return DistEnv(device=resolve_device(device))
    world = dist.get_world_size()
    backend = str(dist.get_backend())
    if device is None and backend == "nccl":
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = resolve_device(device)
    return DistEnv(rank=dist.get_rank(), world_size=world, local_rank=_int_env("LOCAL_RANK", 0),
                   local_world_size=_int_env("LOCAL_WORLD_SIZE", world), backend=backend, device=dev)


def threads_per_process(total: int | None = None, *, local_world_size: int | None = None) -> int:
    """CPU threads for each process: ``total`` (default: the CPUs this process may use) // local processes, >= 1."""
    if total is None:
        total = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = local_world_size if local_world_size is not None else _int_env("LOCAL_WORLD_SIZE", 1)
    return max(1, int(total) // max(1, local))


def rank_seed(seed: int | None = None, *, rank: int | None = None, epoch: int = 0) -> int:
    """A seed of its own for each ``(seed, rank, epoch)``: augmentation and dropout differ between ranks.

    ``seed`` defaults to ``COURSE_SEED``; ``rank`` to this process's rank.
    Data samplers must *not* use it: they share one seed on every rank.
    """
    base = get_settings().seed if seed is None else seed
    r = current_env().rank if rank is None else rank
    return int(np.random.SeedSequence([base, r, epoch]).generate_state(1)[0])


def init_distributed(
    *,
    device: str | torch.device | None = None,
    backend: str | None = None,
    seed: int | None = None,
    threads: int | None = None,
    timeout_s: float | None = None,
) -> DistEnv:
    """Join the process group torchrun set up (or run as one process) and prepare this process.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and
    ``MASTER_ADDR``/``MASTER_PORT`` from the environment. With ``WORLD_SIZE``
    unset or 1 no group is created. Then:

    * device: ``cuda:LOCAL_RANK`` on a CUDA machine (or when ``device`` says
      ``"cuda"``), else the CPU (``device`` as for ``resolve_device``);
    * backend: ``nccl`` for CUDA, ``gloo`` for the CPU, unless given;
    * CPU threads (on the CPU only): ``threads`` (default: the CPUs this
      process may use) divided by the processes on this machine, applied with
      :func:`~course_utils.settings.limit_cpu_threads` (this replaces
      torchrun's default of one thread per process);
    * seeds: :func:`rank_seed` of ``seed`` (default ``COURSE_SEED``), so
      each rank draws different augmentations. The model may start
      differently on each rank: DDP copies rank 0's weights to all.

    Calling it again returns the running group's :class:`DistEnv`.

    Raises:
        ValueError: Apple MPS asked for with more than one process (no backend supports it).
    """
    world = _int_env("WORLD_SIZE", 1)
    if _group_ready():
        return current_env(device)
    local_rank = _int_env("LOCAL_RANK", 0)
    local_world = _int_env("LOCAL_WORLD_SIZE", world)
    if world > 1:
        want = resolve_device(device)
        if want.type == "mps":
            raise ValueError("Distributed training needs CUDA (nccl) or the CPU (gloo); Apple MPS has no backend.")
        if want.type == "cuda":
            torch.cuda.set_device(local_rank)
            dev = torch.device("cuda", local_rank)
        else:
            dev = want
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        kwargs: dict[str, Any] = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(backend=backend, init_method="env://", rank=_int_env("RANK", 0),
                                world_size=world, **kwargs)
        env = DistEnv(rank=dist.get_rank(), world_size=world, local_rank=local_rank,
                      local_world_size=local_world, backend=backend, device=dev)
    else:
        env = DistEnv(device=resolve_device(device))
    if env.device.type == "cpu" and (env.distributed or threads is not None):
        limit_cpu_threads(threads_per_process(threads, local_world_size=env.local_world_size), device=env.device)
    seed_everything(rank_seed(seed, rank=env.rank))
    return env


def close_distributed() -> None:
    """Wait for every rank, then leave the process group (call it at the end of a torchrun script).

    The barrier lets rank 0 finish its evaluation first; the garbage
    collection frees DDP wrappers caught in reference cycles while the group
    still exists. Without it a rank sometimes aborted at interpreter exit
    ("terminate called without an active exception": a gloo thread outlived
    its group), in 2-3 of 10 torchrun jobs of tests/ddp_worker.py under CPU
    load; 0 of 24 with it. No-op without a group.
    """
    if _group_ready():
        barrier()
        gc.collect()
        dist.destroy_process_group()


def is_main_process() -> bool:
    """``True`` on rank 0 and in a one-process run."""
    return not _group_ready() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a one-process run)."""
    if _group_ready() and dist.get_world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (e.g. decode and cache data once)."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def print_main(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only."""
    if is_main_process():
        print(*args, **kwargs)


def reduce_sums(values: Sequence[Tensor | float], *, device: torch.device) -> list[float]:
    """Sum each value over the ranks in one ``all_reduce`` (float64); plain floats without a group.

    Args:
        values: 0-dim tensors or numbers (e.g. a loss sum, metric sums, a sample count).
        device: where the reduction runs (the CUDA device under ``nccl``).
    """
    if not (_group_ready() and dist.get_world_size() > 1):
        return [float(v) for v in values]
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    dist.all_reduce(packed)
    return packed.tolist()


class _AllGather(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice (works on gloo too)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, sizes: list[int]) -> Tensor:  # noqa: D102
        ctx.rank, ctx.sizes = dist.get_rank(), sizes
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def all_gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` ``(n_r, ...)`` of every rank ``r`` in rank order: ``(sum n_r, ...)``.

    Differentiable: the gradient reaching the gathered tensor on *all* ranks
    is summed and each rank gets the part for its own rows. Ranks may hold
    different numbers of rows. Without a process group it returns ``x``.
    """
    if not (_group_ready() and dist.get_world_size() > 1):
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    return _AllGather.apply(x.contiguous(), [int(s) for s in sizes])


class GatheredLoss(nn.Module):
    """Compute a batch loss on the embeddings and labels of *all* ranks (the global batch).

    For losses whose terms compare samples (batch-hard or semi-hard triplet
    mining, NT-Xent): the miner then searches the global batch, as one
    process would. Every rank computes the same loss; the gradient flows
    back to each rank's own embeddings, and DDP's averaging makes the update
    that of the global loss. In evaluation (no gradient) nothing is gathered:
    the loss is the rank's own. Without a process group it is ``loss``.

    Args:
        loss: ``loss(embeddings (N, D), labels (N,)) -> scalar``.

    Shapes: ``(n, D), (n,)`` on each rank -> scalar.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The wrapped loss on the gathered ``(sum n_r, D)`` embeddings and ``(sum n_r,)`` labels."""
        if torch.is_grad_enabled() and _group_ready() and dist.get_world_size() > 1:
            embeddings = all_gather_with_grad(embeddings)
            with torch.no_grad():
                labels = all_gather_with_grad(labels)
        return self.loss(embeddings, labels)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of a data set, in order, without padding (for evaluation).

    Unlike ``DistributedSampler`` no sample is repeated, so sums over the
    ranks are exact; the ranks may get one sample more or less.
    """

    def __init__(self, dataset: Dataset, *, rank: int | None = None, world_size: int | None = None) -> None:
        env = current_env()
        self.n = len(dataset)  # type: ignore[arg-type]
        self.rank = env.rank if rank is None else rank
        self.world_size = env.world_size if world_size is None else world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def _rebuild(loader: DataLoader, **kwargs: Any) -> DataLoader:
    """A DataLoader like ``loader`` (workers, collate, pinning ...) with another sampler."""
    workers = loader.num_workers
    return DataLoader(
        loader.dataset, num_workers=workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers and workers > 0, **kwargs,
    )


def shard_loader(loader: Iterable, *, train: bool = True, seed: int | None = None) -> Iterable:
    """This rank's share of ``loader``; unchanged without a process group or when already sharded.

    * ``PKBatchSampler`` batches -> :class:`DistributedPKBatchSampler`
      (same ``p`` and ``k`` per rank, disjoint identities across ranks);
    * a shuffled or sequential loader -> ``DistributedSampler`` for training
      (every rank gets the same number of batches, repeating a few samples
      if needed; shuffled with ``seed``, default ``COURSE_SEED``, the same
      on every rank) or :class:`ShardSampler` for evaluation (no repeats);
    * a sampler or batch sampler with a ``num_replicas`` or ``world_size``
      attribute, and anything that is not a ``DataLoader``, is taken to be
      this rank's share already.

    Raises:
        ValueError: a DataLoader with another sampler (iterable data sets,
            weighted or custom samplers): give it a rank-aware sampler yourself.
    """
    if not (_group_ready() and dist.get_world_size() > 1) or not isinstance(loader, DataLoader):
        return loader
    bs = loader.batch_sampler
    if any(hasattr(part, "num_replicas") or hasattr(part, "world_size") for part in (loader.sampler, bs)):
        return loader  # already rank-aware: DistributedSampler, ShardSampler, DistributedPKBatchSampler, yours
    if isinstance(bs, PKBatchSampler):
        return _rebuild(loader, batch_sampler=DistributedPKBatchSampler.from_sampler(bs))
    plain = isinstance(loader.sampler, SequentialSampler) or (
        isinstance(loader.sampler, RandomSampler) and not loader.sampler.replacement
        and loader.sampler.num_samples == len(loader.dataset))  # type: ignore[arg-type]
    if loader.batch_size is None or not plain:  # a custom batch_sampler, or an unusual sampler
        raise ValueError(
            f"Cannot split a DataLoader with a {type(loader.sampler).__name__} / {type(bs).__name__} over "
            f"{dist.get_world_size()} ranks. Use shuffle=True/False, a PKBatchSampler, or pass a "
            "DistributedSampler (or another rank-aware sampler) yourself."
        )
    if not train:
        sampler: Sampler[int] = ShardSampler(loader.dataset)
    else:
        sampler = DistributedSampler(loader.dataset, shuffle=isinstance(loader.sampler, RandomSampler),
                                     seed=get_settings().seed if seed is None else seed)
    return _rebuild(loader, batch_size=loader.batch_size, drop_last=loader.drop_last, sampler=sampler)


def set_sampler_epoch(loader: Iterable, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the loader's sampler or batch sampler, when it has one (0-based epochs)."""
    for part in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def _trainable(module: Any) -> bool:
    return isinstance(module, nn.Module) and any(p.requires_grad for p in module.parameters())


def wrap_ddp(module: nn.Module, *, device: torch.device, options: Mapping[str, Any] | None = None) -> nn.Module:
    """``DistributedDataParallel(module)`` on ``device`` (its GPU, or the CPU with ``device_ids=None``)."""
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, **dict(options or {}))


def _check_optimizer(optimizer: torch.optim.Optimizer, modules: Sequence[nn.Module]) -> None:
    synced = {id(p) for m in modules for p in m.parameters()}
    loose = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad and id(p) not in synced]
    if loose:
        raise ValueError(
            f"{len(loose)} parameter tensor(s) in the optimizer belong neither to the model nor to loss_fn, so "
            "DistributedDataParallel would not average their gradients and the ranks would drift apart. Put "
            "them in the model, or pass the module that owns them as loss_fn."
        )


@dataclass(frozen=True)
class FitParts:
    """What ``fit`` trains with on this rank (see :func:`prepare_fit`)."""

    env: DistEnv
    model: nn.Module
    loss_fn: Any
    train_loader: Iterable
    val_loader: Iterable | None


def prepare_fit(model: nn.Module, *, loss_fn: Any, optimizer: torch.optim.Optimizer, train_loader: Iterable,
                val_loader: Iterable | None, device: torch.device,
                ddp_options: Mapping[str, Any] | None = None) -> FitParts:
    """``fit``'s distributed set-up: DDP-wrapped model (and loss with parameters), sharded loaders.

    Without a process group (or with one process) everything is returned as
    given. The model must already be on ``device``.
    """
    env = current_env(device)
    if not env.distributed:
        if any(os.environ.get(v) for v in _TORCHRUN_VARS) and _int_env("WORLD_SIZE", 1) > 1:
            warnings.warn("This process was started by torchrun, but no process group is initialised, so every "
                          "rank trains alone. Call course_utils.distributed.init_distributed() first.",
                          RuntimeWarning, stacklevel=3)
        return FitParts(env, model, loss_fn, train_loader, val_loader)
    if device.type == "cuda" and env.backend != "nccl":
        warnings.warn(f"Training on {device} with the {env.backend} backend; nccl is much faster on GPUs.",
                      RuntimeWarning, stacklevel=3)
    wrapped_loss = wrap_ddp(loss_fn, device=device, options=ddp_options) if _trainable(loss_fn) else loss_fn
    _check_optimizer(optimizer, [model] + ([loss_fn] if _trainable(loss_fn) else []))
    return FitParts(env, wrap_ddp(model, device=device, options=ddp_options), wrapped_loss,
                    shard_loader(train_loader, train=True),
                    None if val_loader is None else shard_loader(val_loader, train=False))


def all_finite(loss: Tensor) -> bool:
    """Whether the loss is finite on *every* rank (one small ``all_reduce``), so all ranks skip or stop together."""
    bad = (~torch.isfinite(loss.detach())).any().to(torch.float32).reshape(1)
    if _group_ready() and dist.get_world_size() > 1:
        dist.all_reduce(bad)
    return not bool(bad.item())
