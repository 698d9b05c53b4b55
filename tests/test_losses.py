"""Losses against explicit loops and PyTorch / scikit-learn references."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

from course_utils.metric_learning.losses import (
    ArcFaceLoss,
    CenterLoss,
    ContrastiveLoss,
    CosFaceLoss,
    LabelSmoothingCrossEntropy,
    NTXentLoss,
    SiamesePairClassifier,
    TripletLoss,
)
from course_utils.metric_learning.miners import BatchHardMiner, PairMiner, SemiHardMiner


def _batch(n_ids: int = 4, per_id: int = 3, dim: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_ids).repeat_interleave(per_id)
    emb = torch.randn(n_ids, dim, generator=g)[labels] * 0.5 + torch.randn(labels.numel(), dim, generator=g)
    return emb.double().requires_grad_(), labels


def _sq(a, b):
    return float(((a - b) ** 2).sum())


# --------------------------------------------------------------------------- contrastive
@pytest.mark.parametrize("margin", [0.5, 2.0, 5.0])
def test_contrastive_matches_loops_over_all_pairs(margin):
    emb, labels = _batch(seed=1)
    e, lab = emb.detach(), labels.tolist()
    terms = []
    for i in range(len(lab)):
        for j in range(i + 1, len(lab)):
            d = math.sqrt(_sq(e[i], e[j]))
            terms.append(d * d if lab[i] == lab[j] else max(0.0, margin - d) ** 2)
    loss_fn = ContrastiveLoss(margin)
    loss = loss_fn(emb, labels)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-10)
    assert loss_fn.last_active_fraction == pytest.approx(sum(t > 0 for t in terms) / len(terms))
    assert ContrastiveLoss(margin, reduction="sum")(emb, labels).item() == pytest.approx(sum(terms), rel=1e-10)
    # the pair miner gives the same pairs as the default
    assert loss_fn(emb, labels, pairs=PairMiner(margin=margin)(emb, labels)).item() == pytest.approx(loss.item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contrastive_distance_matrix_path_matches_gathered_pairs(dtype):
    """The all-pairs loss now comes from the (N, N) distance matrix; the oracle gathers every pair's vectors."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(48, 16, generator=g, dtype=dtype)
    base[5] = base[4]  # an identical pair: d = 0 must keep a finite gradient
    labels = torch.randint(0, 6, (48,), generator=g)
    labels[5] = labels[4] + 1
    for reduction in ("mean", "sum"):
        fast_x = base.clone().requires_grad_(True)
        slow_x = base.clone().requires_grad_(True)
        fast_fn, slow_fn = ContrastiveLoss(1.5, reduction=reduction), ContrastiveLoss(1.5, reduction=reduction)
        fast = fast_fn(fast_x, labels)
        i, j = torch.triu_indices(48, 48, offset=1)
        slow = slow_fn.forward_pairs(slow_x[i], slow_x[j], labels[i] == labels[j])  # the previous implementation
        fast.backward()
        slow.backward()
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        assert fast.item() == pytest.approx(slow.item(), rel=tol)
        torch.testing.assert_close(fast_x.grad, slow_x.grad, rtol=tol * 10, atol=tol)
        assert torch.isfinite(fast_x.grad).all()
        assert fast_fn.last_active_fraction == pytest.approx(slow_fn.last_active_fraction)


def test_contrastive_explicit_pairs_and_gradient_direction():
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    x2 = torch.tensor([[0.3, 0.4], [0.3, 0.4]])
    same = torch.tensor([1, 0])
    loss = ContrastiveLoss(1.0).forward_pairs(x1, x2, same)
    # d = 0.5: positive 0.25, negative (1 - 0.5)^2 = 0.25
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    # the positive pair is pulled towards x2, the negative pushed away from it
    assert (x1.grad[0] @ torch.tensor([0.3, 0.4])) < 0
    assert (x1.grad[1] @ torch.tensor([0.3, 0.4])) > 0


