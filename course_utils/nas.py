"""Neural architecture search small enough to run: search space, search strategy, performance estimation.

The three components of every NAS method (Elsken, Metzen & Hutter, 2019), one section each:

- **Search space**: :class:`StageSpec` (block type, width, depth, kernel size, squeeze-excite for one
  stage), :class:`Candidate` (one spec per stage), :class:`SearchSpace` (the choices; enumerate,
  sample, mutate) and :func:`build_candidate`, which builds a candidate from the zoo's blocks.
- **Performance estimation**: :class:`TrainingEstimator` scores a candidate by short training with
  :func:`course_utils.train.fit` (validation accuracy after each epoch); it keeps each run, so a
  longer query resumes it. Queried for the whole space it is a lookup table, like NAS-Bench-101.
- **Search strategy**: :func:`random_search`, :func:`regularized_evolution` (Real et al., 2019) and
  :func:`successive_halving` (Jamieson & Talwalkar, 2016), all charged in training epochs by a
  :class:`Budget` and deterministic given a seed; each returns a :class:`SearchResult`.

Layering: this module trains, so it sits above ``train``; it imports ``train``, ``models`` and
``cost``, and only notebooks import it.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.cost import count_macs, count_parameters
from course_utils.models import BasicBlock, ConvNormAct, MBConv, SqueezeExcite
from course_utils.train import accuracy, evaluate, fit, make_loader

__all__ = [
    "BLOCK_TYPES", "StageSpec", "Candidate", "SearchSpace", "build_candidate",
    "TrainingRecipe", "TrainingEstimator",
    "Trial", "SearchResult", "BudgetExhausted", "Budget", "Rung", "halving_schedule", "halving_cost",
    "random_search", "regularized_evolution", "successive_halving",
]  # fmt: skip

#: Block types of the space: a plain conv-BN-ReLU, a ResNet basic block, an EfficientNet MBConv.
BLOCK_TYPES: tuple[str, ...] = ("conv", "residual", "mbconv")
_SHORT = {"conv": "conv", "residual": "res", "mbconv": "mb"}


# ----------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of type ``block`` with ``width`` output channels and ``kernel`` x ``kernel``
    convolutions, with or without squeeze-excite; its first block halves the resolution."""

    block: str = "residual"
    width: int = 16
    depth: int = 1
    kernel: int = 3
    se: bool = False

    @property
    def label(self) -> str:
        """``"res16x1k3"``, ``"mb32x2k5+se"``: block, width, depth, kernel, SE."""
        return f"{_SHORT[self.block]}{self.width}x{self.depth}k{self.kernel}{'+se' if self.se else ''}"


@dataclass(frozen=True)
class Candidate:
    """One architecture of a :class:`SearchSpace`: a :class:`StageSpec` per stage (hashable, a table key)."""

    stages: tuple[StageSpec, ...]

    @property
    def label(self) -> str:
        """Stage labels joined by ``"|"``, e.g. ``"conv16x1k3|mb32x1k3+se"``."""
        return "|".join(s.label for s in self.stages)


_ATTRIBUTES = ("block", "width", "depth", "kernel", "se")


