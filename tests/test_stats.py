"""course_utils.stats against scipy, statsmodels and explicit loops."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from course_utils import stats as S
from course_utils import transfer as T
from course_utils.evaluation import roc_auc


# ----------------------------------------------------------------------------- intervals
def test_interval_text_shows_two_significant_digits_of_the_width():
    assert str(S.Interval(0.714, 0.62, 0.80)) == "0.714 [0.620, 0.800]"
    assert str(S.Interval(0.0012, 0.0008, 0.0017)) == "0.00120 [0.00080, 0.00170]"
    assert S.Interval(0.05, -0.01, 0.11).format(signed=True) == "+0.050 [-0.010, +0.110]"
    assert str(S.Interval(0.5, 0.5, 0.5, note="1 seed: no spread estimate")).endswith("(1 seed: no spread estimate)")


def test_seed_interval_is_scipys_t_interval_and_flags_one_seed():
    v = [0.71, 0.69, 0.75, 0.73, 0.70]
    iv = S.seed_interval(v, level=0.9)
    low, high = sps.t.interval(0.9, len(v) - 1, loc=np.mean(v), scale=sps.sem(v))
    assert (iv.low, iv.high) == (pytest.approx(low), pytest.approx(high))
    assert iv.estimate == pytest.approx(np.mean(v)) and iv.n == 5
    assert iv.kind == "seeds" and iv.note == ""
    one = S.seed_interval([0.5])
    assert one.low == one.high == 0.5 and "1 seed" in str(one)
    with pytest.raises(ValueError):
        S.seed_interval([])
    with pytest.raises(ValueError):
        S.seed_interval(v, level=95)


def test_seed_summaries_live_in_stats_and_transfer_reexports_them():
    assert T.summarize is S.summarize and T.run_seeds is S.run_seeds and T.SeedSummary is S.SeedSummary
    s = S.summarize([0.6, 0.7, 0.8])
    assert (s.low, s.high) == (pytest.approx(s.interval.low), pytest.approx(s.interval.high))
    runs = S.run_seeds(lambda k: {"acc": k / 10}, [1, 2, 3], value="acc")
    assert runs.summary.values == (0.1, 0.2, 0.3)


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_equals_scipys_percentile_bootstrap():
    x = np.random.default_rng(1).normal(size=150)
    iv = S.bootstrap_interval(np.mean, x, n_boot=999, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=999, method="percentile", vectorized=True,
                        random_state=np.random.default_rng(3)).confidence_interval
    assert (iv.low, iv.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    vec = S.bootstrap_interval(lambda a: a.mean(axis=1), x, n_boot=999, seed=3, vectorized=True)
    assert vec == iv and np.allclose(vec.draws, iv.draws)


def test_bootstrap_interval_resamples_rows_jointly():
    rng = np.random.default_rng(0)
    a, b = rng.random(80), rng.random(80)
    iv = S.bootstrap_interval(lambda x, y: np.corrcoef(x, y)[0, 1], a, a + 0.1 * b, n_boot=300, seed=5)
    idx = np.random.default_rng(5).integers(0, 80, size=(300, 80))  # the documented draw
    reps = [np.corrcoef(a[i], (a + 0.1 * b)[i])[0, 1] for i in idx]
    assert iv.low == pytest.approx(np.quantile(reps, 0.025)) and iv.high == pytest.approx(np.quantile(reps, 0.975))
    assert iv.low > 0.9  # rows kept together: the correlation survives resampling


def test_stratified_resampling_keeps_stratum_sizes_and_nan_replicates_are_counted():
    strata = np.array(["y"] * 7 + ["x"] * 3)
    idx = S.resample_indices(10, n_boot=50, seed=0, strata=strata)
    assert idx.shape == (50, 10) and np.all((strata[idx] == "x").sum(1) == 3)
    rng = np.random.default_rng(0)  # the documented draw: strata in sorted order
    assert np.array_equal(idx[:, :3], 7 + rng.integers(0, 3, (50, 3)))
    assert np.array_equal(idx[:, 3:], rng.integers(0, 7, (50, 7)))
    y = np.array([1.0] + [0.0] * 9)
    iv = S.bootstrap_interval(lambda v: v.sum() / v.sum() if v.sum() else np.nan, y, n_boot=200, seed=0)
    k = int(np.isnan(iv.draws).sum())
    assert k > 0 and f"{k} of 200 replicates undefined" == iv.note


def _faces(n_people=6, per=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_people) * 10, per)  # identities need not be 0..K-1
    i, j = np.triu_indices(labels.size, k=1)
    same = labels[i] == labels[j]
    person = rng.normal(0, 0.6, n_people)[np.searchsorted(np.unique(labels), labels)]  # a per-person effect
    scores = np.where(same, 1.0, 0.0) + person[i] + person[j] + rng.normal(0, 0.5, i.size)
    return labels, i, j, same, scores


def test_identity_bootstrap_equals_rebuilding_the_data_from_drawn_people():
    labels, i, j, same, scores = _faces()
    iv = S.identity_bootstrap(roc_auc, scores, same, identities=(labels[i], labels[j]), n_boot=40, seed=2)
    people = np.unique(labels)
    score_of = {(a, b): s for a, b, s in zip(i, j, scores)}
    draws = np.random.default_rng(2).integers(0, people.size, size=(40, people.size))  # the documented draw
    reps = []
    for row in draws:  # copy every image of every drawn person, pair all copies, drop image-with-own-copy
        copies = [(u, img) for u, k in enumerate(row) for img in np.flatnonzero(labels == people[k])]
        s, y = [], []
        for (u, x), (v, z) in itertools.combinations(copies, 2):
            if x != z:
                s.append(score_of[min(x, z), max(x, z)])
                y.append(labels[x] == labels[z])
        reps.append(roc_auc_score(y, s) if 0 < sum(y) < len(y) else np.nan)
    assert np.allclose(iv.draws, reps, equal_nan=True)
    assert iv.n == 6 and iv.kind == "resamples" and iv.estimate == pytest.approx(roc_auc_score(same, scores))


def test_identity_bootstrap_weighted_path_and_width_against_a_pair_bootstrap():
    labels, i, j, same, scores = _faces(n_people=12, per=4, seed=1)
    ids = (labels[i], labels[j])
    plain = S.identity_bootstrap(lambda s: s.mean(), scores, identities=ids, n_boot=200)
    weighted = S.identity_bootstrap(lambda s, weights: np.average(s, weights=weights), scores, identities=ids,
                                    n_boot=200, weighted=True)
    assert np.allclose(plain.draws, weighted.draws)
    naive = S.bootstrap_interval(np.mean, scores, n_boot=200)
    assert plain.high - plain.low > 2 * (naive.high - naive.low)  # pairs share people: pair resampling is too narrow
    one_per_row = S.identity_bootstrap(np.mean, scores[same], identities=labels[i][same], n_boot=50)
    assert one_per_row.n == 12
    with pytest.raises(ValueError):
        S.identity_bootstrap(np.mean, scores, identities=labels, n_boot=5)


def test_resample_identities_counts_people_drawn():
    people, counts = S.resample_identities(["b", "a", "b", "c"], n_boot=500, seed=0)
    assert people.tolist() == ["a", "b", "c"] and counts.shape == (500, 3)
    assert np.all(counts.sum(1) == 3) and counts.mean() == pytest.approx(1, abs=0.05)
    with pytest.raises(ValueError):
        S.resample_identities([1, 1], n_boot=5)


# ----------------------------------------------------------------------------- permutation
def test_permutation_gap_test_agrees_with_scipys_exact_permutation_test():
    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "c"], 4)
    values = rng.normal(size=12) + np.repeat([0.9, 0.0, 0.2], 4)
    res = S.permutation_gap_test(values, groups, n_perm=20000, seed=1)
    means = [values[groups == g].mean() for g in "abc"]
    assert res.observed == pytest.approx(max(means) - min(means))
    assert res.group_values == pytest.approx(dict(zip("abc", means)))

    def gap(*samples, axis):
        m = np.stack([s.mean(axis=axis) for s in samples])
        return m.max(0) - m.min(0)

    ref = sps.permutation_test([values[groups == g] for g in "abc"], gap, permutation_type="independent",
                               alternative="greater", n_resamples=np.inf, vectorized=True)
    assert res.p_value == pytest.approx(ref.pvalue, abs=0.01)
    assert res.null_mean == pytest.approx(ref.null_distribution.mean(), abs=0.01)
    assert res.null_low < res.null_mean < res.null_high and "p =" in str(res)


def test_permutation_gap_test_shuffles_whole_people_with_clusters():
    groups = np.array(["x"] * 6 + ["y"] * 6)
    people = np.repeat(np.arange(6), 2)  # three people per group, two samples each
    values = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1], dtype=float)
    res = S.permutation_gap_test(values, groups, clusters=people, n_perm=20000, seed=0)
    null = []  # exact: every way of giving three of the six people group x
    for xs in itertools.combinations(range(6), 3):
        in_x = np.isin(people, xs)
        null.append(abs(values[in_x].mean() - values[~in_x].mean()))
    assert res.p_value == pytest.approx(np.mean(np.array(null) >= res.observed - 1e-12), abs=0.01)
    assert res.null_mean == pytest.approx(np.mean(null), abs=0.01)
    with pytest.raises(ValueError):
        S.permutation_gap_test(values, groups, clusters=np.arange(12) // 4)  # person 1 spans both groups


def test_permutation_p_value_has_the_plus_one_correction_and_ratio_stat():
    groups = np.repeat([0, 1], 50)
    res = S.permutation_gap_test(np.r_[np.ones(50), np.zeros(50)], groups, n_perm=99)
    assert res.p_value == pytest.approx(1 / 100)
    ratio = S.permutation_gap_test(np.r_[np.full(50, 0.5), np.ones(50)], groups, stat="min_over_max", n_perm=10)
    assert ratio.observed == pytest.approx(0.5)


# ----------------------------------------------------------------------------- Holm
def _holm_loop(p):
    m, order = len(p), np.argsort(p, kind="stable")
    adj, running = np.empty(m), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        adj[k] = running
    return adj


def test_holm_matches_an_explicit_loop_and_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])
    assert np.allclose(S.holm(p), _holm_loop(p))
    assert S.holm({"x": 0.01, "y": 0.04}) == pytest.approx({"x": 0.02, "y": 0.04})
    with pytest.raises(ValueError):
        S.holm([0.5, 1.5])
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    reject, adj, *_ = multipletests(p, alpha=0.05, method="holm")
    assert np.allclose(S.holm(p), adj) and np.array_equal(S.holm(p) <= 0.05, reject)


# ----------------------------------------------------------------------------- compare
def test_compare_welch_and_paired_intervals_are_scipys():
    a, b = [0.81, 0.79, 0.84, 0.80], [0.74, 0.78, 0.73, 0.77]
    c = S.compare(a, b, level=0.9)
    ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert (c.difference.low, c.difference.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert c.verdict == "supported" and not c.paired
    p = S.compare(a, b, paired=True)
    ref = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert (p.difference.low, p.difference.high) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_compare_verdicts_follow_the_interval_and_the_claimed_direction():
    hi, lo, mid = [0.9, 0.91, 0.92], [0.5, 0.52, 0.51], [0.2, 0.95, 0.6]
    assert S.compare(hi, lo).verdict == "supported"
    assert S.compare(hi, lo, claim="a < b").verdict == "contradicted"
    assert S.compare(hi, lo, claim="b > a").verdict == "contradicted"
    assert S.compare(lo, hi, claim="a < b").verdict == "supported"
    assert S.compare(hi, mid).verdict == "within noise"
    one = S.compare([0.9], [0.1])
    assert one.verdict == "within noise" and "1 seed" in one.text
    assert S.compare([0.9], [0.1], paired=True).verdict == "within noise"
    text = S.compare(hi, lo, names=("fine-tune", "probe")).text
    assert text.startswith("fine-tune > probe: supported (fine-tune - probe = +0.400")
    with pytest.raises(ValueError):
        S.compare(hi, lo, claim="a >> b")


def test_compare_pairs_same_seeds_and_same_resamples_automatically():
    ra = S.run_seeds(lambda s: 0.8 + 0.05 * s, 3)
    rb = S.run_seeds(lambda s: 0.79 + 0.05 * s, 3)
    c = S.compare(ra, rb)
    assert c.paired and c.verdict == "supported"  # a constant 0.01 advantage, invisible unpaired
    assert S.compare(ra.summary, rb.summary).verdict == "within noise"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good, bad = np.where(rng.random(300) < 0.9, y, 1 - y), np.where(rng.random(300) < 0.85, y, 1 - y)
    ia = S.bootstrap_interval(lambda t: t.mean(), (good == y).astype(float), n_boot=500)
    ib = S.bootstrap_interval(lambda t: t.mean(), (bad == y).astype(float), n_boot=500)
    d = S.compare(ia, ib)
    lo, hi = np.nanquantile(ia.draws - ib.draws, [0.025, 0.975])
    assert d.paired and (d.difference.low, d.difference.high) == (pytest.approx(lo), pytest.approx(hi))
    assert d.difference.estimate == pytest.approx(ia.estimate - ib.estimate)
    with pytest.raises(TypeError):
        S.compare(ia, [0.8, 0.9])
    with pytest.raises(TypeError):
        S.compare(S.Interval(0.5, 0.4, 0.6), ia)


# ----------------------------------------------------------------------------- power
def test_min_detectable_difference_closed_forms():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert S.min_detectable_difference(500, p=0.3) == pytest.approx(z * math.sqrt(0.21 * 2 / 500), rel=1e-4)
    assert S.min_detectable_difference((100, 400)) == pytest.approx(z * math.sqrt(0.25 * (1 / 100 + 1 / 400)), rel=1e-4)
    n = S.required_n(0.05, p=0.3)
    assert n == math.ceil(z**2 * 0.21 * 2 / 0.05**2)
    assert S.min_detectable_difference(n, p=0.3) <= 0.05 < S.min_detectable_difference(n - 1, p=0.3)
    with pytest.raises(ValueError):
        S.min_detectable_difference(10, paired=True)


def test_power_matches_statsmodels():
    power = pytest.importorskip("statsmodels.stats.power")
    es = power.NormalIndPower().solve_power(nobs1=200, alpha=0.05, power=0.8, ratio=1.5)
    assert S.min_detectable_difference((200, 300), p=0.2) == pytest.approx(es * math.sqrt(0.16), rel=1e-6)
    es = power.TTestIndPower().solve_power(nobs1=5, alpha=0.05, power=0.9)
    assert S.min_detectable_difference(5, sd=0.02, power=0.9) == pytest.approx(es * 0.02, rel=1e-6)
    es = power.TTestPower().solve_power(nobs=4, alpha=0.1, power=0.8)
    assert S.min_detectable_difference(4, sd=0.03, alpha=0.1, paired=True) == pytest.approx(es * 0.03, rel=1e-6)
    n = power.TTestIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8)
    assert S.required_n(0.01, sd=0.02) == math.ceil(n)
    n = power.NormalIndPower().solve_power(effect_size=0.1 / math.sqrt(0.25), alpha=0.05, power=0.8)
    assert S.required_n(-0.1) == math.ceil(n)
