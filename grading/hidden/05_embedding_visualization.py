"""Hidden tests of notebook 05 (instructor only: never released, never mounted in the sandbox).

The forbidden references of the "write it yourself" exercises are in the solution cells' ``forbid=[...]``
metadata. The experiment ``tsne_vs_pca`` is range-checked (grading/experiments/), not probed.
"""

from course_tools.grading.checks import equals, holds, reference


def probe_trustworthiness(ns):
    import numpy as np

    f = ns["trustworthiness_by_hand"]
    rng = np.random.default_rng(51)
    hi = rng.normal(size=(40, 6))
    lo_random = rng.normal(size=(40, 2))
    perm = rng.permutation(40)
    return {"identity": float(f(hi, hi.copy(), 4)), "projection": [float(f(hi, hi[:, :2], k)) for k in (2, 5)],
            "random": float(f(hi, lo_random, 4)),
            "permuted": abs(float(f(hi[perm], hi[perm, :2], 5)) - float(f(hi, hi[:, :2], 5)))}


def probe_precision_at_k(ns):
    import numpy as np

    f = ns["precision_at_k"]
    feats = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    labels = np.array([0, 0, 1, 1])
    rng = np.random.default_rng(52)
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 4, 40)
    return {"k1": float(f(feats, labels, 1)), "k2": float(f(feats, labels, 2)),
            "random": [float(f(x, y, k)) for k in (1, 3, 7)]}


def probe_intensity_histogram(ns):
    import numpy as np
    import torch

    f = ns["intensity_histogram"]
    img = torch.tensor([[[[0.0, 0.3], [0.6, 1.0]]]])
    g = torch.Generator().manual_seed(53)
    rgb = torch.rand(3, 3, 4, 5, generator=g)
    h = np.asarray(f(rgb, 6), dtype=float)
    return {"bins2": np.asarray(f(img, 2)), "bins4": np.asarray(f(img, 4)), "shape": list(h.shape),
            "rows_sum_to_1": bool(np.allclose(h.sum(1), 1)), "random": h}


def probe_pca_2d(ns):
    import numpy as np

    f = ns["pca_2d"]

    def canonical(c):
        c = np.asarray(c, dtype=float).copy()
        for j in range(c.shape[1]):
            nz = np.flatnonzero(np.abs(c[:, j]) > 1e-9)
            if nz.size and c[nz[0], j] > 0:
                c[:, j] *= -1
        return c

    line = np.array([[0.0, 0.0, 5.0], [1.0, 1.0, 5.0], [2.0, 2.0, 5.0], [3.0, 3.0, 5.0]])
    rng = np.random.default_rng(54)
    x = rng.normal(size=(50, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 7
    c = canonical(f(x))
    return {"line_first_axis": canonical(f(line))[:, 0], "random": c, "shape": list(c.shape),
            "centred": float(np.abs(c.mean(0)).max()), "variance_order": bool(c[:, 0].var() >= c[:, 1].var())}


def probe_silhouette(ns):
    import numpy as np

    f = ns["silhouette_by_hand"]
    rng = np.random.default_rng(55)
    x = np.concatenate([rng.normal(0, 1, (15, 3)), rng.normal(4, 1, (15, 3)), rng.normal((0, 5, 0), 1, (10, 3))])
    y = np.repeat([0, 1, 2], [15, 15, 10])
    return {"hand_made": float(f(np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([0, 0, 1, 1]))),
            "random": float(f(x, y)), "string_labels": float(f(x, np.array(["p", "q", "r"])[y]))}


def probe_center_loss(ns):
    import torch

    f = ns["center_loss"]
    g = torch.Generator().manual_seed(56)
    feats, labels = torch.randn(20, 3, generator=g), torch.randint(0, 4, (20,), generator=g)
    centres = torch.randn(4, 3, generator=g)
    return {"hand_made": float(f(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), torch.zeros(2, 2))),
            "at_centres": float(f(centres[labels], labels, centres)), "random": float(f(feats, labels, centres))}


def probe_rates_at_threshold(ns):
    import numpy as np

    f = ns["rates_at_threshold"]
    square = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # sides 1, diagonals sqrt(2)
    rng = np.random.default_rng(57)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 5, 30)
    line = np.zeros((4, 3))
    line[:, 0] = [0.0, 2.0, 2.5, 6.0]  # genuine pairs at 2 and 3.5; impostors at 2.5, 6, 0.5, 4
    labels = np.array(["p", "p", "q", "q"])
    return {"square": [float(v) for v in f(square, np.array([0, 0, 1, 1]), 1.2)],
            "square_wide": [float(v) for v in f(square, np.array([0, 1, 0, 1]), 1.5)],
            "random": [float(v) for v in f(x, y, 2.5)],
            "string_labels": [float(v) for v in f(x, np.array(list("abcde"))[y], 2.5)],
            "line_at_3": [float(v) for v in f(line, labels, 3.0)],
            "line_at_2": [float(v) for v in f(line, labels, 2.0)],  # a pair at exactly the threshold is rejected
            "line_at_10": [float(v) for v in f(line, labels, 10.0)],
            "line_reversed": [float(v) for v in f(line[::-1].copy(), labels[::-1].copy(), 3.0)]}


_S = ((10.5 - 1) / 10.5 + (9.5 - 1) / 9.5) / 2  # two tight pairs 10 apart, worked out by hand
EXPECT = {
    "trustworthiness": {"identity": equals(1.0), "permuted": holds(lambda d: d < 1e-9, "point order does not matter"),
                        "random": [reference(atol=1e-9), holds(lambda v: v < 0.8, "a random picture is not trustworthy")],
                        "projection": [reference(atol=1e-9)]},
    "precision_at_k": {"k1": equals(1.0), "k2": equals(0.5), "random": [reference(atol=1e-9)]},
    "intensity_histogram": {"bins2": equals([[0.5, 0.5]]), "bins4": equals([[0.25, 0.25, 0.25, 0.25]]),
                            "shape": equals([3, 6]), "rows_sum_to_1": equals(True), "random": [reference(atol=1e-9)]},
    "pca_2d": {"line_first_axis": equals([-1.5 * 2**0.5, -0.5 * 2**0.5, 0.5 * 2**0.5, 1.5 * 2**0.5], atol=1e-6),
               "shape": equals([50, 2]), "centred": holds(lambda v: v < 1e-8, "centred coordinates"),
               "variance_order": equals(True), "random": [reference(atol=1e-6)]},
    "silhouette": {"hand_made": equals(_S), "random": [reference(atol=1e-9)], "string_labels": [reference(atol=1e-9)]},
    "rates_at_threshold": {"square": equals([1.0, 0.5]), "square_wide": equals([1.0, 1.0]),
                           "random": [reference(atol=1e-12)], "string_labels": [reference(atol=1e-12)],
                           "line_at_3": equals([0.5, 0.5]), "line_at_2": equals([0.0, 0.25]),
                           "line_at_10": equals([1.0, 1.0]), "line_reversed": equals([0.5, 0.5])},
    "center_loss": {"hand_made": equals(1.25), "at_centres": equals(0.0), "random": [reference(atol=1e-6)]},
}
