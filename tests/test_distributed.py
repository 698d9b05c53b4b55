"""DistributedDataParallel in fit: 2 CPU processes (gloo, launched with torchrun) against 1 process.

* 2 processes x batch B train exactly like 1 process x batch 2B (cross-entropy, SGD, no BatchNorm);
* batch-hard triplet on gathered embeddings equals 1 process on the P x K global batch, and per-rank
  mining does not (by design: each rank mines only its own batch);
* the distributed P x K sampler gives the ranks disjoint identities and covers them all;
* only rank 0 writes checkpoints; resuming from a checkpoint continues identically;
* the face-embedding recipe runs under torchrun on a tiny folder tree, and resumes identically.

One torchrun job (tests/ddp_worker.py, module-scoped fixture) runs every two-process case, the
recipe last; the one-process references run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data.sampling import DistributedPKBatchSampler, PKBatchSampler
from course_utils.distributed import (
    ShardSampler,
    all_gather_with_grad,
    init_distributed,
    rank_seed,
    reduce_sums,
    shard_loader,
    threads_per_process,
)

ROOT = Path(__file__).resolve().parents[1]
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                  "TORCHELASTIC_RUN_ID", "GROUP_RANK")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


worker = _load(Path(__file__).with_name("ddp_worker.py"), "ddp_worker")


def _torchrun(script: Path, *args: str, cwd: Path, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in _TORCHRUN_VARS}
    env.update(COURSE_PROGRESS="0", PYTHONWARNINGS="ignore", COURSE_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _face_tree(root: Path, *, people: int = 10, images: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for person in range(people):
        base = rng.integers(0, 256, (4, 4, 3))
        folder = root / f"person{person}"
        folder.mkdir(parents=True)
        for i in range(images):
            img = np.kron(base, np.ones((5, 5, 1))) + rng.normal(0, 20, (20, 20, 3))
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


_TINY = ["--image-size", "16", "--widths", "8,16,32", "--embedding-dim", "16", "--seed", "1"]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """One torchrun job: the worker's runs, then the recipe on a tiny folder tree (saves a second start-up)."""
    out = tmp_path_factory.mktemp("ddp")
    faces = _face_tree(out / "faces")
    _torchrun(ROOT / "tests" / "ddp_worker.py", str(out), "--data", str(faces), "--out", str(out / "recipe"),
              *_TINY, "--test-fraction", "0.3", "--epochs", "2", "--batch-size", "8", "--max-steps-per-epoch", "2",
              cwd=ROOT, cache=out / "cache")
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


# ---------------------------------------------------------------- samplers and helpers (one process)
def test_distributed_pk_sampler_gives_ranks_disjoint_identities_covering_all() -> None:
    targets = np.repeat(np.arange(12), 5)
    ranks = [DistributedPKBatchSampler(targets, p=3, k=2, n_batches=8, seed=7, rank=r, world_size=2) for r in (0, 1)]
    reference = PKBatchSampler(targets, p=6, k=2, n_batches=8, seed=7)
    for epoch in (0, 1):
        for s in (*ranks, reference):
            s.set_epoch(epoch)
        seen: set[int] = set()
        for b0, b1, whole in zip(*ranks, reference, strict=True):
            ids0, ids1 = set(targets[b0]), set(targets[b1])
            assert len(b0) == len(b1) == 6 and len(ids0) == len(ids1) == 3
            assert not ids0 & ids1  # disjoint identities at every step
            assert b0 + b1 == whole  # together: the one-process P x K batch of 2p identities
            seen |= ids0 | ids1
        assert seen == set(range(12))  # 8 steps x 6 identities visit all 12


def test_distributed_pk_sampler_from_sampler_and_errors() -> None:
    targets = np.repeat(np.arange(10), 4)
    base = PKBatchSampler(targets, p=2, k=2, n_batches=9, seed=3)
    d = DistributedPKBatchSampler.from_sampler(base, rank=1, world_size=3)
    assert (d.p_per_rank, d.k, d.seed, len(d), d.world_size) == (2, 2, 3, 3, 3)
    with pytest.raises(ValueError, match="3 rank"):
        DistributedPKBatchSampler(targets, p=4, k=2, rank=0, world_size=3)  # 12 identities needed, 10 exist
    with pytest.raises(ValueError, match="rank=2"):
        DistributedPKBatchSampler(targets, p=1, k=2, rank=2, world_size=2)


