"""Hidden tests of notebook 02 (instructor only: never released, never mounted in the sandbox).

``probe_<id>(ns)`` runs in the sandbox after the student's solution and returns
plain outputs; ``EXPECT`` holds the host-side checks (see course_tools.grading.checks).
The forbidden references of each exercise are in its solution cell's ``forbid=[...]``
metadata (one home). The experiment ``shortcut_gradients`` is range-checked
(grading/experiments/02_architecture_zoo.json), not probed.
"""

import math

from course_tools.grading.checks import equals, holds, reference


def probe_grouped_conv_params(ns):
    f = ns["grouped_conv_params"]
    return {"cases": [f(3, 64, 128, 1, False), f(3, 32, 32, 32, True), f(1, 60, 90, 3, True), f(5, 8, 16, 4, False)],
            "defaults": f(3, 4, 4)}


def probe_se_block(ns):
    import torch

    cls = ns["MySE"]
    torch.manual_seed(31)
    m = cls(32, reduction=8)
    x = torch.randn(2, 32, 5, 6).abs() + 0.1
    with torch.no_grad():
        y = m(x)
        gate = y / x
        gate_constant_in_space = float((gate - gate[:, :, :1, :1]).abs().max())
        perm = torch.randperm(30)
        xp = x.flatten(2)[:, :, perm].view_as(x)
        permuted = float((m(xp).flatten(2) - y.flatten(2)[:, :, perm]).abs().max())
        for p in m.parameters():
            p.zero_()
        half = float((m(x) - 0.5 * x).abs().max())
    return {"parameters": sum(p.numel() for p in cls(32, reduction=8).parameters()),
            "parameters_r4": sum(p.numel() for p in cls(16, reduction=4).parameters()),
            "shape": list(y.shape), "gate_in_0_1": bool(((gate > 0) & (gate < 1)).all()),
            "gate_constant_in_space": gate_constant_in_space, "permutation_equivariant": permuted,
            "zero_weights_halve": half}


def probe_residual_from_plain(ns):
    import torch
    from torch import nn

    cls = ns["Residual"]
    torch.manual_seed(32)
    x = torch.randn(2, 8, 6, 6)
    body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)).eval()
    block = cls(body).eval()
    proj_body = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1)).eval()
    shortcut = nn.Conv2d(8, 12, 1, stride=2)
    proj = cls(proj_body, shortcut).eval()
    zero = nn.Conv2d(8, 8, 1)
    nn.init.zeros_(zero.weight)
    nn.init.zeros_(zero.bias)
    with torch.no_grad():
        identity_diff = float((block(x) - torch.relu(x + body(x))).abs().max())
        proj_diff = float((proj(x) - torch.relu(shortcut(x) + proj_body(x))).abs().max())
        zero_out = cls(zero)(torch.full((1, 8, 2, 2), -3.0))
        passthrough = float((cls(zero)(x.abs()) - x.abs()).abs().max())
    return {"identity_diff": identity_diff, "projection_diff": proj_diff,
            "parameters": sum(p.numel() for p in proj.parameters()),
            "expected_parameters": sum(p.numel() for p in proj_body.parameters()) + sum(
                p.numel() for p in shortcut.parameters()),
            "negative_input_zero": float(zero_out.abs().max()), "positive_passthrough": passthrough,
            "shape": list(proj(x).shape)}


def probe_compound_scaling(ns):
    f, g = ns["scaling_factors"], ns["solve_gamma"]
    zero = f(0)
    custom = f(2, alpha=1.5, beta=1.2, gamma=1.1, base_resolution=100)
    return {"zero": [float(v) for v in zero], "custom": [float(v) for v in custom],
            "resolution_type": type(custom[2]).__name__, "gamma": float(g(1.3, 1.05, 3.0)),
            "gamma_default": float(g(1.2, 1.1)), "phi_half": [float(v) for v in f(0.5)]}


def probe_receptive_field(ns):
    f = ns["receptive_field"]
    return {"cases": [f([(3, 1)] * 5), f([(7, 2), (3, 2)]), f([]), f([(2, 2)] * 3), f([(5, 1), (3, 3), (3, 1)])],
            "deep": f([(3, 1), (3, 2)] * 4)}


def probe_inverted_residual_macs(ns):
    f = ns["inverted_residual_macs"]
    return {"cases": [f(8, 8, 4, 6, 1, 3), f(8, 16, 5, 1, 2, 3), f(4, 4, 7, 2, 2, 5)],
            "defaults": f(16, 16, 8), "odd_stride": f(24, 40, 15, 6, 2, 3)}


_RES = round(100 * 1.1**2)
EXPECT = {
    "grouped_conv_params": {"cases": equals([73728, 320, 1890, 800]), "defaults": equals(144)},
    "se_block": {"parameters": equals(2 * 32 * 4 + 4 + 32), "parameters_r4": equals(2 * 16 * 4 + 4 + 16),
                 "shape": equals([2, 32, 5, 6]), "gate_in_0_1": equals(True),
                 "gate_constant_in_space": holds(lambda d: d < 1e-5, "one gate per channel, the same at every pixel"),
                 "permutation_equivariant": holds(lambda d: d < 1e-5, "pooling makes the gate blind to pixel order"),
                 "zero_weights_halve": holds(lambda d: d < 1e-6, "with all weights 0 the gate is sigmoid(0) = 0.5")},
    "residual_from_plain": {
        "identity_diff": holds(lambda d: d < 1e-5, "relu(x + body(x)) with an identity shortcut"),
        "projection_diff": holds(lambda d: d < 1e-5, "relu(shortcut(x) + body(x)) with a projection"),
        "parameters": [reference(), holds(lambda n: n == 8 * 12 * 9 + 12 + 8 * 12 + 12,
                                          "the body's and the shortcut's parameters, none of its own")],
        "expected_parameters": equals(8 * 12 * 9 + 12 + 8 * 12 + 12),
        "negative_input_zero": equals(0.0), "positive_passthrough": holds(lambda d: d < 1e-6, "relu(x + 0) = x for x >= 0"),
        "shape": equals([2, 12, 3, 3])},
    "compound_scaling": {
        "zero": equals([1.0, 1.0, 224.0, 1.0]),
        "custom": equals([1.5**2, 1.2**2, float(_RES), (1.5 * 1.2**2 * 1.1**2) ** 2]),
        "resolution_type": equals("int"),
        "gamma": equals(math.sqrt(3.0 / (1.3 * 1.05**2))),
        "gamma_default": equals(math.sqrt(2.0 / (1.2 * 1.1**2))),
    },
    "receptive_field": {"cases": equals([11, 11, 1, 8, 13]), "deep": equals(1 + 2 * (1 + 2 + 4 + 8) + 2 * (1 + 2 + 4 + 8))},
    "inverted_residual_macs": {"cases": equals([19200, 1800, 5280]),
                               "odd_stride": [reference(), holds(lambda n: n == 24 * 144 * 225 + 9 * 144 * 64 + 144 * 40 * 64,
                                                                 "the depthwise and projection run at ceil(15 / 2) = 8")]},
}
