"""Age estimation: the metrics against explicit loops, the lecture's L_A loss against its formula, mixed multi-task heads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import transfer as T
from course_utils.evaluation import (
    absolute_errors,
    age_scores,
    cumulative_score,
    group_mae,
    group_mae_table,
    max_absolute_error,
    mean_absolute_error,
)
from course_utils.stats import compare, min_detectable_difference


def _ages(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.integers(1, 90, size=n).astype(float)
    return target + rng.normal(0, 6, size=n), target


# ----------------------------------------------------------------------------- metrics against loops
def test_mae_cs_maxae_against_explicit_loops() -> None:
    pred, target = _ages()
    errs = [abs(p - t) for p, t in zip(pred, target)]
    assert mean_absolute_error(pred, target) == pytest.approx(sum(errs) / len(errs))
    assert max_absolute_error(pred, target) == pytest.approx(max(errs))
    for k in (0, 2.5, 5, 10):
        within = sum(1 for e in errs if e <= k)
        assert cumulative_score(pred, target, k=k) == pytest.approx(within / len(errs))
    np.testing.assert_allclose(absolute_errors(torch.tensor(pred)[:, None], target), errs)


def test_cumulative_score_counts_the_boundary_as_within() -> None:
    assert cumulative_score([10.0, 15.0, 16.0], [15.0, 10.0, 10.0], k=5) == pytest.approx(2 / 3)


def test_metric_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        mean_absolute_error([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        mean_absolute_error([], [])


def test_age_scores_bootstrap_against_a_loop_over_the_same_resamples() -> None:
    pred, target = _ages(40)
    scores = age_scores(pred, target, n_boot=300, seed=3)
    err = np.abs(pred - target)
    idx = np.random.default_rng(3).integers(0, err.size, size=(300, err.size))  # the rows bootstrap_interval draws
    reps_mae = np.array([np.mean([err[i] for i in row]) for row in idx])
    reps_cs = np.array([np.mean([err[i] <= 5 for i in row]) for row in idx])
    reps_max = np.array([max(err[i] for i in row) for row in idx])
    for iv, reps, est in ((scores.mae, reps_mae, err.mean()), (scores.cs, reps_cs, np.mean(err <= 5)),
                          (scores.max_ae, reps_max, err.max())):
        assert iv.estimate == pytest.approx(est)
        assert iv.low == pytest.approx(np.quantile(reps, 0.025))
        assert iv.high == pytest.approx(np.quantile(reps, 0.975))
    assert set(scores.row()) == {"MAE (years)", "CS5", "MaxAE (years)"}


def test_models_scored_on_the_same_rows_are_compared_paired() -> None:
    pred, target = _ages(200)
    good = age_scores(pred, target, n_boot=500)
    baseline = age_scores(np.full_like(target, np.median(target)), target, n_boot=500)
    verdict = compare(good.mae, baseline.mae, claim="a < b", kind="resamples", names=("model", "median"))
    assert verdict.paired and verdict.verdict == "supported"


def test_group_mae_against_a_loop() -> None:
    pred, target = _ages(90)
    groups = np.array(["x", "y", "z"] * 30)
    per = group_mae(pred, target, groups, n_boot=200)
    for name in "xyz":
        rows = [i for i in range(90) if groups[i] == name]
        assert per[name].estimate == pytest.approx(sum(abs(pred[i] - target[i]) for i in rows) / len(rows))
        assert per[name].n == len(rows) and per[name].low <= per[name].estimate <= per[name].high


def test_group_mae_table_columns_and_detectable_gap() -> None:
    pred, target = _ages(120)
    groups = np.array(["big"] * 110 + ["small"] * 10)
    pred[groups == "small"] += 30  # a large gap in the small group
    table = group_mae_table(pred, target, groups, n_boot=200, n_perm=500)
    err = np.abs(pred - target)
    assert list(table.index) == ["big", "small"]
    assert table.loc["small", "n"] == 10
    assert table.loc["small", "gap"] == pytest.approx(err[110:].mean() - err[:110].mean(), abs=0.01)
    mdd = min_detectable_difference((10, 110), sd=float(err.std(ddof=1)))
    assert table.loc["small", "detectable gap"] == pytest.approx(mdd, abs=0.01)
    assert table.loc["small", "p (Holm)"] < 0.05


# ----------------------------------------------------------------------------- the L_A loss
def _la_formula(y: float, a: float, lam: float, sigma: float, scale: float = 1.0) -> float:
    d2 = (y - a) ** 2
    return (1 - lam) * d2 / (2 * scale**2) + lam * (1 - math.exp(-d2 / (2 * sigma**2)))


@pytest.mark.parametrize(("lam", "sigma", "scale"), [(0.0, 5.0, 1.0), (0.5, 5.0, 1.0), (1.0, 3.0, 1.0),
                                                     (0.3, 4.0, 17.0)])
def test_age_loss_matches_the_lecture_formula(lam: float, sigma: float, scale: float) -> None:
    y = torch.tensor([20.0, 35.0, 3.0, 80.0, 41.0])
    a = torch.tensor([22.5, 35.0, 30.0, 60.0, 40.0])
    expected = sum(_la_formula(float(yi), float(ai), lam, sigma, scale) for yi, ai in zip(y, a)) / len(y)
    loss = T.AgeLoss(lam=lam, sigma=sigma, scale=scale)
    assert float(loss(a, y)) == pytest.approx(expected, rel=1e-6)
    assert float(loss(a[:, None], y)) == pytest.approx(expected, rel=1e-6)  # (N, 1) estimates too


def test_age_loss_bounded_term_saturates_and_has_the_right_gradient() -> None:
    loss = T.AgeLoss(lam=1.0, sigma=2.0)
    assert float(loss(torch.tensor([100.0]), torch.tensor([0.0]))) == pytest.approx(1.0)
    a = torch.tensor([3.0], requires_grad=True)
    loss(a, torch.tensor([0.0])).backward()
    d = 0.0 - 3.0  # dL/da = -d / sigma^2 * exp(-d^2 / (2 sigma^2))
    assert float(a.grad) == pytest.approx(-d / 4.0 * math.exp(-9.0 / 8.0))
    with pytest.raises(ValueError):
        T.AgeLoss(lam=1.5)
    with pytest.raises(ValueError, match="as many"):
        loss(torch.zeros(3), torch.zeros(2))


# ----------------------------------------------------------------------------- mixed multi-task heads
def test_multitask_loss_mixes_regression_and_classification() -> None:
    torch.manual_seed(0)
    out = {"age": torch.tensor([30.0, 50.0, 12.0]), "gender": torch.randn(3, 2), "race": torch.randn(3, 5)}
    y = torch.tensor([[25.0, 0, 4], [50.0, 1, 0], [20.0, 1, 2]])
    age = T.AgeLoss(lam=0.5, sigma=5.0, scale=10.0)
    loss = T.MultiTaskLoss(["age", "gender", "race"], {"age": 2.0, "race": 0.5}, losses={"age": age})(out, y)
    ce = torch.nn.functional.cross_entropy
    expected = (2.0 * age(out["age"], y[:, 0]) + ce(out["gender"], y[:, 1].long())
                + 0.5 * ce(out["race"], y[:, 2].long()))
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="unknown"):
        T.MultiTaskLoss(["gender"], losses={"age": age})


def test_multitask_model_regression_head_and_predict_tasks() -> None:
    torch.manual_seed(0)
    trunk = T.mlp_trunk(8, hidden=16, depth=2, dropout=0.1)
    model = T.MultiTaskModel(trunk, 16, {"age": 1, "gender": 2}, regression={"age": (40.0, 15.0)})
    x = torch.randn(5, 8)
    with torch.no_grad():
        out = model.eval()(x)
    assert out["age"].shape == (5,) and out["gender"].shape == (5, 2)
    raw = model.heads["age"](trunk(x)).squeeze(-1)
    torch.testing.assert_close(out["age"], 40.0 + 15.0 * raw)
    pred = T.predict_tasks(model.train(), x, batch_size=2)
    assert model.training  # restored
    np.testing.assert_allclose(pred["age"], out["age"].detach().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(pred["gender"], out["gender"].argmax(1).numpy())
    metric = T.task_mae("age", 0)
    y = torch.stack([torch.full((5,), 30.0), torch.zeros(5)], dim=1)
    assert float(metric(out, y)) == pytest.approx(float((out["age"] - 30).abs().mean()))
    with pytest.raises(ValueError, match="1 output"):
        T.MultiTaskModel(trunk, 16, {"age": 2}, regression={"age": (0.0, 1.0)})


def test_a_shared_trunk_learns_age_and_a_class_jointly() -> None:
    """On synthetic descriptors where both tasks are linear in the input, joint training beats the baselines."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    age = 40 + 12 * x[:, 0] + torch.randn(400, generator=g)
    cls = (x[:, 1] > 0).long()
    y = torch.stack([age, cls.float()], dim=1)
    torch.manual_seed(0)
    model = T.MultiTaskModel(T.mlp_trunk(6, hidden=32), 32, {"age": 1, "cls": 2},
                             regression={"age": (float(age[:300].mean()), float(age[:300].std()))})
    feats = T.FeatureSet(x[:300], y[:300])
    T.train_tail(model, feats, None, epochs=30, lr=1e-2, seed=0, train_targets=y[:300],
                 loss_fn=T.MultiTaskLoss(["age", "cls"], losses={"age": T.AgeLoss(0.5, 5.0, scale=12.0)}),
                 metrics={}, device="cpu")
    pred = T.predict_tasks(model, x[300:])
    median_mae = mean_absolute_error(np.full(100, float(age[:300].median())), age[300:])
    assert mean_absolute_error(pred["age"], age[300:]) < 0.5 * median_mae
    majority = max(float(cls[300:].float().mean()), 1 - float(cls[300:].float().mean()))
    assert np.mean(pred["cls"] == cls[300:].numpy()) > majority + 0.2