def test_shard_sampler_splits_without_repeats_and_single_process_is_untouched() -> None:
    ds = TensorDataset(torch.arange(11))
    parts = [list(ShardSampler(ds, rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for part in parts for i in part) == list(range(11)) and [len(p) for p in parts] == [4, 4, 3]
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    assert shard_loader(loader) is loader  # no process group: nothing changes
    assert all_gather_with_grad(ds.tensors[0]) is ds.tensors[0]
    assert reduce_sums([torch.tensor(2.0), 3], device=torch.device("cpu")) == [2.0, 3.0]


def test_threads_and_seeds_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert threads_per_process(8, local_world_size=2) == 4
    assert threads_per_process(1, local_world_size=4) == 1
    assert rank_seed(0, rank=0) != rank_seed(0, rank=1) != rank_seed(0, rank=1, epoch=1)
    for var in _TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    env = init_distributed(device="cpu", seed=5)
    assert (env.rank, env.world_size, env.distributed, env.backend) == (0, 1, False, None)
    assert torch.get_num_threads() == before  # one process: the thread count is left alone
    assert torch.initial_seed() == rank_seed(5, rank=0)


# ---------------------------------------------------------------- two processes against one
def test_two_processes_equal_one_process_with_double_batch(two_ranks: tuple[Path, list[dict]]) -> None:
    _, ranks = two_ranks
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert {r["backend"] for r in ranks} == {"gloo"}
    assert {r["threads"] for r in ranks} == {threads_per_process(local_world_size=2)}  # the CPUs, shared out
    one = worker.run_cross_entropy(16)
    for r in ranks:
        assert _max_diff(r["cross_entropy"]["params"], one["params"]) < 1e-5
        for got, want in zip(r["cross_entropy"]["history"], one["history"], strict=True):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):  # summed over the ranks
                assert got[key] == pytest.approx(want[key], abs=1e-5), key
    assert _max_diff(ranks[0]["cross_entropy"]["params"], worker.run_cross_entropy(8)["params"]) > 1e-3


def test_only_rank_zero_writes_checkpoints(two_ranks: tuple[Path, list[dict]]) -> None:
    out, _ = two_ranks
    assert (out / "best-rank0.pt").is_file()
    assert not (out / "best-rank1.pt").exists()


def test_resume_from_checkpoint_continues_identically(two_ranks: tuple[Path, list[dict]]) -> None:
    _, ranks = two_ranks
    for r in ranks:
        assert _max_diff(r["resume"]["straight"], r["resume"]["resumed"]) < 1e-6
        assert r["resume"]["epochs"] == [2, 2]  # fit told the sampler each epoch (0-based), also when resuming
    assert _max_diff(ranks[0]["resume"]["resumed"], ranks[1]["resume"]["resumed"]) == 0


def test_gathered_triplet_mining_equals_the_global_batch_and_per_rank_mining_does_not(
    two_ranks: tuple[Path, list[dict]],
) -> None:
    _, ranks = two_ranks
    one = worker.run_triplet(4, n_batches=3, gathered=False)  # the global batch: 4 identities x 2
    for r in ranks:
        assert _max_diff(r["triplet_gathered"], one) < 1e-5
    assert _max_diff(ranks[0]["triplet_per_rank"], one) > 1e-4
    assert _max_diff(ranks[0]["triplet_per_rank"], ranks[1]["triplet_per_rank"]) == 0  # still in sync


def test_loss_parameters_are_synchronised_and_stray_ones_refused(two_ranks: tuple[Path, list[dict]]) -> None:
    _, ranks = two_ranks
    one = worker.run_arcface(16)
    for r in ranks:
        assert _max_diff(r["arcface"], one) < 1e-5
        assert r["loose_rejected"]


def test_shard_loader_splits_plain_loaders_keeps_rank_aware_ones_and_refuses_others(
    two_ranks: tuple[Path, list[dict]],
) -> None:
    for r in two_ranks[1]:
        assert r["shard_loader"] == {"refused": True, "kept": True, "split": True}


# ---------------------------------------------------------------- the recipe
recipe = _load(ROOT / "scripts" / "train_face_embedding.py", "train_face_embedding")


def test_recipe_runs_under_torchrun(two_ranks: tuple[Path, list[dict]]) -> None:
    out = two_ranks[0] / "recipe"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["n_identities"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["embedding.pt", "last.pt", "metrics.json"]  # rank 0's only
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["meta"]["epoch"] == 2 and "loss.weight" in ckpt["state_dict"]


class _Crash(RuntimeError):
    pass


def test_recipe_resume_continues_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    faces = _face_tree(tmp_path / "faces")
    args = ["--data", str(faces), *_TINY, "--loss", "triplet", "--p", "3", "--k", "2", "--epochs", "2",
            "--test-fraction", "0", "--max-steps-per-epoch", "3"]
    threads = torch.get_num_threads()
    try:
        recipe.main([*args, "--out", str(tmp_path / "straight")])
        save = recipe.EpochCheckpoint.on_epoch_end

        def crash_after_first(self, state, record):  # the job dies right after writing epoch 1
            save(self, state, record)
            raise _Crash

        monkeypatch.setattr(recipe.EpochCheckpoint, "on_epoch_end", crash_after_first)
        with pytest.raises(_Crash):
            recipe.main([*args, "--out", str(tmp_path / "resumed")])
        monkeypatch.setattr(recipe.EpochCheckpoint, "on_epoch_end", save)
        recipe.main([*args, "--out", str(tmp_path / "resumed"), "--resume"])
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["meta"]["epoch"] == b["meta"]["epoch"] == 2
    assert _max_diff(a["state_dict"], b["state_dict"]) < 1e-6