@dataclass(frozen=True)
class SearchSpace:
    """The choices of every stage (the same for each of ``n_stages`` stages, chosen independently).

    The zoo's :class:`~course_utils.models.BasicBlock` is 3x3 only, so a residual stage is valid
    with ``kernel == 3`` alone (:meth:`valid`); every other combination of the choices is valid.
    """

    n_stages: int = 2
    blocks: tuple[str, ...] = BLOCK_TYPES
    widths: tuple[int, ...] = (16, 32)
    depths: tuple[int, ...] = (1, 2)
    kernels: tuple[int, ...] = (3, 5)
    se: tuple[bool, ...] = (False, True)

    def __post_init__(self) -> None:
        unknown = set(self.blocks) - set(BLOCK_TYPES)
        if self.n_stages < 1 or unknown or not all((self.blocks, self.widths, self.depths, self.kernels, self.se)):
            raise ValueError(f"need n_stages >= 1 and non-empty choices from {BLOCK_TYPES}; got {self}.")
        if not self.stage_choices():
            raise ValueError(f"no valid stage in {self}: a residual stage needs kernel 3.")

    def _choices(self, attribute: str) -> tuple[Any, ...]:
        return {"block": self.blocks, "width": self.widths, "depth": self.depths, "kernel": self.kernels,
                "se": self.se}[attribute]

    @staticmethod
    def valid(spec: StageSpec) -> bool:
        """Whether the zoo's blocks can build ``spec`` (a residual stage needs ``kernel == 3``)."""
        return spec.block != "residual" or spec.kernel == 3

    def stage_choices(self) -> list[StageSpec]:
        """Every valid :class:`StageSpec`, in a fixed order."""
        specs = (StageSpec(*values) for values in itertools.product(*(self._choices(a) for a in _ATTRIBUTES)))
        return [s for s in specs if self.valid(s)]

    @property
    def size(self) -> int:
        """Number of candidates: ``len(stage_choices()) ** n_stages``."""
        return len(self.stage_choices()) ** self.n_stages

    def candidates(self, *, limit: int = 100_000) -> list[Candidate]:
        """Every candidate, in a fixed order (refuses spaces larger than ``limit``)."""
        if self.size > limit:
            raise ValueError(f"{self.size} candidates; enumerate at most {limit} (raise limit= to insist).")
        return [Candidate(tuple(c)) for c in itertools.product(self.stage_choices(), repeat=self.n_stages)]

    def __contains__(self, candidate: object) -> bool:
        if not isinstance(candidate, Candidate) or len(candidate.stages) != self.n_stages:
            return False
        return all(self.valid(s) and all(getattr(s, a) in self._choices(a) for a in _ATTRIBUTES)
                   for s in candidate.stages)

    def sample(self, rng: np.random.Generator, *, exclude: Any = ()) -> Candidate | None:
        """A uniformly random candidate not in ``exclude``; ``None`` when every candidate is excluded.

        Draws each stage uniformly from :meth:`stage_choices` (rejection sampling, then enumeration
        of what is left after 1,000 rejections).
        """
        choices = self.stage_choices()
        for _ in range(1000):
            cand = Candidate(tuple(choices[int(i)] for i in rng.integers(0, len(choices), size=self.n_stages)))
            if cand not in exclude:
                return cand
        left = [c for c in self.candidates() if c not in exclude]
        return left[int(rng.integers(len(left)))] if left else None

    def neighbours(self, candidate: Candidate) -> list[Candidate]:
        """Candidates that differ from ``candidate`` in exactly one choice of one stage (valid ones only)."""
        out = []
        for i, spec in enumerate(candidate.stages):
            for a in _ATTRIBUTES:
                for value in self._choices(a):
                    new = replace(spec, **{a: value})
                    if value != getattr(spec, a) and self.valid(new):
                        out.append(Candidate(candidate.stages[:i] + (new,) + candidate.stages[i + 1:]))
        return out

    def mutate(self, candidate: Candidate, *, rng: np.random.Generator) -> Candidate:
        """One uniformly random neighbour (:meth:`neighbours`): change one choice of one stage."""
        options = self.neighbours(candidate)
        if not options:
            raise ValueError(f"{candidate.label} has no neighbour: every choice of the space is fixed.")
        return options[int(rng.integers(len(options)))]


def _block(spec: StageSpec, in_chs: int, *, stride: int, expand_ratio: float) -> nn.Module:
    """One block of a stage, ``(N, in_chs, H, W)`` -> ``(N, spec.width, H / stride, W / stride)``."""
    se = partial(SqueezeExcite, rd_ratio=0.25)
    if spec.block == "conv":
        conv = ConvNormAct(in_chs, spec.width, spec.kernel, stride=stride)
        return nn.Sequential(conv, se(spec.width)) if spec.se else conv
    if spec.block == "residual":
        if spec.kernel != 3:
            raise ValueError(f"the zoo's BasicBlock is 3x3 only, got kernel {spec.kernel}.")
        return BasicBlock(in_chs, spec.width, stride=stride, attn_layer=se if spec.se else None)
    return MBConv(in_chs, spec.width, stride=stride, expand_ratio=expand_ratio, kernel_size=spec.kernel,
                  se_ratio=0.25 if spec.se else 0.0)


