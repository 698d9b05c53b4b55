"""course_utils.fairness against explicit loops, fairlearn and scikit-learn."""


import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate
from sklearn.decomposition import PCA
from sklearn.metrics import accuracy_score
from sklearn.neighbors import NearestNeighbors

from course_utils import fairness as Fa


def _toy(n=900, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    correct = rng.random(n) < np.select([g == "a", g == "b"], [0.9, 0.75], 0.6)
    return y, np.where(correct, y, 1 - y), g


# --------------------------------------------------------------------------- composition
def test_composition_table_counts_and_shares():
    frame = pd.DataFrame({"race": pd.Categorical(["x", "y", "x", "x"], categories=["x", "y", "z"]),
                          "gender": ["m", "f", "f", "m"]})
    t = Fa.composition_table(frame, "race")
    assert t["count"].to_dict() == {"x": 3, "y": 1, "z": 0}
    assert t["share"].sum() == pytest.approx(1.0) and t.loc["x", "share"] == pytest.approx(0.75)
    joint = Fa.composition_table(frame, ["race", "gender"])
    assert joint.loc[("x", "m"), "count"] == 2 and joint["count"].sum() == 4
    with pytest.raises(KeyError):
        Fa.composition_table(frame, "age")


def test_published_compositions_have_sources():
    t = Fa.published_compositions()
    assert len(t) >= 3 and t["source"].str.len().min() > 10
    assert t["share"].between(0, 1).all()


# --------------------------------------------------------------------------- equal-size subsets
def test_group_quotas():
    q = Fa.group_quotas(list("abcdefg"), 700)
    assert set(q.values()) == {100}
    q = Fa.group_quotas(list("abcdefg"), 701, dominant="c", dominant_share=0.55)
    assert sum(q.values()) == 701 and abs(q["c"] - 0.55 * 701) < 1
    assert max(v for k, v in q.items() if k != "c") - min(v for k, v in q.items() if k != "c") <= 1
    with pytest.raises(ValueError):
        Fa.group_quotas(["a", "b"], 10, dominant="z", dominant_share=0.5)


def test_sample_by_quota_exact_and_stratified():
    rng = np.random.default_rng(1)
    g = np.repeat(["a", "b", "c"], 100)
    s = rng.integers(0, 2, 300)
    idx = Fa.sample_by_quota(g, {"a": 40, "b": 10, "c": 6}, strata=s, seed=3)
    assert len(np.unique(idx)) == len(idx) == 56
    counts = pd.crosstab(g[idx], s[idx])
    assert counts.sum(axis=1).to_dict() == {"a": 40, "b": 10, "c": 6}
    assert (counts[0] == counts[1]).all()  # label balance kept inside every group
    with pytest.raises(ValueError, match="quota"):
        Fa.sample_by_quota(g, {"a": 101})


def test_skewed_and_balanced_same_size():
    g = np.repeat(list("abcd"), 60)
    s = np.tile([0, 1], 120)
    sets = Fa.skewed_and_balanced(g, size=100, dominant="a", dominant_share=0.55, strata=s, seed=0)
    assert len(sets["skewed"]) == len(sets["balanced"]) == 100
    assert (g[sets["skewed"]] == "a").sum() == 55
    assert set(pd.Series(g[sets["balanced"]]).value_counts()) == {25}


# --------------------------------------------------------------------------- metrics and bootstrap
def test_rate_metrics_match_sklearn_and_fairlearn():
    y, p, _ = _toy()
    assert Fa.ACCURACY(y, p) == pytest.approx(accuracy_score(y, p))
    assert Fa.ERROR_RATE(y, p) == pytest.approx(1 - accuracy_score(y, p))
    assert Fa.FALSE_POSITIVE_RATE(y, p) == pytest.approx(false_positive_rate(y, p))
    assert Fa.FALSE_NEGATIVE_RATE(y, p) == pytest.approx(false_negative_rate(y, p))
    assert np.isnan(Fa.FALSE_POSITIVE_RATE(np.ones(3), np.ones(3)))


def test_bootstrap_estimates_equal_metricframe():
    y, p, g = _toy()
    table = Fa.bootstrap_group_metrics(y, p, g, n_boot=50)
    ref = MetricFrame(metrics={"accuracy": accuracy_score, "false positive rate": false_positive_rate},
                      y_true=y, y_pred=p, sensitive_features=g)
    ours = Fa.group_metric_frame(y, p, g)
    for name in ("accuracy", "false positive rate"):
        rows = table[table.metric == name].set_index("group")["estimate"]
        for grp in "abc":
            assert rows[grp] == pytest.approx(ref.by_group.loc[grp, name])
            assert ours.by_group.loc[grp, name] == pytest.approx(ref.by_group.loc[grp, name])
        assert rows["difference"] == pytest.approx(ref.difference()[name])
        assert rows["ratio"] == pytest.approx(ref.ratio()[name])


def test_bootstrap_intervals_match_an_explicit_loop():
    y, p, g = _toy(n=600)
    table = Fa.bootstrap_group_metrics(y, p, g, metrics=[Fa.ACCURACY], n_boot=2000, seed=0).set_index("group")
    rng = np.random.default_rng(123)  # an independent oracle: a plain loop over replicates
    boot = []
    for _ in range(2000):
        accs = {}
        for grp in "abc":
            idx = np.flatnonzero(g == grp)
            pick = rng.choice(idx, idx.size, replace=True)
            accs[grp] = np.mean(y[pick] == p[pick])
        vals = np.array(list(accs.values()))
        boot.append([*vals, vals.max() - vals.min(), vals.min() / vals.max()])
    boot = np.array(boot)
    lo, hi = np.quantile(boot, 0.025, axis=0), np.quantile(boot, 0.975, axis=0)
    for j, grp in enumerate(["a", "b", "c", "difference", "ratio"]):
        assert table.loc[grp, "low"] == pytest.approx(lo[j], abs=0.015), grp
        assert table.loc[grp, "high"] == pytest.approx(hi[j], abs=0.015), grp
    # and the width agrees with the binomial standard error
    n_c = (g == "c").sum()
    acc_c = table.loc["c", "estimate"]
    width = table.loc["c", "high"] - table.loc["c", "low"]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(acc_c * (1 - acc_c) / n_c), rel=0.15)


