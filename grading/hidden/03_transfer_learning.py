"""Hidden tests of notebook 03 (instructor only: never released, never mounted in the sandbox).

``probe_<id>(ns)`` runs in the sandbox after the student's solution and returns
plain outputs; ``EXPECT`` holds the host-side checks (see course_tools.grading.checks).
The forbidden references live in the solution cells' ``forbid=[...]`` metadata.
The experiment ``source_gain`` is range-checked (grading/experiments/), not probed.
"""

import math

from course_tools.grading.checks import equals, holds, reference


def probe_freeze_backbone(ns):
    from torch import nn

    from course_utils.models import create_model

    f = ns["freeze_backbone"]

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Linear(4, 5)
            self.classifier = nn.Linear(5, 2)

    toy = Toy()
    n_toy = f(toy)
    real = create_model("resnet_small", num_classes=3)
    n_real = f(real)
    return {"toy_count": n_toy, "toy_trainable": sorted(n for n, p in toy.named_parameters() if p.requires_grad),
            "real_count": n_real, "real_matches_flags": n_real == sum(p.numel() for p in real.parameters()
                                                                        if p.requires_grad),
            "twice": f(toy)}


def probe_per_layer_lr(ns):
    from course_utils import transfer as T
    from course_utils.models import create_model

    f = ns["per_layer_groups"]
    out = {}
    for arch in ("resnet_small", "vgg_small"):
        m = create_model(arch, num_classes=4)
        T.unfreeze_last_blocks(m, 2)
        groups = f(m, 0.2, 0.1)
        name = {id(p): n for n, p in m.named_parameters()}
        lrs = {}
        dup = 0
        for g in groups:
            for p in g["params"]:
                dup += name[id(p)] in lrs
                lrs[name[id(p)]] = g["lr"]
        trainable = sorted(n for n, p in m.named_parameters() if p.requires_grad)
        out[arch] = {"lrs": dict(sorted(lrs.items())), "covers_trainable": sorted(lrs) == trainable,
                     "duplicates": dup, "distinct": sorted({round(v, 12) for v in lrs.values()}, reverse=True)}
    return out


def probe_label_smoothing(ns):
    import torch

    f = ns["smoothed_cross_entropy"]
    torch.manual_seed(33)
    logits, targets = torch.randn(12, 5) * 2, torch.randint(0, 5, (12,))
    return {"random": [float(f(logits, targets, a)) for a in (0.0, 0.05, 0.3)],
            "uniform_logits": float(f(torch.zeros(2, 4), torch.tensor([0, 3]), 0.2)),
            "no_smoothing": float(f(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), 0.0)),
            "full_smoothing": float(f(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), 1.0))}


def probe_ece(ns):
    import numpy as np

    f = ns["ece"]
    rng = np.random.default_rng(34)
    raw = np.exp(rng.normal(size=(250, 3)) * 1.5)
    probs = raw / raw.sum(1, keepdims=True)
    labels = rng.integers(0, 3, 250)
    hand = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.55, 0.45]])
    return {"random": [float(f(probs, labels, b)) for b in (4, 10, 20)],
            "perfect": float(f(np.eye(4), np.arange(4), 10)),
            "hand_made": float(f(hand, np.array([0, 1, 0, 0]), 4)),
            "bin_edge": float(f(np.array([[0.5, 0.5]]), np.array([0]), 2))}


def probe_linear_probe(ns):
    import torch

    f = ns["linear_probe"]
    g = torch.Generator().manual_seed(35)
    centres = torch.randn(4, 12, generator=g) * 3
    y_tr, y_te = torch.arange(80) % 4, torch.arange(40) % 4
    x_tr = centres[y_tr] + torch.randn(80, 12, generator=g) + 50  # far from the origin: standardise first
    x_te = centres[y_te] + torch.randn(40, 12, generator=g) + 50
    shuffled = y_te[torch.randperm(40, generator=g)]
    return {"separable": float(f(x_tr, y_tr, x_te, y_te, 4)), "shuffled": float(f(x_tr, y_tr, x_te, shuffled, 4))}


def probe_nt_xent(ns):
    import torch

    f = ns["nt_xent"]
    torch.manual_seed(36)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    eye = torch.eye(2)
    return {"random": [float(f(a, b, t)) for t in (0.2, 1.0)],
            "orthonormal": float(f(eye, eye.clone(), 1.0)),
            "scale_invariant": abs(float(f(3 * a, 0.5 * b, 0.5)) - float(f(a, b, 0.5))),
            "matched_lower": float(f(a, a + 0.01 * b, 0.1)) < float(f(a, b, 0.1)),
            "symmetric": abs(float(f(a, b, 0.5)) - float(f(b, a, 0.5)))}


EXPECT = {
    "freeze_backbone": {"toy_count": equals(12), "toy_trainable": equals(["classifier.bias", "classifier.weight"]),
                        "real_matches_flags": equals(True), "twice": equals(12)},
    "per_layer_lr": {
        "resnet_small": [reference(), holds(lambda r: r["covers_trainable"] and r["duplicates"] == 0
                                            and r["distinct"][0] == 0.2
                                            and all(math.isclose(x, 0.2 * 0.1**k) for k, x in enumerate(r["distinct"])),
                                            "every trainable parameter once; lr, lr*decay, lr*decay^2 ...")],
        "vgg_small": [reference(), holds(lambda r: r["covers_trainable"] and r["duplicates"] == 0,
                                         "every trainable parameter exactly once")],
    },
    "label_smoothing": {"uniform_logits": equals(math.log(4)),
                        "no_smoothing": equals(math.log(1 + math.exp(-2))),
                        "full_smoothing": equals(0.5 * (math.log(1 + math.exp(-2)) + 2 + math.log(1 + math.exp(-2)))),
                        "random": [reference(atol=1e-5)]},
    "ece": {"perfect": equals(0.0), "hand_made": equals(0.1125), "bin_edge": equals(0.5),
            "random": [reference(atol=1e-9)]},
    "linear_probe": {"separable": [reference(atol=0.1), holds(lambda a: a >= 0.9, "well separated classes")],
                     "shuffled": holds(lambda a: 0 <= a < 0.6, "shuffled test labels: near chance (0.25)")},
    "nt_xent": {"orthonormal": equals(math.log(1 + 2 / math.e)), "scale_invariant": holds(lambda d: d < 1e-5,
                                                                                          "embeddings are normalised"),
                "matched_lower": equals(True), "symmetric": holds(lambda d: d < 1e-5, "swapping the views"),
                "random": [reference(atol=1e-5)]},
}