def build_candidate(candidate: Candidate, *, num_classes: int = 10, in_chans: int = 3, stem_width: int = 16,
                    expand_ratio: float = 3.0) -> nn.Sequential:
    """The network of ``candidate``: a 3x3 stem, its stages (each starts at stride 2), pooling, a linear head.

    Blocks come from :mod:`course_utils.models`: ``ConvNormAct`` (+ ``SqueezeExcite``),
    ``BasicBlock`` (SE as its ``attn_layer``) and ``MBConv`` (``se_ratio`` 0.25 or 0).

    Shapes: ``(N, in_chans, H, W)`` -> ``(N, num_classes)``.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=ConvNormAct(in_chans, stem_width, 3))
    chs = stem_width
    for i, spec in enumerate(candidate.stages):
        blocks = []
        for j in range(spec.depth):
            blocks.append(_block(spec, chs, stride=2 if j == 0 else 1, expand_ratio=expand_ratio))
            chs = spec.width
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
    layers["pool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(chs, num_classes)
    return nn.Sequential(layers)


# ----------------------------------------------------------------------------- performance estimation
@dataclass(frozen=True)
class TrainingRecipe:
    """How a candidate is trained to score it: AdamW at a constant learning rate (so a resumed run
    is the same run as an uninterrupted one), no augmentation; ``seed`` for weights and batch order."""

    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0


@dataclass
class _Run:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loader: Any
    val_acc: list[float] = field(default_factory=list)
    test_acc: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0


class TrainingEstimator:
    """Performance estimation by short training: ``estimator(candidate, epochs)`` is its validation accuracy
    after ``epochs`` epochs of :func:`~course_utils.train.fit` on ``train_set``.

    Each run is kept (model, optimizer, loader), so asking for more epochs resumes it and asking
    again costs nothing: once every candidate is queried it is a lookup table. Every candidate
    starts from the same seed. ``test_set`` is scored (:meth:`test_accuracy`) but never searched on.
    """

    def __init__(self, train_set: Any, *, val_set: Any, test_set: Any = None, num_classes: int, image_size: int,
                 recipe: TrainingRecipe = TrainingRecipe(), device: str | torch.device | None = "cpu",
                 build: Callable[..., nn.Module] = build_candidate) -> None:
        self.train_set, self.val_set, self.test_set = train_set, val_set, test_set
        self.num_classes, self.image_size, self.recipe = int(num_classes), int(image_size), recipe
        self.device, self.build = torch.device(device or "cpu"), build
        self.val_loader = make_loader(val_set, batch_size=256, device=self.device)
        self.test_loader = None if test_set is None else make_loader(test_set, batch_size=256, device=self.device)
        self.runs: dict[Candidate, _Run] = {}

    def _new_run(self, candidate: Candidate) -> _Run:
        torch.manual_seed(self.recipe.seed)
        model = self.build(candidate, num_classes=self.num_classes).to(self.device)
        opt = torch.optim.AdamW(model.parameters(), lr=self.recipe.lr, weight_decay=self.recipe.weight_decay)
        loader = make_loader(self.train_set, batch_size=self.recipe.batch_size, shuffle=True, device=self.device,
                             generator=torch.Generator().manual_seed(self.recipe.seed))
        return _Run(model, opt, loader)

    def __call__(self, candidate: Candidate, epochs: int) -> float:
        """Validation accuracy after ``epochs`` epochs (trains, resumes or looks up)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}.")
        run = self.runs.get(candidate) or self.runs.setdefault(candidate, self._new_run(candidate))
        done = len(run.val_acc)
        if epochs > done:
            start = time.perf_counter()
            history = fit(run.model, run.loader, loss_fn=nn.functional.cross_entropy, optimizer=run.optimizer,
                          epochs=epochs, start_epoch=done + 1, val_loader=self.val_loader,
                          metrics={"acc": accuracy}, device=self.device, progress=False)
            run.val_acc.extend(float(v) for v in history["val_acc"])
            if self.test_loader is not None:
                run.test_acc[epochs] = float(evaluate(run.model, self.test_loader, metrics={"acc": accuracy},
                                                      device=self.device)["acc"])
            run.seconds += time.perf_counter() - start
        return run.val_acc[epochs - 1]

    def val_curve(self, candidate: Candidate) -> list[float]:
        """Validation accuracy after each epoch trained so far (empty when never queried)."""
        run = self.runs.get(candidate)
        return [] if run is None else list(run.val_acc)

    def test_accuracy(self, candidate: Candidate, *, epochs: int) -> float:
        """Test accuracy after ``epochs`` epochs (NaN unless a query stopped exactly there)."""
        run = self.runs.get(candidate)
        return float("nan") if run is None else run.test_acc.get(epochs, float("nan"))

    def table(self, epochs: int) -> list[dict[str, Any]]:
        """One row per queried candidate: label, validation and test accuracy after ``epochs`` (NaN when not
        trained that long), parameters, multiply-adds per image and training seconds so far."""
        rows = []
        for cand, run in self.runs.items():
            with torch.device("meta"):
                meta = self.build(cand, num_classes=self.num_classes)
            rows.append({"candidate": cand, "label": cand.label,
                         "val acc": run.val_acc[epochs - 1] if len(run.val_acc) >= epochs else float("nan"),
                         "test acc": self.test_accuracy(cand, epochs=epochs), "params": count_parameters(meta),
                         "MACs": count_macs(meta, (1, 3, self.image_size, self.image_size)),
                         "train s": run.seconds})
        return rows


