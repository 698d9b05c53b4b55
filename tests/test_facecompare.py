"""Comparing face models (course_utils.evaluation.faces) against explicit loops, scikit-learn and simulation."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from course_utils import evaluation as FC
from course_utils.evaluation import evaluate_embeddings, gallery_probe_split, tar_at_far, verification_pairs


def people(n_people=8, per=5, dim=16, spread=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_people, dim, generator=g) * 2
    emb = centres.repeat_interleave(per, 0) + spread * torch.randn(n_people * per, dim, generator=g)
    return emb, np.repeat(np.arange(n_people) * 3 + 1, per)  # labels need not be 0..K-1


def test_euclidean_scores_is_minus_the_distance_of_each_pair():
    a, b = torch.randn(7, 5), torch.randn(7, 5)
    want = [-float(np.linalg.norm(a[i].numpy() - b[i].numpy())) for i in range(7)]
    np.testing.assert_allclose(FC.euclidean_scores(a, b), want, rtol=1e-6)
    np.testing.assert_allclose(FC.euclidean_scores(a.numpy(), b.numpy()), want, rtol=1e-6)
    with pytest.raises(ValueError, match="paired"):
        FC.euclidean_scores(a, b[:3])


@pytest.mark.parametrize("score_fn", [None, FC.euclidean_scores])
def test_rank1_hits_against_an_explicit_loop_and_evaluate_embeddings(score_fn):
    emb, lab = people(spread=2.0)
    hits, probe_labels = FC.rank1_hits(emb, lab, score_fn=score_fn, seed=3)
    split = gallery_probe_split(lab, n_unknown=0, seed=3)
    e = emb.numpy()
    for k, p in enumerate(split.probes):
        if score_fn is None:
            sims = [float(e[p] @ e[g] / np.linalg.norm(e[p]) / np.linalg.norm(e[g])) for g in split.gallery]
        else:
            sims = [-float(np.linalg.norm(e[p] - e[g])) for g in split.gallery]
        best = int(np.argmax(sims))
        assert hits[k] == (lab[split.gallery[best]] == lab[p])
        assert probe_labels[k] == lab[p]
    assert 0 < hits.mean() < 1  # the data is hard enough for both outcomes
    ref = evaluate_embeddings(emb, lab, seed=3, score_fn=score_fn)["rank1"]
    assert hits.mean() == pytest.approx(ref)


def test_identity_intervals_estimates_match_sklearn_and_share_draws_across_models():
    emb, lab = people(spread=1.5)
    iv = FC.identity_intervals(emb, lab, far=0.05, n_boot=200, seed=1)
    pairs = verification_pairs(lab)
    e = torch.nn.functional.normalize(emb, dim=1).numpy()
    scores = np.sum(e[pairs.first] * e[pairs.second], axis=1)
    assert iv["auc"].estimate == pytest.approx(roc_auc_score(pairs.same, scores))
    assert iv["tar_at_far"].estimate == pytest.approx(tar_at_far(scores, pairs.same, far=0.05))
    assert iv["rank1"].estimate == pytest.approx(evaluate_embeddings(emb, lab)["rank1"])
    for v in iv.values():
        assert v.n == 8 and v.low <= v.estimate <= v.high and v.method == "identity bootstrap"
    other = FC.identity_intervals(emb + 0.5 * torch.randn_like(emb), lab, far=0.05, n_boot=200, seed=1)
    assert all(other[k].key == iv[k].key for k in iv)  # same people, same draws: compare pairs them


def test_verdict_table_supports_a_clear_gap_and_calls_a_tie_within_noise():
    emb, lab = people(n_people=12, spread=0.8)
    noisy = emb + 3.0 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(9))
    ivs = {"good": FC.identity_intervals(emb, lab, n_boot=300), "bad": FC.identity_intervals(noisy, lab, n_boot=300)}
    ivs["copy of bad"] = FC.identity_intervals(noisy, lab, n_boot=300)
    table = FC.verdict_table(ivs, reference="bad")
    assert set(table["model"]) == {"good", "copy of bad"} and len(table) == 6
    good = table[table["model"] == "good"].set_index("metric")
    assert good.loc["AUC", "verdict"] == "supported" and good.loc["AUC", "low"] > 0
    tie = table[table["model"] == "copy of bad"]
    assert (tie["verdict"] == "within noise").all() and np.allclose(tie[["low", "high"]], 0)
    shown = FC.interval_table(ivs)
    assert list(shown.columns) == ["AUC", "TAR@FAR", "rank-1"] and list(shown.index) == list(ivs)
    assert shown.loc["good", "AUC"] == ivs["good"]["auc"].format()


def test_gallery_false_alarm_rate_against_a_loop_and_a_simulation():
    far, g = 0.05, 5
    escape = 1.0
    for _ in range(g):  # a stranger must escape each comparison
        escape *= 1 - far
    assert FC.gallery_false_alarm_rate(far, g) == pytest.approx(1 - escape)
    rng = np.random.default_rng(0)
    alarms = (rng.random((200_000, g)) < far).any(axis=1).mean()
    assert FC.gallery_false_alarm_rate(far, g) == pytest.approx(alarms, abs=0.004)
    assert FC.gallery_false_alarm_rate(far, 1) == pytest.approx(far)
    back = FC.pairwise_far_for_alarm_rate(FC.gallery_false_alarm_rate(far, g), g)
    assert back == pytest.approx(far)
    assert FC.pairwise_far_for_alarm_rate(0.05, 5) < 0.05
    with pytest.raises(ValueError):
        FC.gallery_false_alarm_rate(1.5, 3)
    with pytest.raises(ValueError):
        FC.pairwise_far_for_alarm_rate(0.1, 0)