def test_contrastive_without_pairs_is_zero_with_finite_grad():
    emb = torch.randn(1, 4, requires_grad=True)
    loss = ContrastiveLoss()(emb, torch.tensor([3]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(emb.grad, torch.zeros(1, 4))
    x = torch.randn(0, 4, requires_grad=True)
    assert ContrastiveLoss().forward_pairs(x, x, torch.zeros(0)).item() == 0.0


def test_contrastive_identical_negative_pair_has_finite_grad():
    x = torch.ones(2, 3, requires_grad=True)
    ContrastiveLoss(1.0)(x, torch.tensor([0, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_contrastive_errors():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5,\)"):
        ContrastiveLoss()(torch.randn(4, 3), torch.arange(5))
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(4, 2\)"):
        ContrastiveLoss().forward_pairs(torch.randn(4, 3), torch.randn(4, 2), torch.ones(4))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        ContrastiveLoss().forward_pairs(torch.randn(4, 3), torch.randn(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(0.0)


# --------------------------------------------------------------------------- triplet
def test_triplet_matches_torch_triplet_margin_loss():
    emb, labels = _batch(seed=2)
    triplets = BatchHardMiner(metric="l2")(emb, labels)
    a, p, n = triplets
    ours = TripletLoss(0.3, metric="l2")(emb, labels, triplets=triplets)
    ref = torch.nn.TripletMarginLoss(margin=0.3, p=2, eps=0.0)(emb[a], emb[p], emb[n])
    torch.testing.assert_close(ours, ref)
    g_ours = torch.autograd.grad(ours, emb)[0]
    g_ref = torch.autograd.grad(ref, emb)[0]
    torch.testing.assert_close(g_ours, g_ref)


def test_triplet_squared_l2_over_all_triplets_matches_loops():
    emb, labels = _batch(seed=3)
    e, lab = emb.detach(), labels.tolist()
    n = len(lab)
    losses = [
        max(0.0, _sq(e[a], e[p]) - _sq(e[a], e[q]) + 1.0)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if a != p and lab[a] == lab[p] and lab[q] != lab[a]
    ]
    for reduction, expected in [
        ("mean", sum(losses) / len(losses)),
        ("sum", sum(losses)),
        ("mean_active", sum(losses) / sum(v > 0 for v in losses)),
    ]:
        fn = TripletLoss(1.0, reduction=reduction)  # default metric: squared L2, no miner: all triplets
        assert fn(emb, labels).item() == pytest.approx(expected, rel=1e-10)
    assert fn.last_num_triplets == len(losses)
    assert fn.last_active_fraction == pytest.approx(sum(v > 0 for v in losses) / len(losses))
    assert 0 < fn.last_active_fraction < 1


def test_triplet_with_batch_hard_miner_matches_loops():
    emb, labels = _batch(seed=4)
    e, lab = emb.detach(), labels.tolist()
    n = len(lab)
    losses = []
    for a in range(n):
        hp = max(_sq(e[a], e[p]) for p in range(n) if p != a and lab[p] == lab[a])
        hn = min(_sq(e[a], e[q]) for q in range(n) if lab[q] != lab[a])
        losses.append(max(0.0, hp - hn + 0.2))
    fn = TripletLoss(0.2, miner=BatchHardMiner(margin=0.2))
    assert fn(emb, labels).item() == pytest.approx(sum(losses) / n, rel=1e-10)
    assert fn.last_num_triplets == n


@pytest.mark.parametrize("labels", [torch.zeros(5, dtype=torch.long), torch.arange(5)])
@pytest.mark.parametrize("miner", [None, BatchHardMiner(), SemiHardMiner()])
def test_triplet_without_valid_triplets_is_zero_with_finite_grad(miner, labels):
    emb = torch.randn(5, 4, requires_grad=True)
    fn = TripletLoss(0.2, miner=miner)
    loss = fn(emb, labels)
    loss.backward()
    assert loss.item() == 0.0 and not torch.isnan(loss)
    assert torch.equal(emb.grad, torch.zeros(5, 4))
    assert fn.last_num_triplets == 0 and fn.last_active_fraction == 0.0


def test_triplet_mean_active_with_no_active_triplet_is_zero():
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1]], requires_grad=True)
    loss = TripletLoss(0.2, reduction="mean_active")(emb, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(emb.grad).all()


def test_triplet_errors():
    with pytest.raises(ValueError, match=r"\(6,\)"):
        TripletLoss()(torch.randn(6, 3), torch.arange(6).view(2, 3))
    with pytest.raises(ValueError, match=r"\(2,\), \(3,\)"):
        TripletLoss()(torch.randn(6, 3), torch.arange(6), triplets=(torch.arange(2), torch.arange(3), torch.arange(2)))
    with pytest.raises(ValueError, match="metric"):
        TripletLoss(metric="hamming")
    with pytest.raises(ValueError, match="reduction"):
        TripletLoss(reduction="median")


# --------------------------------------------------------------------------- center
def test_center_loss_matches_loops_and_trains_centres_with_their_own_lr():
    torch.manual_seed(0)
    fn = CenterLoss(3, embedding_dim=4)
    x = torch.randn(7, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 0, 2])
    c = fn.centers.detach().clone()
    expected = 0.5 * sum(float(((x[i] - c[y[i]]) ** 2).sum()) for i in range(7)) / 7
    assert fn(x, y).item() == pytest.approx(expected, rel=1e-6)

    model = torch.nn.Linear(4, 4)
    group = fn.param_group(lr=0.5)
    assert group["params"] == [fn.centers] and group["lr"] == 0.5
    opt = torch.optim.SGD([{"params": model.parameters()}, group], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    opt.zero_grad()
    fn(x, y).backward()
    opt.step()
    for j in range(3):  # c_j <- c_j + lr / N * sum_{y_i = j} (x_i - c_j)
        pull = sum((x[i] - c[j] for i in range(7) if y[i] == j), torch.zeros(4))
        torch.testing.assert_close(fn.centers[j].detach(), c[j] + 0.5 / 7 * pull)


def test_center_loss_errors_and_empty_batch():
    fn = CenterLoss(3, embedding_dim=4)
    with pytest.raises(ValueError, match=r"\(N, 4\).*\(2, 5\)"):
        fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        fn(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        fn(torch.randn(2, 4), torch.tensor([0, 1, 2]))
    x = torch.randn(0, 4, requires_grad=True)
    loss = fn(x, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(fn.centers.grad, torch.zeros(3, 4))


# --------------------------------------------------------------------------- ArcFace / CosFace
def _margin_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randint(0, 4, (8,), generator=g)


def _loop_logits(head, x, y, target_fn):
    w = head.weight.detach()
    out = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        for k in range(w.shape[0]):
            cos = float(x[i] @ w[k] / (x[i].norm() * w[k].norm()))
            out[i, k] = head.s * (target_fn(cos) if k == y[i] else cos)
    return out


def test_arcface_matches_angle_loops_and_cross_entropy():
    x, y = _margin_inputs()
    head = ArcFaceLoss(4, embedding_dim=5, s=30.0, m=0.4).double()

    def arc(c):
        theta = math.acos(c)
        return math.cos(theta + 0.4) if theta + 0.4 <= math.pi else c - 0.4 * math.sin(0.4)

    expected = _loop_logits(head, x, y, arc)
    torch.testing.assert_close(head.logits(x, y), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(head(x, y), F.cross_entropy(expected, y), rtol=1e-6, atol=1e-6)
    # inference logits have no margin, and do not depend on the scale of W or x
    torch.testing.assert_close(head.logits(x), 30.0 * head.cosine(x))
    with torch.no_grad():
        head.weight.mul_(7.0)
    torch.testing.assert_close(head.logits(3.0 * x, y), expected, rtol=1e-6, atol=1e-6)


def test_arcface_fallback_when_angle_plus_margin_exceeds_pi():
    head = ArcFaceLoss(2, embedding_dim=2, s=1.0, m=0.5).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[-1.0, 0.01]], dtype=torch.float64)  # theta close to pi for class 0
    cos = head.cosine(x)[0, 0].item()
    assert head.logits(x, torch.tensor([0]))[0, 0].item() == pytest.approx(cos - 0.5 * math.sin(0.5))


def test_arcface_gradient_finite_when_embedding_equals_weight():
    head = ArcFaceLoss(3, embedding_dim=4)
    x = head.weight.detach()[:2].clone().requires_grad_()
    head(x, torch.tensor([0, 1])).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()


def test_cosface_matches_loops_and_zero_margin_is_normalised_softmax():
    x, y = _margin_inputs(1)
    head = CosFaceLoss(4, embedding_dim=5, s=16.0, m=0.35).double()
    expected = _loop_logits(head, x, y, lambda c: c - 0.35)
    torch.testing.assert_close(head.logits(x, y), expected)
    torch.testing.assert_close(head(x, y), F.cross_entropy(expected, y))
    for cls in (ArcFaceLoss, CosFaceLoss):
        h = cls(4, embedding_dim=5, s=10.0, m=0.0).double()
        torch.testing.assert_close(h(x, y), F.cross_entropy(10.0 * h.cosine(x), y))


def test_margin_makes_the_loss_larger():
    x, y = _margin_inputs(2)
    for cls in (ArcFaceLoss, CosFaceLoss):
        torch.manual_seed(0)
        plain = cls(4, embedding_dim=5, s=10.0, m=0.0).double()
        torch.manual_seed(0)
        margin = cls(4, embedding_dim=5, s=10.0, m=0.3).double()
        assert margin(x, y).item() > plain(x, y).item()


@pytest.mark.parametrize("cls", [ArcFaceLoss, CosFaceLoss])
def test_margin_heads_errors(cls):
    head = cls(4, embedding_dim=5)
    with pytest.raises(ValueError, match=r"\(N, 5\).*\(8, 3\)"):
        head(torch.randn(8, 3), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(8,\).*\(7,\)"):
        head(torch.randn(8, 5), torch.zeros(7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        head(torch.randn(2, 5), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer"):
        head(torch.randn(2, 5), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="s > 0"):
        cls(4, embedding_dim=5, s=0.0)


# --------------------------------------------------------------------------- Siamese head
@pytest.mark.parametrize("mode", ["abs_diff", "distance"])
def test_siamese_head_bce_matches_sklearn_log_loss(mode):
    torch.manual_seed(0)
    head = SiamesePairClassifier(6, mode=mode).double()
    f1, f2 = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 6, dtype=torch.float64)
    same = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 0])
    w, b = head.linear.weight.detach().ravel(), head.linear.bias.item()
    probs = []
    for i in range(10):
        if mode == "abs_diff":
            z = sum(float(w[k]) * abs(float(f1[i, k] - f2[i, k])) for k in range(6)) + b
        else:
            z = float(w[0]) * math.sqrt(_sq(f1[i], f2[i])) + b
        probs.append(1 / (1 + math.exp(-z)))
    np.testing.assert_allclose(head.predict_proba(f1, f2).detach().numpy(), probs, rtol=1e-10)
    assert head.loss(f1, f2, same).item() == pytest.approx(log_loss(same.numpy(), probs, labels=[0, 1]), rel=1e-8)


def test_siamese_head_learns_same_vs_different():
    torch.manual_seed(0)
    ids = torch.randn(20, 8)
    i, j = torch.randint(0, 20, (2, 400))
    f1 = ids[i] + 0.2 * torch.randn(400, 8)
    f2 = ids[j] + 0.2 * torch.randn(400, 8)
    same = (i == j).long()
    same[:150] = 1
    f2[:150] = ids[i[:150]] + 0.2 * torch.randn(150, 8)
    head = SiamesePairClassifier(8)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = head.loss(f1, f2, same)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    auc = roc_auc_score(same.numpy(), head(f1, f2).detach().numpy())
    assert auc > 0.98  # higher output = more likely the same identity


def test_siamese_head_errors():
    head = SiamesePairClassifier(6)
    with pytest.raises(ValueError, match=r"\(4, 6\) and \(4, 5\)"):
        head(torch.randn(4, 6), torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        head(torch.randn(4, 5), torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        head.loss(torch.randn(4, 6), torch.randn(4, 6), torch.ones(3))
    with pytest.raises(ValueError, match="mode"):
        SiamesePairClassifier(6, mode="concat")


# --------------------------------------------------------------------------- label smoothing
@pytest.mark.parametrize("a", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch_and_formula(a):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (9,), generator=g)
    ours = LabelSmoothingCrossEntropy(a)(logits, y)
    torch.testing.assert_close(ours, F.cross_entropy(logits, y, label_smoothing=a))
    y_ls = (1 - a) * F.one_hot(y, 5).double() + a / 5
    torch.testing.assert_close(ours, -(y_ls * F.log_softmax(logits, 1)).sum(1).mean())
    torch.testing.assert_close(
        LabelSmoothingCrossEntropy(a, reduction="sum")(logits, y),
        F.cross_entropy(logits, y, label_smoothing=a, reduction="sum"),
    )


def test_label_smoothing_errors():
    with pytest.raises(ValueError, match=r"\(N, K\).*\(5,\)"):
        LabelSmoothingCrossEntropy()(torch.randn(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        LabelSmoothingCrossEntropy()(torch.randn(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LabelSmoothingCrossEntropy()(torch.randn(2, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="smoothing"):
        LabelSmoothingCrossEntropy(1.0)


# --------------------------------------------------------------------------- NT-Xent
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_ntxent_matches_loops(t):
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    z2 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    z = torch.cat([z1, z2])
    n2 = z.shape[0]

    def sim(i, k):
        return float(F.cosine_similarity(z[i : i + 1], z[k : k + 1])) / t

    total = 0.0
    for i in range(n2):
        j = (i + 4) % n2
        denom = sum(math.exp(sim(i, k)) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(i, j)) / denom)
    assert NTXentLoss(t)(z1, z2).item() == pytest.approx(total / n2, rel=1e-10)


def test_ntxent_rewards_aligned_views_and_checks_shapes():
    torch.manual_seed(0)
    z1 = torch.randn(16, 8)
    aligned = NTXentLoss(0.2)(z1, z1 + 0.01 * torch.randn(16, 8))
    shuffled = NTXentLoss(0.2)(z1, torch.randn(16, 8))
    assert aligned < shuffled
    assert NTXentLoss()(torch.randn(1, 3), torch.randn(1, 3)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5, 3\)"):
        NTXentLoss()(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