def test_bootstrap_is_seeded_and_contrasts_are_paired():
    y, p, g = _toy()
    a = Fa.bootstrap_group_metrics(y, {"m": p, "same": p.copy()}, g, n_boot=200, seed=5,
                                   contrasts=[("m", "same")])
    b = Fa.bootstrap_group_metrics(y, {"m": p, "same": p.copy()}, g, n_boot=200, seed=5,
                                   contrasts=[("m", "same")])
    pd.testing.assert_frame_equal(a, b)
    c = a[a.model == "m - same"]
    assert (c[["estimate", "low", "high"]].abs().to_numpy() < 1e-12).all()  # identical models: paired gap 0
    perfect = Fa.bootstrap_group_metrics(y, {"m": p, "oracle": y}, g, metrics=[Fa.ACCURACY], n_boot=200,
                                         contrasts=[("oracle", "m")]).set_index(["model", "group"])
    assert (perfect.loc["oracle - m", "low"].loc[["a", "b", "c"]] > 0).all()


# --------------------------------------------------------------------------- verification
def test_threshold_at_fmr_against_a_search():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=400), 1)  # many ties
    same = rng.random(400) < 0.2
    for fmr in (0.0, 0.01, 0.05, 0.1, 0.5):
        t = Fa.threshold_at_fmr(s, same, fmr)
        imp = s[~same]
        assert np.mean(imp >= t) <= fmr + 1e-12
        # no lower candidate threshold (a score value) keeps the rate at or below fmr
        lower = [c for c in np.unique(s) if c < t and np.mean(imp >= c) <= fmr + 1e-12]
        assert not lower, (fmr, t, lower[:3])


def test_within_group_pairs():
    labels = np.repeat(np.arange(12), 3)
    groups = np.where(labels < 5, "x", "y")
    pairs, pg = Fa.within_group_pairs(labels, groups)
    assert (groups[pairs.first] == groups[pairs.second]).all() and (groups[pairs.first] == pg).all()
    assert len(pairs) == 15 * 14 // 2 + 21 * 20 // 2
    assert pairs.n_genuine == 12 * 3
    assert (pairs.same == (labels[pairs.first] == labels[pairs.second])).all()


