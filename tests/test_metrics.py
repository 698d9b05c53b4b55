"""Metrics against scikit-learn, explicit loops and hand-made cases with known answers."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from sklearn.neighbors import KNeighborsClassifier

from course_utils import evaluation as M


def _verif(n: int = 300, seed: int = 0, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    same = rng.integers(0, 2, size=n)
    scores = rng.normal(size=n) + 1.2 * same
    if ties:
        scores = np.round(scores, 1)
    return scores, same


# --------------------------------------------------------------------------- basics
def test_accuracy_matches_sklearn_for_logits_and_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    y = rng.integers(0, 4, size=50)
    assert M.accuracy(logits, y) == pytest.approx(skm.accuracy_score(y, logits.argmax(1)))
    assert M.accuracy(torch.from_numpy(logits), torch.from_numpy(y)) == M.accuracy(logits, y)
    assert M.accuracy(np.array([1, 2, 3]), np.array([1, 0, 3])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"\(50, 4\).*\(49,\)"):
        M.accuracy(logits, y[:49])


def test_scores_follow_the_higher_is_same_convention():
    x1 = torch.randn(6, 4, dtype=torch.float64)
    x2 = torch.randn(6, 4, dtype=torch.float64)
    np.testing.assert_allclose(M.pair_scores(x1, x2), F.cosine_similarity(x1, x2).numpy())
    np.testing.assert_allclose(M.pair_scores(x1, x2, metric="l2"), -torch.norm(x1 - x2, dim=1).numpy())
    np.testing.assert_array_equal(M.distances_to_scores(torch.tensor([0.5, 2.0])), [-0.5, -2.0])
    emb = np.random.default_rng(0).normal(size=(5, 3))
    labels = np.array([0, 1, 0, 2, 1])
    scores, same = M.all_pair_scores(emb, labels, metric="squared_l2")
    expected = [
        (-float(((emb[i] - emb[j]) ** 2).sum()), labels[i] == labels[j]) for i in range(5) for j in range(i + 1, 5)
    ]
    np.testing.assert_allclose(scores, [e[0] for e in expected])
    np.testing.assert_array_equal(same, [e[1] for e in expected])


# --------------------------------------------------------------------------- ROC / AUC
@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_matches_sklearn(ties):
    scores, same = _verif(seed=1, ties=ties)
    fpr, tpr, thr = M.roc_curve(torch.from_numpy(scores), torch.from_numpy(same))
    ref_fpr, ref_tpr, ref_thr = skm.roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thr[1:], ref_thr[1:])
    assert thr[0] == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(seed, ties):
    scores, same = _verif(seed=seed, ties=ties)
    assert M.roc_auc(scores, same) == pytest.approx(skm.roc_auc_score(same, scores), abs=1e-12)


def test_auc_extremes_and_errors():
    assert M.roc_auc([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert M.roc_auc([0.1, 0.2, 0.9], [1, 1, 0]) == 0.0
    assert M.roc_auc([0.5, 0.5], [1, 0]) == 0.5
    with pytest.raises(ValueError, match="both"):
        M.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        M.roc_auc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        M.roc_auc([0.1, 0.2], [2, 0])


# --------------------------------------------------------------------------- EER
def test_eer_on_a_constructed_case():
    genuine = [0.2, 0.6, 0.7, 0.8, 0.9]
    impostor = [0.1, 0.3, 0.4, 0.5, 0.65]
    # at threshold 0.6 one genuine (0.2) is rejected and one impostor (0.65) accepted: 1/5 each
    res = M.equal_error_rate(genuine + impostor, [1] * 5 + [0] * 5)
    assert res.eer == pytest.approx(0.2)
    assert res.threshold == pytest.approx(0.6)


def test_eer_of_overlapping_uniform_scores():
    impostor = (np.arange(2000) + 0.5) / 2000  # U[0, 1]
    genuine = impostor + 0.5  # U[0.5, 1.5]: FAR(t) = 1 - t, FRR(t) = t - 0.5, equal at t = 0.75
    res = M.equal_error_rate(np.r_[genuine, impostor], np.r_[np.ones(2000), np.zeros(2000)])
    assert res.eer == pytest.approx(0.25, abs=1e-3)
    assert res.threshold == pytest.approx(0.75, abs=1e-3)


def test_eer_extremes():
    assert M.equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]).eer == 0.0
    assert M.equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]).eer == 1.0


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_eer_is_where_far_and_frr_cross_by_brute_force(seed):
    scores, same = _verif(n=400, seed=seed)
    res = M.equal_error_rate(scores, same)
    gen, imp = scores[same == 1], scores[same == 0]
    # brute force: every observed score as a threshold
    best = min(
        (abs(np.mean(imp >= t) - np.mean(gen < t)), (np.mean(imp >= t) + np.mean(gen < t)) / 2)
        for t in np.unique(scores)
    )
    assert abs(res.eer - best[1]) <= 1.0 / min(len(gen), len(imp)) + best[0]
    far_at = np.mean(imp >= res.threshold)
    frr_at = np.mean(gen < res.threshold)
    assert abs(far_at - res.eer) < 0.02 and abs(frr_at - res.eer) < 0.02


# --------------------------------------------------------------------------- TAR@FAR
def test_tar_at_far_on_a_constructed_case():
    impostor = np.arange(1000) / 1000  # 0.000 ... 0.999
    genuine = np.array([0.995, 0.9905, 0.9885, 0.5])
    scores = np.r_[genuine, impostor]
    same = np.r_[np.ones(4), np.zeros(1000)]
    # FAR 1e-1: accept >= 0.900 (100 impostors) -> 3 of 4 genuine
    # FAR 1e-2: accept >= 0.990 (10 impostors)  -> 0.995 and 0.9905
    # FAR 1e-3: accept >= 0.999 (1 impostor)    -> none
    assert M.tar_at_fars(scores, same) == {0.1: 0.75, 0.01: 0.5, 0.001: 0.0}
    assert M.tar_at_far(scores, same, far=0.0) == 0.0
    assert M.tar_at_far(scores, same, far=1.0) == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_tar_at_far_matches_sklearn_roc(seed):
    scores, same = _verif(n=2000, seed=seed, ties=True)
    fpr, tpr, _ = skm.roc_curve(same, scores, drop_intermediate=False)
    for far in (1e-1, 1e-2, 1e-3):
        assert M.tar_at_far(scores, same, far=far) == pytest.approx(tpr[fpr <= far + 1e-12].max())
    with pytest.raises(ValueError, match="far"):
        M.tar_at_far(scores, same, far=2.0)


# --------------------------------------------------------------------------- thresholded accuracy
def _loop_accuracy(scores, same, t):
    return sum((s >= t) == bool(y) for s, y in zip(scores, same)) / len(scores)


@pytest.mark.parametrize("ties", [False, True])
def test_best_threshold_matches_brute_force_and_transfers_to_test(ties):
    val_s, val_y = _verif(n=200, seed=7, ties=ties)
    test_s, test_y = _verif(n=200, seed=8, ties=ties)
    thr, acc = M.best_accuracy_threshold(val_s, val_y)
    brute = max(_loop_accuracy(val_s, val_y, t) for t in [*np.unique(val_s), np.inf])
    assert acc == pytest.approx(brute)
    assert _loop_accuracy(val_s, val_y, thr) == pytest.approx(acc)
    res = M.validated_verification_accuracy(val_s, val_y, test_s, test_y)
    assert res.threshold == thr and res.val_accuracy == acc
    assert res.test_accuracy == pytest.approx(_loop_accuracy(test_s, test_y, thr))
    assert M.verification_accuracy(test_s, test_y, threshold=thr) == res.test_accuracy


def test_best_threshold_is_midway_and_handles_trivial_cases():
    thr, acc = M.best_accuracy_threshold([0.9, 0.7, 0.4, 0.1], [1, 1, 0, 0])
    assert (thr, acc) == (pytest.approx(0.55), 1.0)
    assert M.best_accuracy_threshold([0.3, 0.2], [0, 0]) == (math.inf, 1.0)
    assert M.best_accuracy_threshold([0.3, 0.2], [1, 1]) == (-math.inf, 1.0)


# --------------------------------------------------------------------------- closed-set identification
def test_cmc_on_a_hand_made_gallery():
    gallery = np.array([10, 20, 30, 20])  # identity 20 has two gallery images
    probes = np.array([10, 20, 30, 30])
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # 10: correct is best -> rank 1
            [0.8, 0.1, 0.2, 0.7],  # 20: best correct 0.7 (index 3), one wrong above -> rank 2
            [0.5, 0.6, 0.1, 0.7],  # 30: three wrong above -> rank 4
            [0.1, 0.2, 0.3, 0.3],  # 30: tie with a wrong entry counts against -> rank 2
        ]
    )
    cmc = M.cmc_curve(scores, gallery, probes)
    np.testing.assert_allclose(cmc, [0.25, 0.75, 0.75, 1.0])
    assert M.rank_k_accuracy(scores, gallery, probes, k=1) == 0.25
    assert M.rank_k_accuracy(torch.from_numpy(scores), gallery, probes, k=2) == 0.75
    np.testing.assert_allclose(M.cmc_curve(scores, gallery, probes, max_rank=2), [0.25, 0.75])


def test_cmc_matches_sorting_loops():
    rng = np.random.default_rng(0)
    gallery = np.repeat(np.arange(8), 2)
    probes = rng.integers(0, 8, size=40)
    scores = rng.normal(size=(40, 16)) + 1.0 * (probes[:, None] == gallery[None, :])
    ranks = []
    for i in range(40):
        order = sorted(range(16), key=lambda g: -scores[i, g])
        ranks.append(1 + next(r for r, g in enumerate(order) if gallery[g] == probes[i]))
    expected = [np.mean(np.array(ranks) <= k) for k in range(1, 17)]
    np.testing.assert_allclose(M.cmc_curve(scores, gallery, probes), expected)


def test_cmc_errors():
    with pytest.raises(ValueError, match="absent from the gallery"):
        M.cmc_curve(np.zeros((1, 2)), [0, 1], [5])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2,\)"):
        M.cmc_curve(np.zeros((2, 3)), [0, 1], [0, 1])


# --------------------------------------------------------------------------- open-set identification
def test_dir_with_unknown_probes_on_a_hand_made_case():
    gallery = np.array([0, 1, 2])
    probes = np.array([0, 1, 2, 0, 7, 8])  # 7 and 8 are strangers
    scores = np.array(
        [
            [0.9, 0.1, 0.2],  # known 0, top-1 right, score 0.9
            [0.2, 0.6, 0.1],  # known 1, right, 0.6
            [0.1, 0.75, 0.4],  # known 2, wrong at rank 1 (right at rank 2, score 0.4)
            [0.3, 0.1, 0.2],  # known 0, right, but only 0.3
            [0.5, 0.2, 0.1],  # unknown, best 0.5
            [0.1, 0.7, 0.2],  # unknown, best 0.7
        ]
    )
    # FAR 0: threshold just above 0.7 -> only the 0.9 probe is detected and identified
    res = M.open_set_identification(scores, gallery, probes, far=0.0)
    assert res.detection_identification_rate == 0.25 and res.false_alarm_rate == 0.0
    assert 0.7 < res.threshold < 0.7 + 1e-9
    # FAR 0.5: one false alarm allowed -> threshold just above 0.5 -> 0.9 and 0.6 probes
    res = M.open_set_identification(scores, gallery, probes, far=0.5)
    assert res.detection_identification_rate == 0.5 and res.false_alarm_rate == 0.5
    # rank 2 also counts the third probe only if its mate score passes the threshold
    assert M.open_set_identification(scores, gallery, probes, far=0.5, rank=2).detection_identification_rate == 0.5
    # FAR 1: everything is accepted -> DIR = rank-1 rate of known probes (3 of 4)
    res = M.open_set_identification(scores, gallery, probes, far=1.0)
    assert res.detection_identification_rate == 0.75 and res.false_alarm_rate == 1.0
    assert M.open_set_rates(scores, gallery, probes, threshold=0.35, rank=2) == (0.75, 1.0, 0.35)


def test_open_set_rates_match_loops():
    rng = np.random.default_rng(1)
    gallery = np.arange(10)
    probes = rng.integers(0, 14, size=60)  # 10..13 are unknown
    scores = rng.normal(size=(60, 10)) + 2.0 * (probes[:, None] == gallery[None, :])
    for t in (-1.0, 0.5, 1.5, 2.5):
        hits, known, alarms, unknown = 0, 0, 0, 0
        for i in range(60):
            top = max(range(10), key=lambda g: scores[i, g])
            if probes[i] in gallery:
                known += 1
                hits += gallery[top] == probes[i] and scores[i, top] >= t
            else:
                unknown += 1
                alarms += scores[i, top] >= t
        res = M.open_set_rates(scores, gallery, probes, threshold=t)
        assert res.detection_identification_rate == pytest.approx(hits / known)
        assert res.false_alarm_rate == pytest.approx(alarms / unknown)
    for far in (0.1, 0.25):
        res = M.open_set_identification(scores, gallery, probes, far=far)
        assert res.false_alarm_rate <= far
        # the threshold is the lowest possible: one step lower exceeds the false alarm rate
        lower = M.open_set_rates(scores, gallery, probes, threshold=np.nextafter(res.threshold, -np.inf))
        assert lower.false_alarm_rate > far


def test_open_set_needs_known_and_unknown_probes():
    with pytest.raises(ValueError, match="unknown"):
        M.open_set_identification(np.zeros((2, 2)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="known"):
        M.open_set_identification(np.zeros((2, 2)), [0, 1], [5, 6])


# --------------------------------------------------------------------------- k-NN
def _clusters(seed: int, n_classes: int = 3, per: int = 15, noise: float = 1.5):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per)
    emb = rng.normal(size=(n_classes, 6))[labels] + noise * rng.normal(size=(labels.size, 6))
    return emb, labels


@pytest.mark.parametrize("metric", ["cosine", "l2", "l1"])
def test_knn_precision_at_1_matches_loops(metric):
    emb, labels = _clusters(0)
    dist = {
        "cosine": lambda a, b: 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)),
        "l2": lambda a, b: np.linalg.norm(a - b),
        "l1": lambda a, b: np.abs(a - b).sum(),
    }[metric]
    hits = 0
    for i in range(len(labels)):
        j = min((k for k in range(len(labels)) if k != i), key=lambda k: dist(emb[i], emb[k]))
        hits += labels[j] == labels[i]
    p1 = M.knn_precision_at_1(emb, labels, metric=metric)
    assert p1 == pytest.approx(hits / len(labels))
    assert 0.3 < p1 < 1.0  # neither trivial nor perfect


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_accuracy_matches_sklearn_leave_one_out(k):
    emb, labels = _clusters(1, n_classes=2, per=20, noise=1.0)  # two classes, odd k: no vote ties
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    clf = KNeighborsClassifier(n_neighbors=k, metric="precomputed").fit(dist, labels)
    np.fill_diagonal(dist, 1e9)  # leave one out: a point is never its own neighbour
    expected = np.mean(clf.predict(dist) == labels)
    acc = M.knn_accuracy(emb, labels, k=k, metric="l2")
    assert acc == pytest.approx(expected)
    assert 0.5 < acc < 1.0


def test_knn_errors():
    with pytest.raises(ValueError, match="k="):
        M.knn_accuracy(np.zeros((3, 2)), [0, 1, 0], k=3)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2,\)"):
        M.knn_precision_at_1(np.zeros((3, 2)), [0, 1])


# --------------------------------------------------------------------------- calibration
def test_ece_matches_loops():
    rng = np.random.default_rng(0)
    probs = F.softmax(torch.from_numpy(rng.normal(size=(500, 4)) * 2), dim=1).numpy()
    labels = rng.integers(0, 4, size=500)
    n_bins = 10
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(500) if (lo < probs[i].max() <= hi) or (b == 0 and probs[i].max() == 0)]
        if members:
            conf = sum(probs[i].max() for i in members) / len(members)
            acc = sum(probs[i].argmax() == labels[i] for i in members) / len(members)
            total += len(members) / 500 * abs(acc - conf)
    assert M.expected_calibration_error(probs, labels, n_bins=n_bins) == pytest.approx(total)
    bins = M.reliability_bins(torch.from_numpy(probs), labels, n_bins=n_bins)
    assert bins.counts.sum() == 500 and bins.edges.shape == (11,)
    assert np.all(np.isnan(bins.accuracy[bins.counts == 0]))


def test_ece_on_hand_made_cases():
    # four predictions at confidence 0.75 of which 3 are right: perfectly calibrated
    probs = np.array([[0.75, 0.25]] * 4)
    assert M.expected_calibration_error(probs, [0, 0, 0, 1]) == pytest.approx(0.0)
    # two bins: {0.9, 0.9} both right (gap 0.1), {0.6, 0.6} both wrong (gap 0.6) -> (0.1 + 0.6) / 2
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    assert M.expected_calibration_error(probs, [0, 1, 1, 0], n_bins=5) == pytest.approx(0.35)
    # binary input as P(class 1): the same four predictions
    assert M.expected_calibration_error(probs[:, 1], [0, 1, 1, 0], n_bins=5) == pytest.approx(0.35)
    # bins are right-closed: with 4 bins, 0.5 falls in (0.25, 0.5] and 0.75 in (0.5, 0.75]
    bins = M.reliability_bins(np.array([[0.5, 0.5], [0.75, 0.25], [0.25, 0.75], [0.9, 0.1]]), [0, 1, 1, 0], n_bins=4)
    np.testing.assert_array_equal(bins.counts, [0, 1, 2, 1])
    np.testing.assert_allclose(bins.confidence[1:], [0.5, 0.75, 0.9])
    np.testing.assert_allclose(bins.accuracy[1:], [1.0, 0.5, 1.0])


def test_ece_rejects_logits_and_bad_shapes():
    with pytest.raises(ValueError, match="softmax"):
        M.expected_calibration_error(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3,\)"):
        M.reliability_bins(np.full((2, 2), 0.5), [0, 1, 0])


def test_threshold_at_far_against_a_search_and_tar_at_far():
    """The lowest score threshold with FAR <= far, found by trying every score; TAR there equals tar_at_far."""
    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=300), 2)  # ties on purpose
    same = rng.random(300) < 0.3
    for far in (0.0, 0.01, 0.1, 0.5):
        t = M.threshold_at_far(s, same, far=far)
        assert np.mean(s[~same] >= t) <= far + 1e-12
        # every threshold that changes a decision: each score, and the float just above it
        candidates = np.union1d(np.unique(s), np.nextafter(np.unique(s), np.inf))
        valid = [c for c in candidates if np.mean(s[~same] >= c) <= far + 1e-12]
        assert t == min(valid)
        assert np.mean(s[same] >= t) == pytest.approx(M.tar_at_far(s, same, far=far))
    with pytest.raises(ValueError, match="impostor"):
        M.threshold_at_far(s[same], same[same], far=0.1)
    with pytest.raises(ValueError, match="far"):
        M.threshold_at_far(s, same, far=1.0)