# ----------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Trial:
    """One query of a search: ``candidate`` scored ``score`` after ``epochs``; ``spent``: epochs charged so far."""

    candidate: Candidate
    epochs: int
    score: float
    spent: int


@dataclass(frozen=True)
class SearchResult:
    """What a strategy returns: the chosen candidate and its score, and every trial in order."""

    strategy: str
    seed: int
    best: Candidate
    best_score: float
    trials: tuple[Trial, ...]
    spent: int
    budget: int

    @property
    def n_trained(self) -> int:
        """Distinct candidates trained (for any number of epochs)."""
        return len({t.candidate for t in self.trials})

    def incumbents(self) -> list[Candidate]:
        """The best candidate by score so far after each trial (the first on ties), ``len(trials)`` long.

        For random search and evolution, the first ``k`` trials of a run are the run with a budget of
        ``k`` candidates, so this is the result at every smaller budget.
        """
        out, best = [], None
        for t in self.trials:
            if best is None or t.score > best.score:
                best = t
            out.append(best.candidate)
        return out


class BudgetExhausted(RuntimeError):
    """A query would cost more epochs than the budget has left."""


class Budget:
    """Charges one search run for the training it asks for, in epochs.

    ``budget(candidate, epochs)`` calls ``query(candidate, epochs)``; the cost is the epochs not yet
    charged for that candidate in this run (resuming a run to more epochs costs only the new ones,
    asking again is free). A query beyond the budget raises :class:`BudgetExhausted`.
    """

    def __init__(self, query: Callable[[Candidate, int], float], *, epochs: int) -> None:
        if epochs < 1:
            raise ValueError(f"a budget needs >= 1 epoch, got {epochs}.")
        self.query, self.total, self.spent = query, int(epochs), 0
        self.trained: dict[Candidate, int] = {}
        self.trials: list[Trial] = []

    def cost(self, candidate: Candidate, epochs: int) -> int:
        """Epochs this query would be charged."""
        return max(0, epochs - self.trained.get(candidate, 0))

    def affords(self, candidate: Candidate | None, epochs: int) -> bool:
        """Whether the budget covers this query (a new candidate costs ``epochs`` when ``None``)."""
        return (epochs if candidate is None else self.cost(candidate, epochs)) <= self.total - self.spent

    def __call__(self, candidate: Candidate, epochs: int) -> float:
        cost = self.cost(candidate, epochs)
        if cost > self.total - self.spent:
            raise BudgetExhausted(f"{candidate.label} for {epochs} epochs costs {cost}, "
                                  f"{self.total - self.spent} of {self.total} left.")
        score = float(self.query(candidate, epochs))
        self.spent += cost
        self.trained[candidate] = max(epochs, self.trained.get(candidate, 0))
        self.trials.append(Trial(candidate, epochs, score, self.spent))
        return score

    def result(self, strategy: str, seed: int, best: Candidate | None = None) -> SearchResult:
        """The :class:`SearchResult`; ``best`` defaults to the highest-scoring trial (the first on ties)."""
        if not self.trials:
            raise ValueError(f"{strategy}: the budget of {self.total} epochs bought no trial.")
        if best is None:
            best = max(self.trials, key=lambda t: t.score).candidate
        score = max(t.score for t in self.trials if t.candidate == best and t.epochs == self.trained[best])
        return SearchResult(strategy, seed, best, score, tuple(self.trials), self.spent, self.total)


# ----------------------------------------------------------------------------- search strategies
Query = Callable[[Candidate, int], float]


def random_search(space: SearchSpace, *, query: Query, budget: int, epochs: int, seed: int = 0) -> SearchResult:
    """Train distinct uniformly random candidates for ``epochs`` each until ``budget`` epochs are spent;
    return the best by ``query``'s score. The baseline every NAS method must beat."""
    rng, b = np.random.default_rng(seed), Budget(query, epochs=budget)
    while b.affords(None, epochs) and (cand := space.sample(rng, exclude=b.trained)) is not None:
        b(cand, epochs)
    return b.result("random search", seed)


