"""Face-recognition protocols (course_utils.evaluation) against explicit loops, and the training glue."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from course_utils import evaluation as E
from course_utils.augment import augment_faces
from course_utils.metric_learning import SoftmaxCenterLoss, TrackedLoss
from course_utils.metric_learning.losses import TripletLoss
from course_utils.metric_learning.miners import BatchHardMiner
from course_utils.train import fit, make_loader


@pytest.fixture
def clustered():
    """6 identities x 4 images: tight clusters around random unit directions."""
    g = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    labels = torch.arange(6).repeat_interleave(4)
    emb = centres[labels] + 0.05 * torch.randn(24, 8, generator=g)
    return emb, labels


def test_verification_pairs_all_genuine_and_sampled_impostors():
    labels = np.array([0, 0, 1, 1, 1, 2])
    p = E.verification_pairs(labels)
    expected = [(i, j) for i, j in itertools.combinations(range(6), 2)]
    assert list(zip(p.first.tolist(), p.second.tolist())) == expected
    assert p.same.tolist() == [labels[i] == labels[j] for i, j in expected]
    assert p.n_genuine == 1 + 3 and p.n_impostor == 15 - 4
    s = E.verification_pairs(labels, max_impostors=5, seed=1)
    assert s.n_genuine == 4 and s.n_impostor == 5 and len(s) == 9
    assert all(i < j for i, j in zip(s.first, s.second))
    assert set(zip(s.first.tolist(), s.second.tolist())) <= set(expected)
    again = E.verification_pairs(labels, max_impostors=5, seed=1)
    assert np.array_equal(again.first, s.first) and np.array_equal(again.second, s.second)
    with pytest.raises(ValueError, match="genuine and impostor"):
        E.verification_pairs([0, 1, 2])
    with pytest.raises(ValueError, match="genuine and impostor"):
        E.verification_pairs([4, 4, 4])


def test_verification_scores_are_cosines(clustered):
    emb, labels = clustered
    scores, same = E.verification_scores(emb, labels)
    ref_scores, ref_same = E.all_pair_scores(emb, labels, metric="cosine")
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert np.array_equal(same, ref_same)
    # a custom paired score function is used as given
    neg_l1 = lambda a, b: -(a - b).abs().sum(1)  # noqa: E731
    s2, _ = E.verification_scores(emb, labels, score_fn=neg_l1)
    i, j = np.triu_indices(24, 1)
    np.testing.assert_allclose(s2, -(emb[i] - emb[j]).abs().sum(1).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="one score per pair"):
        E.verification_scores(emb, labels, score_fn=lambda a, b: a.sum())
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        E.verification_scores(emb[:5], labels)


def test_gallery_probe_split_closed_and_open():
    labels = np.repeat(np.arange(10), 3)
    closed = E.gallery_probe_split(labels, seed=0)
    assert closed.gallery.size == 10 and sorted(labels[closed.gallery].tolist()) == list(range(10))
    assert closed.probes.size == 20 and closed.known.all()
    assert np.intersect1d(closed.gallery, closed.probes).size == 0
    assert np.union1d(closed.gallery, closed.probes).size == 30
    opened = E.gallery_probe_split(labels, n_unknown=0.3, seed=0)
    assert opened.unknown_identities.size == 3
    assert not np.isin(labels[opened.gallery], opened.unknown_identities).any()
    assert opened.n_unknown_probes == 9 and opened.n_known_probes == 7 * 2
    assert np.array_equal(opened.known, ~np.isin(labels[opened.probes], opened.unknown_identities))
    two = E.gallery_probe_split(labels, per_identity=2, n_unknown=4, seed=3)
    assert two.gallery.size == 12 and two.n_known_probes == 6
    with pytest.raises(ValueError, match="leave a probe"):
        E.gallery_probe_split(labels, per_identity=3)
    with pytest.raises(ValueError, match="n_unknown"):
        E.gallery_probe_split(labels, n_unknown=10)


def test_similarity_matrix_and_identify():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    r = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    s = E.similarity_matrix(q, r)
    expected = np.array([[1, 0], [0, 1], [-math.sqrt(0.5), -math.sqrt(0.5)]])
    np.testing.assert_allclose(s, expected, atol=1e-6)
    dot = lambda a, b: (a * b).sum(1)  # noqa: E731
    np.testing.assert_allclose(E.similarity_matrix(q, r, score_fn=dot), (q @ r.T).numpy())
    pred, best = E.identify(q, r, ["ann", "bob"], threshold=0.5, reject_label="?")
    assert pred.tolist() == ["ann", "bob", "?"]
    np.testing.assert_allclose(best, [1, 1, -math.sqrt(0.5)], atol=1e-6)
    pred, _ = E.identify(q, r, [7, 8])
    assert pred.tolist()[:2] == [7, 8]


def _rank1_loop(s, g, p):
    return np.mean([g[np.argmax(row)] == lab for row, lab in zip(s, p)])


def test_evaluate_embeddings_matches_the_metrics(clustered):
    emb, labels = clustered
    out = E.evaluate_embeddings(emb, labels, seed=0)
    assert set(out) >= {"auc", "eer", "tar_at_far", "rank1", "rank5", "dir_at_far"}
    assert out["auc"] > 0.99 and out["eer"] < 0.02 and out["rank1"] == 1.0 and out["dir_at_far"] > 0.9
    assert out["n_genuine"] == 6 * 6 and out["n_impostor"] == 276 - 36 and out["n_unknown_probes"] == 3 * 4
    # noisy embeddings: compare each number with an independent computation
    g = torch.Generator().manual_seed(1)
    noisy = emb + 0.6 * torch.randn(emb.shape, generator=g)
    out = E.evaluate_embeddings(noisy, labels, far=0.1, seed=2)
    scores, same = E.all_pair_scores(noisy, labels)
    assert out["auc"] == pytest.approx(np.mean([(a > b) + 0.5 * (a == b) for a in scores[same] for b in scores[~same]]))
    assert out["tar_at_far"] == pytest.approx(E.tar_at_far(scores, same, far=0.1))
    split = E.gallery_probe_split(labels, seed=2)
    x = torch.nn.functional.normalize(noisy, dim=1).numpy()
    s = x[split.probes] @ x[split.gallery].T
    lab = labels.numpy()
    assert out["rank1"] == pytest.approx(_rank1_loop(s, lab[split.gallery], lab[split.probes]))
    assert 0 <= out["dir_at_far"] <= 1 and 0 < out["eer"] < 0.5


def test_tracked_loss_records_per_epoch_diagnostics():
    torch.manual_seed(0)
    x = torch.randn(40, 6)
    y = torch.arange(5).repeat_interleave(8)
    model = torch.nn.Linear(6, 4)
    tracked = TrackedLoss(TripletLoss(0.2, miner=BatchHardMiner(margin=0.2)), all_triplets_margin=0.2)
    loader = make_loader(TensorDataset(x, y), batch_size=20, shuffle=True)
    hist = fit(model, loader, loss_fn=tracked, callbacks=[tracked], epochs=3, progress=False, device="cpu",
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert len(tracked.history) == 3 and tracked.series("epoch") == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(tracked.series("loss"), hist["train_loss"], rtol=1e-5)
    for key in ("active_fraction", "active_fraction_all"):
        assert all(0.0 <= v <= 1.0 for v in tracked.series(key))
    assert math.isnan(tracked.series("nope")[0])
    tracked.on_fit_start(None)
    assert tracked.history == []


def test_softmax_center_loss_combines_both_terms():
    torch.manual_seed(0)
    crit = SoftmaxCenterLoss(3, embedding_dim=4, center_weight=0.5)
    e = torch.randn(6, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    total = crit(e, y)
    ce = torch.nn.functional.cross_entropy(crit.classifier(e), y)
    centre = 0.5 * (e - crit.center.centers[y]).pow(2).sum(1).mean()
    torch.testing.assert_close(total, ce + 0.5 * centre)
    assert crit.last_ce == pytest.approx(ce.detach().item())
    assert crit.last_center == pytest.approx(centre.detach().item())
    total.backward()
    assert crit.center.centers.grad is not None and e.grad is not None
    with pytest.raises(ValueError, match="center_weight"):
        SoftmaxCenterLoss(3, embedding_dim=4, center_weight=-1)


def test_verification_plots_and_threshold_explorer(clustered):
    from course_utils import viz

    emb, labels = clustered
    scores, same = E.verification_scores(emb + 0.3 * torch.randn(emb.shape), labels)
    ax = viz.plot_roc_curves({"a": (scores, same), "b": (-scores, same)}, mark_far=1e-2)
    assert len(ax.get_lines()) >= 2 and ax.get_xscale() == "log"
    assert "AUC" in ax.get_legend().get_texts()[0].get_text()
    ax = viz.plot_score_distributions(scores, same, threshold=0.5)
    assert len(ax.patches) > 0
    images = torch.rand(24, 1, 8, 8)
    p = E.verification_pairs(labels)
    ex = viz.threshold_explorer(scores, same, pair_images=(images[p.first], images[p.second]), static=True)
    fa = int(((scores >= ex.controls["threshold"].value) & ~same).sum())
    assert f"{fa} false accepts of {int((~same).sum())}" in ex.info
    ex.update(threshold=float(scores.max()) + 1)  # clamps to the slider's max
    ex.update(threshold=float(scores.min()))
    assert f"0 false rejects of {int(same.sum())}" in ex.info
    assert ex.figure is not None
    with pytest.raises(ValueError, match="pair_images"):
        viz.threshold_explorer(scores, same, pair_images=(images, images))


def test_augment_faces_is_small_reproducible_and_in_range():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 24, 24)
    a = augment_faces(x, generator=torch.Generator().manual_seed(3))
    b = augment_faces(x, generator=torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert not torch.equal(a, x)
    same = augment_faces(x, max_rotation=0, max_shift=0, max_scale=0, flip=False, brightness=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    mirrored = augment_faces(x, max_rotation=0, max_shift=0, max_scale=0, brightness=0,
                                     generator=torch.Generator().manual_seed(0))
    flipped = [torch.allclose(m, xi.flip(-1), atol=1e-5) for m, xi in zip(mirrored, x)]
    kept = [torch.allclose(m, xi, atol=1e-5) for m, xi in zip(mirrored, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment_faces(x[0])
