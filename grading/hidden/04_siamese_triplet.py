"""Hidden tests of notebook 04 (instructor only: never released, never mounted in the sandbox).

The forbidden references of the "write it yourself" exercises are in the solution cells' ``forbid`` metadata.
The experiment ``mining_active`` is range-checked (grading/experiments/), not probed.
"""

from statistics import NormalDist

from course_tools.grading.checks import equals, holds, reference


def probe_two_minus_two_cos(ns):
    import torch

    f = ns["squared_distance_from_cosine"]
    g = torch.Generator().manual_seed(41)
    u = torch.nn.functional.normalize(torch.randn(30, 7, generator=g), dim=1)
    v = torch.nn.functional.normalize(torch.randn(30, 7, generator=g), dim=1)
    return {"random": f(u, v), "matches_l2": float((f(u, v) - (u - v).pow(2).sum(1)).abs().max()),
            "hand_made": f(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
                           torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))}


def probe_triplet_loss(ns):
    import torch

    f = ns["triplet_loss"]
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    a, p, n = torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([2, 3])
    g = torch.Generator().manual_seed(42)
    e = torch.randn(12, 4, generator=g)
    idx = torch.randint(0, 12, (3, 20), generator=g)
    return {"margins": [float(f(emb, a, p, n, m)) for m in (1.0, 4.0, 10.0)],
            "random": float(f(e, idx[0], idx[1], idx[2], 0.3))}


def probe_batch_hard(ns):
    import torch

    f = ns["batch_hard"]
    emb = torch.tensor([[0.0], [1.0], [5.0], [5.5], [10.5]])
    labels = torch.tensor([0, 0, 1, 1, 2])  # the last one has no positive
    hand = [t.long() for t in f(emb, labels)]
    g = torch.Generator().manual_seed(43)
    e = torch.randn(20, 5, generator=g)
    lab = torch.tensor([0] * 5 + [1] * 5 + [2] * 5 + [3] * 4 + [7])
    return {"hand_made": hand, "random": [t.long() for t in f(e, lab)]}


def probe_eer(ns):
    import numpy as np

    f = ns["eer"]
    rng = np.random.default_rng(44)
    same = np.r_[np.ones(400, bool), np.zeros(4000, bool)]
    scores = np.where(same, rng.normal(1.5, 1, same.size), rng.normal(0, 1, same.size))
    return {"random": float(f(scores, same)),
            "hand_made": float(f(np.array([0.9, 0.8, 0.7, 0.3, 0.1, 0.2, 0.35, 0.6]),
                                 np.array([True] * 4 + [False] * 4))),
            "separable": float(f(np.array([0.8, 0.9, 0.1, 0.2]), np.array([True, True, False, False])))}


def probe_rank1(ns):
    import numpy as np
    import torch

    f = ns["rank1_accuracy"]
    probes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gallery = torch.tensor([[10.0, 1.0], [0.9, 0.5], [0.1, 3.0]])  # cosine, not Euclidean, picks the right one
    g = torch.Generator().manual_seed(45)
    gal = torch.randn(15, 6, generator=g)
    prb = gal.repeat(2, 1) + 0.8 * torch.randn(30, 6, generator=g)
    return {"cosine_not_euclid": float(f(probes, ["a", "b"], gallery, ["a", "b", "b"])),
            "numpy_labels": float(f(probes, np.array([1, 2]), gallery, np.array([1, 2, 2]))),
            "random": float(f(prb, np.tile(np.arange(15), 2), gal, np.arange(15)))}


def probe_contrastive(ns):
    import torch

    f = ns["contrastive_loss"]
    x1, x2 = torch.zeros(2, 2), torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    g = torch.Generator().manual_seed(46)
    a, b = torch.randn(25, 4, generator=g), torch.randn(25, 4, generator=g) * 0.5
    same = torch.rand(25, generator=g) < 0.4
    return {"hand_made": float(f(x1, x2, torch.tensor([True, False]), 1.0)),
            "far_impostor": float(f(x1[:1], x2[:1], torch.tensor([False]), 1.0)),
            "random": [float(f(a, b, same, m)) for m in (0.3, 1.5)],
            "int_mask": float(f(a, b, same.long(), 1.0))}


def probe_dlib_rule(ns):
    import numpy as np

    f = ns["rates_at_distance"]
    line = np.zeros((4, 16))
    line[:, 0] = [0.0, 1.0, 3.0, 3.5]
    labels = np.array([1, 1, 2, 2])
    rng = np.random.default_rng(47)
    x = rng.normal(size=(30, 8))
    y = rng.integers(0, 6, 30)
    return {"at_1": [float(v) for v in f(line, labels, 1.0)], "at_2.6": [float(v) for v in f(line, labels, 2.6)],
            "random": [float(v) for v in f(x, y, 3.5)]}


_EER = NormalDist().cdf(-0.75)  # two unit-variance normals 1.5 apart cross at 0.75
EXPECT = {
    "two_minus_two_cos": {"hand_made": equals([2.0, 0.0, 4.0], atol=1e-6),
                          "matches_l2": holds(lambda d: d < 1e-5, "equals the squared distance on unit vectors"),
                          "random": [reference(atol=1e-5)]},
    "triplet_loss": {"margins": equals([0.0, 0.5, 4.5]), "random": [reference(atol=1e-6)]},
    "batch_hard": {"hand_made": equals([[0, 1, 2, 3], [1, 0, 3, 2], [2, 2, 1, 1]]), "random": [reference()]},
    "eer": {"hand_made": equals(0.25), "separable": equals(0.0),
            "random": [reference(atol=0.01), holds(lambda v: abs(v - _EER) < 0.04, f"near the theoretical EER {_EER:.3f}")]},
    "rank1": {"cosine_not_euclid": equals(1.0), "numpy_labels": equals(1.0), "random": [reference()]},
    "contrastive": {"hand_made": equals((25 + 0.25) / 2), "far_impostor": equals(0.0),
                    "random": [reference(atol=1e-5)], "int_mask": [reference(atol=1e-5)]},
    "dlib_rule": {"at_1": equals([0.5, 0.0]), "at_2.6": equals([1.0, 0.5]), "random": [reference()]},
}
