"""Hidden tests of notebook 01 (instructor only: never released, never mounted in the sandbox).

``probe_<id>(ns)`` runs in the sandbox after the student's solution and returns
plain outputs; ``EXPECT`` holds the host-side checks (see course_tools.grading.checks).
The forbidden references live in the solution cells' ``forbid=[...]`` metadata.
The experiment ``sigmoid_gradient_shrink`` is range-checked (grading/experiments/), not probed.
"""

from course_tools.grading.checks import equals, holds, reference


def probe_conv_im2col(ns):
    import torch

    f = ns["conv2d_im2col"]
    g = torch.Generator().manual_seed(21)
    x = torch.randn(1, 2, 7, 10, generator=g)
    out = {}
    for k, s, p in [(2, 1, 0), (3, 3, 1), (5, 2, 2), (1, 2, 0)]:
        w, b = torch.randn(4, 2, k, k, generator=g), torch.randn(4, generator=g)
        out[f"k{k}s{s}p{p}"] = f(x, w, b, stride=s, padding=p)
    out["no_bias"] = f(x, torch.randn(3, 2, 3, 3, generator=g))
    out["ones"] = f(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2))
    out["ones_padded"] = f(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3), padding=1)
    out["batch_shape"] = list(f(torch.randn(5, 3, 8, 8, generator=g), torch.randn(6, 3, 3, 3, generator=g),
                                stride=2, padding=1).shape)
    return out


def probe_output_size(ns):
    f = ns["output_size"]
    cases = [(5, 3, 1, 0, 1), (7, 3, 2, 1, 1), (10, 3, 1, 0, 2), (1, 1, 1, 0, 1), (33, 4, 3, 2, 1), (50, 5, 2, 4, 3)]
    return {"cases": [f(*c) for c in cases], "defaults": f(12, 3)}


def probe_conv_cost(ns):
    f = ns["conv_cost"]
    return {"plain": list(f(3, 8, 3, 10, 10)), "depthwise": list(f(16, 16, 3, 5, 5, groups=16, bias=False)),
            "grouped": list(f(12, 24, 5, 7, 9, groups=3, bias=True)), "pointwise": list(f(64, 32, 1, 14, 14, bias=False))}


def probe_batch_norm(ns):
    import torch

    f = ns["batch_norm_train"]
    g = torch.Generator().manual_seed(22)
    x = torch.randn(6, 4, 5, 3, generator=g) * torch.tensor([1.0, 3.0, 0.2, 7.0]).view(1, 4, 1, 1) - 2
    gamma, beta = torch.rand(4, generator=g) + 0.5, torch.randn(4, generator=g)
    y = f(x, gamma, beta)
    out = {"random": y}
    out["channel_means"] = y.mean(dim=(0, 2, 3))
    out["channel_stds"] = y.std(dim=(0, 2, 3), unbiased=False)
    out["beta"], out["gamma"] = beta, gamma
    out["constant"] = f(torch.full((2, 1, 2, 2), 5.0), torch.tensor([2.0]), torch.tensor([0.5]))
    out["eps"] = f(torch.tensor([[[[0.0]], [[1.0]]], [[[2.0]], [[3.0]]]]).transpose(0, 1).contiguous(),
                   torch.ones(2), torch.zeros(2), eps=1.0)
    return out


def probe_maxout(ns):
    import torch

    f = ns["maxout_forward"]
    g = torch.Generator().manual_seed(23)
    x = torch.randn(6, 5, generator=g)
    w, b = torch.randn(4 * 3, 5, generator=g), torch.randn(4 * 3, generator=g)
    eye = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    return {"random": f(x, w, b, 3), "abs": f(torch.tensor([[1.0, -1.0], [-2.0, 0.5]]), eye, torch.zeros(4), 2),
            "one_piece": f(x, w[:4], b[:4], 1)}


def probe_head_as_conv(ns):
    import torch
    from torch import nn

    f = ns["head_as_conv"]
    torch.manual_seed(24)
    lin = nn.Linear(3 * 2 * 5, 7)
    fm = torch.randn(3, 3, 2, 5)
    conv = f(lin, 3, 2, 5)
    with torch.no_grad():
        diff = float((conv(fm).flatten(1) - lin(fm.flatten(1))).abs().max())
        slide = list(conv(torch.randn(2, 3, 4, 9)).shape)
    return {"is_conv2d": isinstance(conv, nn.Conv2d), "max_difference": diff, "slide_shape": slide,
            "parameters": sum(p.numel() for p in conv.parameters()),
            "scores": conv(fm).detach().flatten(1)}


EXPECT = {
    "conv_im2col": {
        "ones": equals([[[[4.0, 4.0], [4.0, 4.0]]]]),
        "ones_padded": equals([[[[4.0, 4.0], [4.0, 4.0]]]]),
        "batch_shape": equals([5, 6, 4, 4]),
        "k3s3p1": [reference(atol=1e-5), holds(lambda v: len(v[0][0]) == 3 and len(v[0][0][0]) == 4, "output size (7+2-3)//3+1 x (10+2-3)//3+1")],
    },
    "output_size": {"cases": equals([3, 4, 6, 1, 12, 23]), "defaults": equals(10)},
    "conv_cost": {"plain": equals([224, 21600]), "depthwise": equals([144, 3600]),
                  "grouped": equals([2424, 151200]), "pointwise": equals([2048, 401408])},
    "batch_norm": {
        "constant": equals([[[[0.5, 0.5], [0.5, 0.5]]], [[[0.5, 0.5], [0.5, 0.5]]]]),
        "channel_means": [reference(atol=1e-4), holds(lambda m: len(m) == 4, "one mean per channel")],
        "channel_stds": [reference(atol=1e-4), holds(lambda s: all(v > 0.3 for v in s), "normalised channels, scaled by gamma")],
        # channel values {0, 1} and {2, 3}: (x - mean) / sqrt(0.25 + eps) with eps = 1
        "eps": equals([[[[-0.5 / 1.25 ** 0.5]], [[-0.5 / 1.25 ** 0.5]]], [[[0.5 / 1.25 ** 0.5]], [[0.5 / 1.25 ** 0.5]]]],
                      atol=1e-5),
    },
    "maxout": {"abs": equals([[1.0, 1.0], [0.5, 2.0]])},  # consecutive units are the pieces of one output
    "head_as_conv": {"is_conv2d": equals(True), "max_difference": holds(lambda d: d < 1e-5, "same scores as the Linear"),
                     "slide_shape": equals([2, 7, 3, 5]), "parameters": equals(7 * 30 + 7)},
}
