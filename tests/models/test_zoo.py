"""The model zoo against torchvision, the papers' tables, and the CourseModel contract.

Full-size models are compared on the ``meta`` device (shapes only, no memory),
so counting 138M parameters or 17.6 G multiply-adds takes milliseconds; each
full-size model is also built for real once and run on one small image.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import get_model_weights

from course_utils.cost import count_macs, count_parameters
from course_utils.models import (
    FAMILIES,
    CourseModel,
    EfficientNet,
    MBConv,
    MobileNetV1,
    create_model,
    list_families,
    list_models,
    model_info,
    register_model,
)
from course_utils.models.registry import _REGISTRY

from .paper_tables import EFFICIENTNET_B0_TABLE, MOBILENET_V1_TABLE

FULL = list_models(size="full")
SMALL = list_models(size="small")
TORCHVISION_PAIRS = [(n, model_info(n).torchvision_name) for n in FULL if model_info(n).torchvision_name]

REQUIRED_FULL = {
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "vgg16",
    "densenet121",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
}
REQUIRED_SMALL = {
    "vgg_small",
    "inception_small",
    "resnet_small",
    "se_resnet_small",
    "resnext_small",
    "wrn_small",
    "densenet_small",
    "fractalnet_small",
    "mobilenet_v1_small",
    "mobilenet_v2_small",
    "shufflenet_small",
    "efficientnet_small",
    "convnext_small_course",
    "vit_small_course",
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small inputs run faster (and steadier on a busy 2-core box) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _meta(builder, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return builder(**kwargs)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


def test_registry_has_the_required_models():
    assert REQUIRED_FULL <= set(FULL)
    assert REQUIRED_SMALL <= set(SMALL)
    assert "mobilenet_v1" in FULL
    assert {n for n, _ in TORCHVISION_PAIRS} == REQUIRED_FULL


def test_model_info_is_complete_for_every_model():
    for name in list_models():
        info = model_info(name)
        assert info.name == name
        assert info.family in FAMILIES, name
        assert info.paper and info.key_idea and info.evidence and info.description, name
        assert 2012 <= info.year <= 2024
        assert info.size in {"full", "small"}
        # dlib_resnet_face returns 128-d face descriptors: no classifier by default
        assert info.num_classes == (0 if name == "dlib_resnet_face" else 1000 if info.size == "full" else 10)
    # at least six families have a small variant, for the mini-benchmark
    assert len({model_info(n).family for n in SMALL}) >= 6
    assert list_families() == list(FAMILIES)


def test_list_models_filters_and_keeps_historical_order():
    assert set(FULL) | set(SMALL) == set(list_models())
    assert set(FULL).isdisjoint(SMALL)
    assert list_models(family="resnet") == ["resnet18", "resnet50", "resnet_small", "dlib_resnet_face"]
    years = [model_info(n).year for n in SMALL]
    assert years == sorted(years)


def test_create_model_unknown_name_suggests_close_names():
    with pytest.raises(KeyError, match="resnet18"):
        create_model("resnet_18")


def test_register_model_adds_a_builder():
    from course_utils.models import BasicBlock, ResNet

    @register_model(family="resnet", description="test-only")
    def _tiny_test_resnet(*, num_classes: int = 10, in_chans: int = 3, **kwargs):
        return ResNet(BasicBlock, (1,), planes=(8,), stem="cifar", stem_chs=8,
                      num_classes=num_classes, in_chans=in_chans, **kwargs)

    try:
        model = create_model("_tiny_test_resnet", num_classes=3)
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)
        assert model_info("_tiny_test_resnet").paper == FAMILIES["resnet"].paper
        assert model.arch_name == "_tiny_test_resnet"
        with pytest.raises(ValueError, match="already registered"):
            register_model(family="resnet")(_tiny_test_resnet)
        assert _REGISTRY["_tiny_test_resnet"].builder is _tiny_test_resnet
    finally:
        _REGISTRY.pop("_tiny_test_resnet")


# --------------------------------------------------------------------------
# Full-size models against torchvision
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "tv_name"), TORCHVISION_PAIRS)
def test_param_count_equals_torchvision(name, tv_name):
    ours = count_parameters(_meta(create_model, name=name))
    theirs = count_parameters(_meta(torchvision.models.get_model, name=tv_name))
    assert ours == theirs
    assert ours == get_model_weights(tv_name).DEFAULT.meta["num_params"]
    # the classifier is a replaceable Linear of num_features inputs, in every family
    assert count_parameters(_meta(create_model, name=name, num_classes=10)) == ours - 990 * (
        _meta(create_model, name=name).num_features + 1
    )


@pytest.mark.parametrize(("name", "tv_name"), TORCHVISION_PAIRS)
def test_macs_within_2_percent_of_torchvision_metadata(name, tv_name):
    meta = get_model_weights(tv_name).DEFAULT.meta
    size = model_info(name).input_size
    macs = count_macs(_meta(create_model, name=name), (1, *size))
    reference = meta["_ops"] * 1e9  # torchvision's "GFLOPS" are giga multiply-adds
    assert abs(macs - reference) / reference < 0.02, (macs / 1e9, meta["_ops"])


@pytest.mark.parametrize("name", FULL)
def test_full_model_forward_contract(name):
    """Built for real once: output shape as torchvision, no NaN, head/feature split, new head."""
    torch.manual_seed(0)
    info = model_info(name)
    model = create_model(name, num_classes=1000).eval()  # dlib_resnet_face has no classifier by default
    side = 224 if info.family == "vit" else 150 if name == "dlib_resnet_face" else 64
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model.forward_head(feats)
        emb = model.forward_head(feats, pre_logits=True)
        full = model(x)
    expected = (1, 1000)
    if info.torchvision_name:
        tv = _meta(torchvision.models.get_model, name=info.torchvision_name).eval()
        expected = tuple(tv(x.to("meta")).shape)
    assert out.shape == expected == (1, 1000)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(full, out)
    assert emb.shape == (1, model.num_features)
    model.reset_classifier(7)
    with torch.no_grad():
        assert model.forward_head(feats).shape == (1, 7)


# --------------------------------------------------------------------------
# The papers' tables
# --------------------------------------------------------------------------


def _mobilenet_v1_trace(model: MobileNetV1, size: int = 224) -> list[tuple]:
    """(kind, stride, filter shape, (H, W, C)) of every layer, in the paper's notation."""
    rows: list[tuple] = []

    def conv_hook(mod: nn.Conv2d, args, out):
        _, c, h, w = args[0].shape
        k = mod.kernel_size[0]
        if mod.groups == mod.in_channels == mod.out_channels and mod.groups > 1:
            rows.append(("conv_dw", mod.stride[0], (k, k, c), (h, w, c)))
        else:
            rows.append(("conv", mod.stride[0], (k, k, c, mod.out_channels), (h, w, c)))

    def pool_hook(mod, args, out):
        _, c, h, w = args[0].shape
        rows.append(("avg_pool", 1, (h, w), (h, w, c)))

    def fc_hook(mod: nn.Linear, args, out):
        rows.append(("fc", 1, (mod.in_features, mod.out_features), (1, 1, args[0].shape[1])))

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
    model.global_pool.register_forward_hook(pool_hook)
    model.classifier.register_forward_hook(fc_hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size, device="meta"))
    return rows