def test_verification_by_group_global_and_per_group_thresholds():
    rng = np.random.default_rng(2)
    n = 4000
    pg = rng.choice(["p", "q"], n)
    same = rng.random(n) < 0.3
    # group q's impostors score higher: more false matches at one global threshold
    s = np.where(same, rng.normal(2, 1, n), rng.normal(np.where(pg == "q", 0.8, 0.0), 1, n))
    t = Fa.threshold_at_fmr(s, same, 0.05)
    table = Fa.verification_by_group(s, same, pg, t)
    for grp in "pq":
        m = pg == grp
        assert table.loc[grp, "FMR"] == pytest.approx(np.mean(s[m & ~same] >= t))
        assert table.loc[grp, "FNMR"] == pytest.approx(np.mean(s[m & same] < t))
        assert table.loc[grp, "impostor"] == (m & ~same).sum()
    assert table.loc["q", "FMR"] > 2 * table.loc["p", "FMR"]
    per = Fa.per_group_thresholds(s, same, pg, 0.05)
    fair = Fa.verification_by_group(s, same, pg, per)
    assert (fair["FMR"] <= 0.05 + 1e-12).all() and (fair["FMR"] > 0.04).all()
    assert fair.loc["q", "FNMR"] > table.loc["q", "FNMR"]  # the price of equal FMR: more false non-matches
    assert table.attrs["frame"].difference()["FMR"] == pytest.approx(abs(table["FMR"].diff().iloc[-1]))


# --------------------------------------------------------------------------- occupancy
def test_occupancy_stats_against_explicit_computations():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 6)), 3 * rng.normal(size=(30, 6)) + 1])
    g = np.repeat(["small", "large"], 30)
    ids = np.arange(60) // 3
    t = Fa.occupancy_stats(x, g, identities=ids, n_per_group=30, n_components=4, k=3, n_boot=2,
                           normalize=False).set_index(["group", "stat"])
    z = PCA(4).fit_transform(x)
    for grp in ("small", "large"):
        m = g == grp
        xs = x[m]
        assert t.loc[(grp, "centroid distance"), "estimate"] == pytest.approx(
            np.mean(np.linalg.norm(xs - xs.mean(0), axis=1)))
        assert t.loc[(grp, "log det cov (PCA)"), "estimate"] == pytest.approx(np.linalg.slogdet(np.cov(z[m].T))[1])
        dist, _ = NearestNeighbors(n_neighbors=4).fit(xs).kneighbors(xs)
        assert t.loc[(grp, "k-NN distance"), "estimate"] == pytest.approx(dist[:, 1:].mean())
        nearest = [min(np.linalg.norm(xs[i] - xs[j]) for j in range(30) if ids[m][j] != ids[m][i]) for i in range(30)]
        assert t.loc[(grp, "nearest impostor"), "estimate"] == pytest.approx(np.mean(nearest))
    for stat in Fa.OCCUPANCY_STATS:
        assert t.loc[("large", stat), "estimate"] > t.loc[("small", stat), "estimate"], stat


def test_occupancy_stats_intervals_and_sizes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16))
    g = np.array(["a"] * 150 + ["b"] * 50)
    t = Fa.occupancy_stats(x, g, n_boot=30, seed=0)
    assert t.attrs["n_per_group"] == 40
    assert (t["low"] <= t["estimate"]).all() and (t["estimate"] <= t["high"]).all()
    with pytest.raises(ValueError):
        Fa.occupancy_stats(x, g, n_per_group=60)


# --------------------------------------------------------------------------- mitigation
def test_group_balancing_weights_and_sampler():
    g = np.array(["a"] * 80 + ["b"] * 15 + ["c"] * 5)
    w = Fa.group_balancing_weights(g)
    assert w.mean() == pytest.approx(1.0)
    totals = pd.Series(w).groupby(g).sum()
    assert np.allclose(totals, totals.iloc[0])
    drawn = np.array(list(Fa.balanced_sampler(g, num_samples=6000, seed=0)))
    freq = pd.Series(g[drawn]).value_counts(normalize=True)
    assert np.allclose(freq.to_numpy(), 1 / 3, atol=0.03)