def regularized_evolution(space: SearchSpace, *, query: Query, budget: int, epochs: int, seed: int = 0,
                          population: int = 4, sample_size: int = 2) -> SearchResult:
    """Regularised ("aging") evolution (Real, Aggarwal, Huang & Le, 2019), charged like :func:`random_search`.

    Start with ``population`` random candidates (the same first draws as :func:`random_search` with
    this seed: a paired comparison). Then repeat: pick ``sample_size`` members at random, mutate the
    best of them (:meth:`SearchSpace.mutate`; mutate again while the child was already trained),
    train the child, add it and drop the *oldest* member (not the worst: ageing). Returns the best
    candidate ever trained.
    """
    if population < 1 or not 1 <= sample_size <= population:
        raise ValueError(f"need population >= 1 and 1 <= sample_size <= population, got {population}, {sample_size}.")
    rng, b = np.random.default_rng(seed), Budget(query, epochs=budget)
    pop: deque[tuple[Candidate, float]] = deque()
    while len(pop) < population and b.affords(None, epochs):
        cand = space.sample(rng, exclude=b.trained)
        if cand is None:
            return b.result("regularized evolution", seed)
        pop.append((cand, b(cand, epochs)))
    while b.affords(None, epochs) and len(b.trained) < space.size:
        picks = rng.choice(len(pop), size=sample_size, replace=False)
        parent = max((pop[int(i)] for i in picks), key=lambda m: m[1])[0]
        child = space.mutate(parent, rng=rng)
        for _ in range(100):  # a random walk away from what this run has trained
            if child not in b.trained:
                break
            child = space.mutate(child, rng=rng)
        else:
            child = space.sample(rng, exclude=b.trained)
        pop.append((child, b(child, epochs)))
        pop.popleft()
    return b.result("regularized evolution", seed)


@dataclass(frozen=True)
class Rung:
    """One round of successive halving: ``n`` candidates trained to ``epochs`` epochs in all."""

    n: int
    epochs: int


def halving_schedule(n: int, *, min_epochs: int, max_epochs: int, eta: int = 2) -> tuple[Rung, ...]:
    """Rungs of successive halving: rung ``k`` trains ``max(1, n // eta**k)`` candidates to
    ``min(min_epochs * eta**k, max_epochs)`` epochs; the last rung reaches ``max_epochs``."""
    if n < 1 or eta < 2 or not 1 <= min_epochs <= max_epochs:
        raise ValueError(f"need n >= 1, eta >= 2, 1 <= min_epochs <= max_epochs; got {n}, {eta}, "
                         f"{min_epochs}, {max_epochs}.")
    rungs, k = [], 0
    while True:
        r = min(min_epochs * eta**k, max_epochs)
        rungs.append(Rung(max(1, n // eta**k), r))
        if r == max_epochs:
            return tuple(rungs)
        k += 1


def halving_cost(schedule: Sequence[Rung]) -> int:
    """Epochs a schedule costs when survivors resume training: ``sum_k n_k (r_k - r_{k-1})``, ``r_{-1} = 0``."""
    previous, total = 0, 0
    for rung in schedule:
        total += rung.n * (rung.epochs - previous)
        previous = rung.epochs
    return total


def successive_halving(space: SearchSpace, *, query: Query, budget: int, max_epochs: int, min_epochs: int = 1,
                       eta: int = 2, seed: int = 0) -> SearchResult:
    """Successive halving (Jamieson & Talwalkar, 2016): train many random candidates briefly, keep the best
    ``1 / eta``, train those ``eta`` times longer (resumed), until ``max_epochs``.

    Starts with the most candidates ``n`` (at most the space's size) whose :func:`halving_schedule`
    fits ``budget`` (:func:`halving_cost`); returns the best of the last rung.
    """
    def plan(n: int) -> tuple[Rung, ...]:
        return halving_schedule(n, min_epochs=min_epochs, max_epochs=max_epochs, eta=eta)

    if halving_cost(plan(1)) > budget:
        raise ValueError(f"a budget of {budget} epochs cannot train one candidate to {max_epochs} epochs.")
    n = 1
    while n < space.size and halving_cost(plan(n + 1)) <= budget:  # the cost grows with n
        n += 1
    schedule = plan(n)
    rng, b = np.random.default_rng(seed), Budget(query, epochs=budget)
    alive: list[Candidate] = []
    for _ in range(schedule[0].n):
        alive.append(space.sample(rng, exclude=set(alive)))
    for rung in schedule:
        alive = alive[:rung.n]
        scores = [b(c, rung.epochs) for c in alive]
        order = sorted(range(len(alive)), key=lambda i: -scores[i])  # stable: earlier draw first on ties
        alive = [alive[i] for i in order]
    return b.result("successive halving", seed, best=alive[0])