def test_mobilenet_v1_body_matches_paper_table_layer_by_layer():
    model = _meta(create_model, name="mobilenet_v1")
    trace = _mobilenet_v1_trace(model)
    # 27 convolutions + average pool + FC; the paper's "28 layers" count
    # depthwise and pointwise convolutions separately and the FC, not the pool
    assert len(trace) == len(MOBILENET_V1_TABLE) == 27 + 2
    assert sum(r.kind != "avg_pool" for r in MOBILENET_V1_TABLE) == 28
    for i, (got, row) in enumerate(zip(trace, MOBILENET_V1_TABLE, strict=True)):
        assert got == tuple(row), f"layer {i}: {got} != {row}"
    # the paper's totals: 4.2 million parameters, 569 million multiply-adds
    assert round(count_parameters(model) / 1e6, 1) == 4.2
    assert abs(count_macs(model) - 569e6) / 569e6 < 0.02


def test_mobilenet_v1_width_multiplier_scales_cost_quadratically():
    base = count_macs(_meta(create_model, name="mobilenet_v1"))
    half = count_macs(_meta(create_model, name="mobilenet_v1", width_mult=0.5))
    # the paper's Table 6: 1.0 -> 569M, 0.5 -> 149M multiply-adds
    assert abs(half - 149e6) / 149e6 < 0.03
    assert 0.24 < half / base < 0.30