def test_score_classifier_with_threshold_optimizer():
    from fairlearn.postprocessing import ThresholdOptimizer

    rng = np.random.default_rng(0)
    n = 2000
    g = rng.choice(["u", "v"], n)
    y = rng.integers(0, 2, n)
    # group v's scores are shifted up: one 0.5 threshold gives it many false positives
    s = np.clip(0.35 + 0.3 * y + np.where(g == "v", 0.2, 0.0) + rng.normal(0, 0.12, n), 0, 1)
    clf = Fa.ScoreClassifier().fit()
    assert clf.predict_proba(s[:, None]).shape == (n, 2)
    before = Fa.group_metric_frame(y, clf.predict(s[:, None]), g, metrics=[Fa.FALSE_POSITIVE_RATE])
    opt = ThresholdOptimizer(estimator=clf, constraints="equalized_odds", prefit=True,
                             predict_method="predict_proba")
    opt.fit(s[:, None], y, sensitive_features=g)
    after = Fa.group_metric_frame(y, opt.predict(s[:, None], sensitive_features=g, random_state=0), g,
                                  metrics=[Fa.FALSE_POSITIVE_RATE])
    assert after.difference().iloc[0] < before.difference().iloc[0] / 2


@pytest.mark.slow
def test_umap_2d_keeps_torch_threads():
    pytest.importorskip("umap")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xy = Fa.umap_2d(np.random.default_rng(0).normal(size=(60, 8)), n_neighbors=5, seed=0)
        assert xy.shape == (60, 2) and np.isfinite(xy).all()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_rate_metric_has_a_name_for_fairlearn():
    assert Fa.ACCURACY.__name__ == "accuracy" and Fa.RateMetric.__name__ == "RateMetric"


# --------------------------------------------------------------------------- impostor pairs without identities
def _cells_toy(seed=0):
    rng = np.random.default_rng(seed)
    cells = np.repeat(["a|f", "a|m", "b|f", "b|m"], [7, 6, 8, 5])
    x = rng.normal(size=(cells.size, 5)) * np.where(np.char.startswith(cells, "a"), 0.6, 1.0)[:, None]
    return cells, x


def test_within_cell_pairs_and_distances():
    cells, x = _cells_toy()
    f, s = Fa.within_cell_pairs(cells)
    assert len(f) == 7 * 6 // 2 + 6 * 5 // 2 + 8 * 7 // 2 + 5 * 4 // 2
    assert (f < s).all() and (cells[f] == cells[s]).all()
    assert len(set(zip(f.tolist(), s.tolist()))) == len(f)
    d = Fa.pair_distances(x, f, s)
    assert np.allclose(d, [np.linalg.norm(x[i] - x[j]) for i, j in zip(f, s)])
    ids = np.arange(cells.size) // 2  # pairs of one person are left out
    f2, s2 = Fa.within_cell_pairs(cells, identities=ids)
    assert (ids[f2] != ids[s2]).all() and len(f2) < len(f)


def _expanded_fmr(x, cells, groups, counts_b, threshold):
    """Explicit loop: repeat images by their counts, pair every two copies of different images in a cell."""
    copies = np.repeat(np.arange(len(x)), counts_b)
    num, den = {}, {}
    for a in range(copies.size):
        for b in range(a + 1, copies.size):
            i, j = copies[a], copies[b]
            if i == j or cells[i] != cells[j]:
                continue
            gname = groups[i]
            den[gname] = den.get(gname, 0) + 1
            num[gname] = num.get(gname, 0) + (np.linalg.norm(x[i] - x[j]) < threshold)
    return {k: num[k] / den[k] for k in den}


def test_impostor_fmr_against_explicit_loops():
    cells, x = _cells_toy(1)
    groups = np.array([c.split("|")[0] for c in cells])
    f, s = Fa.within_cell_pairs(cells)
    d = Fa.pair_distances(x, f, s)
    t = np.quantile(d, 0.3)
    fmr = Fa.impostor_fmr(d, f, s, groups[f], t)
    for k, gname in enumerate(["a", "b"]):
        m = groups[f] == gname
        assert fmr[k] == pytest.approx(np.mean(d[m] < t))
    curve = Fa.impostor_fmr(d, f, s, groups[f], [t, 10.0, 0.0])
    assert curve.shape == (3, 2) and np.allclose(curve[0], fmr) and np.allclose(curve[1], 1) and np.allclose(curve[2], 0)
    counts = Fa.image_bootstrap_counts(cells, n_boot=3, seed=4)
    assert counts.shape == (3, cells.size)
    for c in np.unique(cells):  # every cell keeps its size
        assert (counts[:, cells == c].sum(1) == (cells == c).sum()).all()
    reps = Fa.impostor_fmr(d, f, s, groups[f], t, counts=counts)
    reps_curve = Fa.impostor_fmr(d, f, s, groups[f], [t, 0.5 * t], counts=counts)
    assert np.allclose(reps_curve[:, 0], reps)
    for b in range(3):
        ref = _expanded_fmr(x, cells, groups, counts[b], t)
        assert np.allclose(reps[b], [ref["a"], ref["b"]])


