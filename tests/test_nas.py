"""course_utils.nas: the search space builds, strategies keep their budgets and seeds, evolution climbs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from course_utils.cost import count_macs, pareto_front
from course_utils.nas import (
    Budget,
    BudgetExhausted,
    Candidate,
    Rung,
    SearchSpace,
    StageSpec,
    TrainingEstimator,
    TrainingRecipe,
    build_candidate,
    halving_cost,
    halving_schedule,
    random_search,
    regularized_evolution,
    successive_halving,
)
from course_utils.viz import plot_pareto_front

# every choice of the notebook's full-mode space, on one small stage
ONE_STAGE = SearchSpace(n_stages=1, widths=(8, 12), depths=(1, 2), kernels=(3, 5), se=(False, True))
# a toy landscape: each choice adds a fixed amount; the optimum is unique
TOY = SearchSpace(n_stages=3, widths=(16, 32), depths=(1, 2), kernels=(3, 5), se=(False, True))
GAIN = {"block": {"conv": 0.0, "residual": 0.6, "mbconv": 0.3}, "width": {16: 0.0, 32: 0.2},
        "depth": {1: 0.0, 2: 0.1}, "kernel": {3: 0.0, 5: 0.15}, "se": {False: 0.0, True: 0.05}}


def toy_score(cand: Candidate, epochs: int = 1) -> float:
    """Additive in the choices of each stage (stage weights 1, 2, 3), a little better with more epochs."""
    total = sum((i + 1) * sum(GAIN[a][getattr(s, a)] for a in GAIN) for i, s in enumerate(cand.stages))
    return total + 0.01 * epochs


TOY_BEST = max(TOY.candidates(), key=toy_score)


def test_space_enumerates_valid_distinct_candidates():
    cands = ONE_STAGE.candidates()
    assert len(cands) == len(set(cands)) == ONE_STAGE.size
    # conv and mbconv: 2 widths x 2 depths x 2 kernels x 2 SE each; residual is 3x3 only: 2 x 2 x 1 x 2
    assert ONE_STAGE.size == 16 + 16 + 8
    assert all(c in ONE_STAGE for c in cands)
    assert Candidate((StageSpec("residual", 8, 1, 5, False),)) not in ONE_STAGE
    assert Candidate((StageSpec("conv", 64, 1, 3, False),)) not in ONE_STAGE  # width not a choice
    with pytest.raises(ValueError):
        SearchSpace(blocks=("residual",), kernels=(5,))
    with pytest.raises(ValueError):
        TOY.candidates(limit=100)


@pytest.mark.parametrize("px", [16, 32])
def test_every_candidate_builds_with_the_right_output_shape(px):
    x = torch.randn(2, 3, px, px)
    for cand in ONE_STAGE.candidates():
        model = build_candidate(cand, num_classes=7).eval()
        with torch.no_grad():
            assert model(x).shape == (2, 7), cand.label
    rng = np.random.default_rng(0)
    for _ in range(10):  # three stages: 1/8 of the resolution
        cand = TOY.sample(rng)
        model = build_candidate(cand, num_classes=10).eval()
        assert model.fc.in_features == cand.stages[-1].width
        with torch.no_grad():
            assert model(x).shape == (2, 10)


def test_build_reflects_the_choices():
    se, plain = (Candidate((StageSpec(b, 16, 2, 3, flag),)) for b, flag in (("mbconv", True), ("mbconv", False)))
    assert count_macs(build_candidate(se), (1, 3, 16, 16)) > count_macs(build_candidate(plain), (1, 3, 16, 16))
    k5 = Candidate((StageSpec("conv", 16, 1, 5, False),))
    assert build_candidate(k5).stage1[0].conv.kernel_size == (5, 5)
    assert len(build_candidate(plain).stage1) == 2
    with pytest.raises(ValueError):
        build_candidate(Candidate((StageSpec("residual", 16, 1, 5, False),)))


def test_mutation_changes_exactly_one_choice():
    rng = np.random.default_rng(1)
    for _ in range(50):
        parent = TOY.sample(rng)
        child = TOY.mutate(parent, rng=rng)
        assert child in TOY
        changed = [(i, f.name) for i, (a, b) in enumerate(zip(parent.stages, child.stages))
                   for f in dataclasses.fields(StageSpec) if getattr(a, f.name) != getattr(b, f.name)]
        # one choice, except the kernel that must reset to 3 when a stage becomes residual: never happens,
        # invalid neighbours are left out instead
        assert len(changed) == 1, changed
    assert len(TOY.neighbours(TOY_BEST)) == len(set(TOY.neighbours(TOY_BEST)))


def test_sample_respects_exclude():
    rng = np.random.default_rng(0)
    cands = ONE_STAGE.candidates()
    assert ONE_STAGE.sample(rng, exclude=set(cands[1:])) == cands[0]
    assert ONE_STAGE.sample(rng, exclude=set(cands)) is None


def test_budget_charges_new_epochs_only():
    calls = []
    b = Budget(lambda c, e: calls.append((c, e)) or toy_score(c, e), epochs=5)
    c = TOY.sample(np.random.default_rng(0))
    b(c, 2)
    b(c, 2)  # asked again: free
    b(c, 4)  # resumed: 2 more
    assert b.spent == 4 and [t.spent for t in b.trials] == [2, 2, 4]
    assert not b.affords(None, 2) and b.affords(None, 1)
    with pytest.raises(BudgetExhausted):
        b(TOY.sample(np.random.default_rng(1), exclude={c}), 2)
    assert b.spent == 4 and len(calls) == 3


@pytest.mark.parametrize("strategy", ["random", "evolution", "halving"])
def test_strategies_keep_the_budget_and_are_deterministic(strategy):
    def run(seed, budget):
        if strategy == "random":
            return random_search(TOY, query=toy_score, budget=budget, epochs=2, seed=seed)
        if strategy == "evolution":
            return regularized_evolution(TOY, query=toy_score, budget=budget, epochs=2, seed=seed)
        return successive_halving(TOY, query=toy_score, budget=budget, max_epochs=4, seed=seed)

    for budget in (8, 21, 60):
        res = run(3, budget)
        assert res.spent <= budget and res.trials[-1].spent == res.spent
        assert res.best in {t.candidate for t in res.trials} and res.best in TOY
        if strategy != "halving":  # every trial is a new candidate trained for 2 epochs, while it fits
            assert res.n_trained == len(res.trials) == budget // 2
        assert run(3, budget) == res  # same seed: same trials, same choice
    assert {run(s, 21).trials for s in range(4)}.__len__() > 1  # other seeds: other searches


def test_random_and_evolution_start_from_the_same_draws():
    rnd = random_search(TOY, query=toy_score, budget=20, epochs=1, seed=5)
    evo = regularized_evolution(TOY, query=toy_score, budget=20, epochs=1, seed=5, population=4)
    assert [t.candidate for t in rnd.trials[:4]] == [t.candidate for t in evo.trials[:4]]
    # the prefix property behind incumbent curves: a smaller budget is the start of the same run
    short = regularized_evolution(TOY, query=toy_score, budget=12, epochs=1, seed=5, population=4)
    assert short.trials == evo.trials[:12] and short.best == evo.incumbents()[11]


def test_evolution_finds_the_toy_optimum_more_often_than_chance():
    budget, seeds = 100, range(30)
    evo = [regularized_evolution(TOY, query=toy_score, budget=budget, epochs=1, seed=s, population=10,
                                 sample_size=3).best == TOY_BEST for s in seeds]
    rnd = [random_search(TOY, query=toy_score, budget=budget, epochs=1, seed=s).best == TOY_BEST for s in seeds]
    chance = budget / TOY.size  # the probability that random search trains the optimum at all: 1 in 640
    assert chance < 0.002
    # 7 of 30 when written; chance predicts 0.05 of 30, so 3 hits are already 60 times chance
    assert sum(evo) >= 3 and sum(evo) > sum(rnd), (sum(evo), sum(rnd), chance)


def test_halving_schedule_arithmetic():
    s = halving_schedule(16, min_epochs=1, max_epochs=8, eta=2)
    assert s == (Rung(16, 1), Rung(8, 2), Rung(4, 4), Rung(2, 8))
    assert halving_cost(s) == 16 * 1 + 8 * 1 + 4 * 2 + 2 * 4 == 40  # survivors resume
    assert halving_schedule(8, min_epochs=1, max_epochs=2) == (Rung(8, 1), Rung(4, 2))
    assert halving_cost(halving_schedule(11, min_epochs=1, max_epochs=2)) == 11 + 5
    s3 = halving_schedule(27, min_epochs=1, max_epochs=9, eta=3)
    assert s3 == (Rung(27, 1), Rung(9, 3), Rung(3, 9)) and halving_cost(s3) == 27 + 18 + 18
    assert halving_schedule(5, min_epochs=3, max_epochs=5) == (Rung(5, 3), Rung(2, 5))  # capped at max
    assert halving_schedule(1, min_epochs=2, max_epochs=2) == (Rung(1, 2),)
    with pytest.raises(ValueError):
        halving_schedule(4, min_epochs=3, max_epochs=2)


def test_successive_halving_spends_as_scheduled_and_keeps_the_best():
    res = successive_halving(TOY, query=toy_score, budget=16, max_epochs=2, seed=0)
    screened = [t for t in res.trials if t.epochs == 1]
    finals = [t for t in res.trials if t.epochs == 2]
    assert len(screened) == 11 and len(finals) == 5 and res.spent == 16  # the largest n that fits
    top5 = sorted(screened, key=lambda t: -t.score)[:5]
    assert {t.candidate for t in finals} == {t.candidate for t in top5}
    assert res.best == max(finals, key=lambda t: t.score).candidate
    with pytest.raises(ValueError):
        successive_halving(TOY, query=toy_score, budget=1, max_epochs=2)


def _tiny_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, 8, 8, generator=g) * 0.5 + y.view(-1, 1, 1, 1).float()  # separable by brightness
    return TensorDataset(x, y)


def test_training_estimator_resumes_the_same_run_and_feeds_a_real_search():
    data = {"val_set": _tiny_data(32, 1), "test_set": _tiny_data(32, 2), "num_classes": 2, "image_size": 8,
            "recipe": TrainingRecipe(batch_size=16, lr=1e-2)}
    space = SearchSpace(n_stages=1, blocks=("conv", "mbconv"), widths=(8,), depths=(1,), kernels=(3,), se=(False,))
    cand = space.candidates()[0]
    resumed, fresh = TrainingEstimator(_tiny_data(64, 0), **data), TrainingEstimator(_tiny_data(64, 0), **data)
    resumed(cand, 1)
    assert resumed(cand, 3) == fresh(cand, 3) and resumed.runs[cand].val_acc == fresh.runs[cand].val_acc
    assert np.isnan(resumed.test_accuracy(cand, epochs=2)) and 0 <= resumed.test_accuracy(cand, epochs=3) <= 1
    res = random_search(space, query=fresh, budget=4, epochs=2, seed=0)  # trains the other candidate for real
    assert res.n_trained == 2 and set(fresh.runs) == set(space.candidates())
    rows = fresh.table(2)
    assert len(rows) == 2 and all(r["MACs"] > 0 and 0 <= r["val acc"] <= 1 for r in rows)


def test_pareto_front_and_its_plot():
    cost, acc = [1, 2, 3, 4, 2], [0.5, 0.7, 0.6, 0.9, 0.7]
    assert pareto_front(cost, acc) == [True, True, False, True, True]  # ties dominate nobody
    ax = plot_pareto_front(cost, acc)
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2, 2, 4]