def _efficientnet_trace(model: EfficientNet, size: int = 224) -> list[tuple]:
    """(stage, operator, input resolution, output channels, layers), stage by stage, from hooks."""
    seen: dict[int, tuple[int, int]] = {}
    units = [model.stem, *model.stages, model.head_conv]

    def make_hook(i: int):
        def hook(mod, args, out):
            seen[i] = (args[0].shape[-1], out.shape[1])

        return hook

    for i, unit in enumerate(units):
        unit.register_forward_hook(make_hook(i))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size, device="meta"))
    rows = [(1, "Conv3x3", *seen[0], 1)]
    for i, stage in enumerate(model.stages, start=1):
        first: MBConv = stage[0]
        expand = first.mid_chs // first.in_chs
        k = first.conv_dw.conv.kernel_size[0]
        rows.append((i + 1, f"MBConv{expand}, k{k}x{k}", *seen[i], len(stage)))
    rows.append((len(units), "Conv1x1 & Pooling & FC", *seen[len(units) - 1], 1))
    return rows


def test_efficientnet_b0_matches_paper_table_stage_by_stage():
    model = _meta(create_model, name="efficientnet_b0")
    trace = _efficientnet_trace(model)
    assert len(trace) == len(EFFICIENTNET_B0_TABLE) == 9
    for got, row in zip(trace, EFFICIENTNET_B0_TABLE, strict=True):
        assert got == tuple(row), f"stage {row.stage}: {got} != {tuple(row)}"
    assert model.classifier.in_features == 1280
    # every MBConv has squeeze-excite and stochastic depth rising to 0.2 * 15/16
    blocks = [b for stage in model.stages for b in stage]
    assert len(blocks) == 16
    drops = [b.drop_path.drop_prob for b in blocks]
    assert drops == sorted(drops) and drops[0] == 0.0 and math.isclose(drops[-1], 0.2 * 15 / 16)


@pytest.mark.parametrize(
    ("tv_name", "width_mult", "depth_mult", "resolution"),
    [("efficientnet_b1", 1.0, 1.1, 240), ("efficientnet_b2", 1.1, 1.2, 288), ("efficientnet_b3", 1.2, 1.4, 300)],
)
def test_width_and_depth_multipliers_reproduce_torchvision_b1_to_b3(tv_name, width_mult, depth_mult, resolution):
    """B0's stage table + round_channels / round_repeats give the released B1-B3 exactly."""
    model = _meta(create_model, name="efficientnet_b0", width_mult=width_mult, depth_mult=depth_mult)
    meta = get_model_weights(tv_name).DEFAULT.meta
    assert count_parameters(model) == meta["num_params"]
    macs = count_macs(model, (1, 3, resolution, resolution))
    assert abs(macs - meta["_ops"] * 1e9) / (meta["_ops"] * 1e9) < 0.02