def test_distance_threshold_at_fmr_against_a_search():
    rng = np.random.default_rng(3)
    d = np.round(rng.random(300), 2)  # ties
    pg = rng.choice(["p", "q"], 300)
    for fmr in (0.0, 0.01, 0.1, 0.5):
        t = Fa.distance_threshold_at_fmr(d, pg, fmr)
        for k, gname in enumerate(["p", "q"]):
            dg = d[pg == gname]
            assert np.mean(dg < t[k]) <= fmr + 1e-12
            larger = [c for c in np.unique(dg) if c > t[k]]
            assert all(np.mean(dg < c) > fmr for c in larger[:1])  # the next larger threshold is too high
    # weighted: each pair counted c_i * c_j times equals the rule on expanded pairs
    cells, x = _cells_toy(2)
    f, s = Fa.within_cell_pairs(cells)
    dd = Fa.pair_distances(x, f, s)
    counts = Fa.image_bootstrap_counts(cells, n_boot=4, seed=1)
    tw = Fa.distance_threshold_at_fmr(dd, cells[f], 0.2, first=f, second=s, counts=counts)
    for b in range(4):
        w = counts[b, f] * counts[b, s]
        for k, c in enumerate(sorted(set(cells))):
            m = cells[f] == c
            expanded = np.repeat(dd[m], w[m])
            assert tw[b, k] == pytest.approx(Fa.distance_threshold_at_fmr(expanded, np.zeros(expanded.size), 0.2)[0])


def test_fmr_by_group_and_permutation_test():
    rng = np.random.default_rng(5)
    n = 240
    groups = np.repeat(["tight", "loose", "mid"], n // 3)
    gender = np.tile(["f", "m"], n // 2)
    scale = {"tight": 0.45, "mid": 0.6, "loose": 0.8}
    x = rng.normal(size=(n, 8)) * np.array([scale[v] for v in groups])[:, None]
    cells = np.char.add(np.char.add(groups, "|"), gender)
    f, s = Fa.within_cell_pairs(cells)
    d = Fa.pair_distances(x, f, s)
    t = 2.0
    table = Fa.fmr_by_group(d, f, s, groups[f], t, strata=cells, n_boot=200, seed=0)
    for gname in ("tight", "loose", "mid"):
        m = groups[f] == gname
        assert table.loc[gname, "FMR"] == pytest.approx(np.mean(d[m] < t))
        assert table.loc[gname, "pairs"] == m.sum()
        assert table.loc[gname, "low"] <= table.loc[gname, "FMR"] <= table.loc[gname, "high"]
    fm = table.loc[["loose", "mid", "tight"], "FMR"]
    assert table.loc["max / min", "FMR"] == pytest.approx(fm.max() / fm.min())
    assert table.attrs["replicates"].shape == (200, 3)
    test = Fa.fmr_permutation_test(x, groups, t, strata=gender, n_perm=300, seed=0)
    assert test.observed == pytest.approx(fm.max() / fm.min())
    assert test.group_values["tight"] == pytest.approx(table.loc["tight", "FMR"])
    assert test.p_value < 0.01
    same_scale = rng.normal(size=(n, 8))
    null_test = Fa.fmr_permutation_test(same_scale, groups, 3.5, strata=gender, n_perm=300, seed=0)
    assert null_test.p_value > 0.01


def test_occupancy_bootstrap_against_explicit_computations():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 6)), 3 * rng.normal(size=(30, 6)) + 1])
    g = np.repeat(["small", "large"], 30)
    t = Fa.occupancy_bootstrap(x, g, n_components=4, n_boot=3, seed=2)
    tt = t.set_index(["group", "stat"])
    z = PCA(4).fit_transform(x)
    counts = Fa.image_bootstrap_counts(g, n_boot=3, seed=2)
    for k, grp in enumerate(("large", "small")):
        m = g == grp
        xs = x[m]
        assert tt.loc[(grp, "spread around centroid"), "estimate"] == pytest.approx(
            np.mean(np.linalg.norm(xs - xs.mean(0), axis=1)))
        assert tt.loc[(grp, "log det cov (PCA)"), "estimate"] == pytest.approx(np.linalg.slogdet(np.cov(z[m].T))[1])
        dist, _ = NearestNeighbors(n_neighbors=2).fit(xs).kneighbors(xs)
        assert tt.loc[(grp, "nearest-neighbour distance"), "estimate"] == pytest.approx(dist[:, 1].mean())
        for b in range(3):  # a replicate = the statistics of the repeated rows, never pairing a copy with itself
            c = counts[b, m]
            rows = np.repeat(np.arange(30), c)
            xr = xs[rows]
            spread = np.mean(np.linalg.norm(xr - xr.mean(0), axis=1))
            nn = np.mean([min(np.linalg.norm(xs[i] - xs[j]) for j in set(rows) if j != i) for i in rows])
            logdet = np.linalg.slogdet(np.cov(z[m][rows].T))[1]
            rep = {s: t.attrs["replicates"][s][b, k] for s in Fa.OCCUPANCY_BOOTSTRAP_STATS}
            assert rep["spread around centroid"] == pytest.approx(spread)
            assert rep["nearest-neighbour distance"] == pytest.approx(nn)
            assert rep["log det cov (PCA)"] == pytest.approx(logdet)
    for stat in Fa.OCCUPANCY_BOOTSTRAP_STATS:
        assert tt.loc[("large", stat), "estimate"] > tt.loc[("small", stat), "estimate"], stat
        for k, grp in enumerate(("large", "small")):  # the interval: percentiles of the replicates minus their bias
            r = t.attrs["replicates"][stat][:, k]
            bias = r.mean() - tt.loc[(grp, stat), "estimate"]
            assert tt.loc[(grp, stat), "bias"] == pytest.approx(bias)
            assert tt.loc[(grp, stat), "low"] == pytest.approx(np.quantile(r - bias, 0.025))