def test_train_trunk_heads_is_reproducible_and_sized_by_its_config() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 5, generator=g)
    y = torch.stack([30 + 10 * x[:, 0], (x[:, 1] > 0).float()], dim=1)
    config = T.TrunkConfig(hidden=8, depth=2, epochs=3, batch_size=32)
    kwargs = {"tasks": {"age": 1, "cls": 2}, "losses": {"age": T.AgeLoss(0.5, 5.0, scale=10.0)},
              "regression": {"age": (30.0, 10.0)}, "config": config, "device": "cpu"}
    a = T.predict_tasks(T.train_trunk_heads(x, y, seed=4, **kwargs), x)
    b = T.predict_tasks(T.train_trunk_heads(x, y, seed=4, **kwargs), x)
    np.testing.assert_allclose(a["age"], b["age"])
    model = T.train_trunk_heads(x, y, seed=5, **kwargs)
    assert [m.out_features for m in model.backbone if isinstance(m, torch.nn.Linear)] == [8, 8]
    assert not np.allclose(T.predict_tasks(model, x)["age"], a["age"])


def test_group_mae_table_adjusts_for_strata_against_a_loop() -> None:
    rng = np.random.default_rng(2)
    target = rng.integers(1, 90, size=200).astype(float)
    old = target >= 50
    pred = target + rng.normal(0, 3, size=200) + np.where(old, rng.normal(0, 15, size=200), 0.0)
    groups = np.where(rng.random(200) < np.where(old, 0.8, 0.2), "g1", "g2")  # g1 holds most older faces
    table = group_mae_table(pred, target, groups, n_boot=100, n_perm=300, strata=np.where(old, "old", "young"))
    err = np.abs(pred - target)
    stratum_mean = {s: err[np.where(old, "old", "young") == s].mean() for s in ("old", "young")}
    resid = np.array([e - stratum_mean["old" if o else "young"] for e, o in zip(err, old)])
    expected = resid[groups == "g1"].mean() - resid[groups == "g2"].mean()
    assert table.loc["g1", "adjusted gap"] == pytest.approx(expected, abs=0.01)
    assert abs(table.loc["g1", "adjusted gap"]) < abs(table.loc["g1", "gap"])  # most of the raw gap is age
    assert {"adjusted gap", "adjusted p (Holm)"} <= set(table.columns)