def test_compound_scaling_cost_grows_with_depth_width_and_resolution():
    from course_utils.models import compound_scaling

    b0 = _meta(create_model, name="efficientnet_b0")
    s = compound_scaling(1)
    scaled = _meta(create_model, name="efficientnet_b0", width_mult=s.width_mult, depth_mult=s.depth_mult)
    ratio = count_macs(scaled, (1, 3, s.resolution, s.resolution)) / count_macs(b0)
    # the rule predicts 1.92x; rounding stage depths up (1 -> 2 layers) adds more on a 16-block net
    assert s.flops_mult < ratio < 1.4 * s.flops_mult


# --------------------------------------------------------------------------
# Every small model: the CourseModel contract
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
def test_small_model_contract(name):
    torch.manual_seed(0)
    model = create_model(name)
    assert isinstance(model, CourseModel)
    assert model.num_classes == 10
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model.forward_head(feats)
        emb = model.forward_head(feats, pre_logits=True)
        full = model(x)
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    assert out.std() > 0  # not a constant function of the input
    torch.testing.assert_close(full, out)
    assert emb.shape == (3, model.num_features)
    model.reset_classifier(4)
    with torch.no_grad():
        assert model(x).shape == (3, 4)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (3, model.num_features)


@pytest.mark.parametrize("name", SMALL)
def test_small_model_trains_on_64px_grey_images(name):
    """One training step at 64 px with 1 input channel: finite loss, every parameter gets a gradient."""
    torch.manual_seed(0)
    kwargs = {"img_size": 64} if model_info(name).family == "vit" else {}
    model = create_model(name, num_classes=5, in_chans=1, **kwargs).train()
    x, y = torch.randn(4, 1, 64, 64), torch.tensor([0, 1, 2, 3])
    if model_info(name).family == "fractalnet":
        # no drop-path in this step, so that every column's convolutions get a gradient
        model.global_drop_ratio = 0.0
        for block in model.modules():
            if hasattr(block, "drop_prob"):
                block.drop_prob = 0.0
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_models_list_their_blocks_and_head(name):
    """``feature_blocks()`` and ``head_blocks()`` cover every parameter (the ViT's tokens aside), in order."""
    model = _meta(create_model, name=name)
    blocks, head = model.feature_blocks(), model.head_blocks()
    assert [n for n, _ in head] == ["pre_logits", "head_drop", "classifier"]
    names = [n for n, _ in blocks]
    assert len(names) >= 3 and len(set(names)) == len(names)
    assert all(model.get_submodule(n) is m for n, m in blocks + head)
    listed = {id(p) for _, m in blocks + head for p in m.parameters()}
    missing = [n for n, p in model.named_parameters() if id(p) not in listed]
    assert missing == (["cls_token", "pos_embed"] if model_info(name).family == "vit" else [])


def test_small_models_share_a_comparable_budget():
    counts = {n: count_parameters(create_model(n)) for n in SMALL}
    assert all(50_000 <= c <= 300_000 for c in counts.values()), counts
    assert max(counts.values()) / min(counts.values()) < 3.5, counts


def test_fractalnet_global_drop_path_uses_one_column():
    model = create_model("fractalnet_small").eval()
    x = torch.randn(2, 3, 32, 32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    calls = []
    for c in convs:
        c.register_forward_hook(lambda m, a, o: calls.append(m))
    with torch.no_grad():
        model(x)
        assert len(calls) == 3 * 7  # 3 blocks x (1 + 2 + 4) convolutions
        calls.clear()
        model.eval_column = 0
        shallow = model(x)
        assert len(calls) == 3  # one conv per block
        calls.clear()
        model.eval_column = 2
        model(x)
        assert len(calls) == 3 * 4
    assert shallow.shape == (2, 10)


def test_checkpoints_record_the_registered_name(tmp_path):
    from course_utils.train import load_checkpoint, save_checkpoint

    model = create_model("resnet_small", num_classes=3)
    path = save_checkpoint(tmp_path / "m.pt", model)
    assert load_checkpoint(path)["arch"] == "resnet_small"