def test_contrast_with_rest_and_paired_group_contrasts():
    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    est = np.array([0.1, 0.2, 0.3])
    reps = est + rng.normal(0, 0.01, size=(500, 3))
    reps[:, 1] = 0.2 + rng.normal(0, 0.05, 500)  # a noisier group, no different from the mean of the others
    c = Fa.contrast_with_rest(est, reps, ["x", "y", "z"])
    assert c.loc["x", "difference"] == pytest.approx(0.1 - 0.25)
    assert c.loc["x", "verdict"] == "below the others" and c.loc["z", "verdict"] == "above the others"
    assert c.loc["y", "verdict"] == "within noise"
    assert (c["p (Holm)"] >= c["p"]).all()
    n = 600
    g = rng.choice(["u", "v"], n)
    a = rng.random(n) < 0.8
    b = np.where(g == "u", rng.random(n) < 0.5, a)
    t = Fa.paired_group_contrasts(a, b, g, n_boot=500)
    for grp in ("u", "v"):
        m = g == grp
        assert t.loc[grp, "a"] == pytest.approx(a[m].mean()) and t.loc[grp, "b"] == pytest.approx(b[m].mean())
        n10, n01 = int((a[m] & ~b[m]).sum()), int((~a[m] & b[m]).sum())
        ref = 1.0 if n10 + n01 == 0 else binomtest(n10, n10 + n01, 0.5).pvalue
        assert t.loc[grp, "p"] == pytest.approx(ref)
    assert t.loc["u", "verdict"] == "a higher" and t.loc["v", "verdict"] == "within noise"
    assert t.loc["u", "p (Holm)"] == pytest.approx(min(1, 2 * min(t["p"])))


def test_contrast_with_rest_p_values_follow_the_bootstrap_standard_error():
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    est = np.array([1.0, 1.2, 0.9, 1.1])
    reps = est + rng.normal(0, 0.05, size=(150, 4))  # few replicates: a counting p-value would be floored at 2/151
    c = Fa.contrast_with_rest(est, reps, list("abcd"))
    diff = reps - (reps.sum(1, keepdims=True) - reps) / 3
    for k, name in enumerate("abcd"):
        d_hat = est[k] - (est.sum() - est[k]) / 3
        assert c.loc[name, "p"] == pytest.approx(2 * norm.sf(abs(d_hat) / diff[:, k].std(ddof=1)))
    assert c.loc["b", "p (Holm)"] < 2 * 4 / 151  # below the counting floor times the number of contrasts
    assert c.loc["b", "verdict"] == "above the others"
