"""Each block does what its paper says: shapes, parameter counts, and the one idea it adds."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torchvision.models.convnext as tv_convnext
import torchvision.models.densenet as tv_densenet
import torchvision.models.efficientnet as tv_efficientnet
import torchvision.models.mobilenetv2 as tv_mobilenetv2
import torchvision.models.resnet as tv_resnet
import torchvision.models.shufflenetv2 as tv_shufflenetv2
import torchvision.models.vision_transformer as tv_vit
from torch import nn

from course_utils.cost import conv_params, count_parameters
from course_utils.models import (
    Attention,
    BasicBlock,
    Bottleneck,
    ConvNeXtBlock,
    ConvNormAct,
    DenseBlock,
    DepthwiseSeparableConv,
    DropPath,
    EncoderBlock,
    FractalBlock,
    InceptionModule,
    InvertedResidual,
    LayerNorm2d,
    MBConv,
    PatchEmbed,
    ResNeXtBottleneck,
    ShuffleUnit,
    SqueezeExcite,
    Transition,
    VGGBlock,
    WideBasicBlock,
    channel_shuffle,
    compound_scaling,
    drop_path,
    fractal_join,
    make_divisible,
    round_repeats,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _eval(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module.eval()(x)


# --------------------------------------------------------------------------
# Common pieces
# --------------------------------------------------------------------------


def test_conv_norm_act_layers_and_bias_rule():
    block = ConvNormAct(8, 16, 3, stride=2)
    assert isinstance(block.norm, nn.BatchNorm2d) and isinstance(block.act, nn.ReLU)
    assert block.conv.bias is None  # the norm's shift replaces the bias
    assert _eval(block, torch.randn(2, 8, 15, 15)).shape == (2, 16, 8, 8)
    plain = ConvNormAct(8, 16, 1, norm_layer=None, act_layer=nn.SiLU)
    assert plain.conv.bias is not None
    assert isinstance(plain.norm, nn.Identity) and isinstance(plain.act, nn.SiLU)


def test_drop_path_drops_whole_samples_and_keeps_the_mean():
    x = torch.ones(4000, 3, 2, 2)
    out = drop_path(x, 0.25, training=True)
    per_sample = out.flatten(1)
    # each sample is either all zeros or all 1 / 0.75
    assert ((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / 0.75)).all(1)).all()
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.03
    assert abs(out.mean().item() - 1.0) < 0.05
    assert torch.equal(DropPath(0.5).eval()(x), x)
    assert torch.equal(drop_path(x, 1.0, training=True), torch.zeros_like(x))


def test_layernorm2d_normalises_each_pixel_over_channels():
    x = torch.randn(2, 6, 5, 5) * 3 + 1
    ours = LayerNorm2d(6)
    theirs = tv_convnext.LayerNorm2d(6, eps=1e-6)
    torch.testing.assert_close(ours(x), theirs(x))
    out = ours(x)
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 5, 5), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------
# VGG and Inception
# --------------------------------------------------------------------------


def test_vgg_block_stacks_3x3_convs_then_halves_resolution():
    block = VGGBlock(3, 64, num_convs=2)
    assert _eval(block, torch.randn(1, 3, 32, 32)).shape == (1, 64, 16, 16)
    assert count_parameters(block) == conv_params(3, 3, 64, bias=True) + conv_params(3, 64, 64, bias=True)
    # two 3x3 layers: fewer weights than one 5x5 with the same receptive field
    assert 2 * conv_params(3, 64, 64) < conv_params(5, 64, 64)


def test_inception_module_concatenates_four_branches():
    block = InceptionModule(192, ch1x1=64, ch3x3red=96, ch3x3=128, ch5x5red=16, ch5x5=32, pool_proj=32)
    out = _eval(block, torch.randn(1, 192, 28, 28))
    assert out.shape == (1, 256, 28, 28) and block.out_chs == 256  # GoogLeNet's inception (3a)
    kernels = sorted(m.kernel_size[0] for m in block.modules() if isinstance(m, nn.Conv2d))
    assert kernels == [1, 1, 1, 1, 3, 5]
    weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
    expected = (
        conv_params(1, 192, 64)
        + conv_params(1, 192, 96) + conv_params(3, 96, 128)
        + conv_params(1, 192, 16) + conv_params(5, 16, 32)
        + conv_params(1, 192, 32)
    )
    assert weights == expected
    # the 1x1 reduction is the point: without it the 5x5 branch alone costs more
    assert conv_params(5, 192, 32) > conv_params(1, 192, 16) + conv_params(5, 16, 32)


# --------------------------------------------------------------------------
# Residual families
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("stride", "in_chs", "planes"), [(1, 64, 64), (2, 64, 128)])
def test_basic_block_matches_torchvision(stride, in_chs, planes):
    ours = BasicBlock(in_chs, planes, stride=stride)
    downsample = None
    if stride != 1 or in_chs != planes:
        downsample = nn.Sequential(nn.Conv2d(in_chs, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
    theirs = tv_resnet.BasicBlock(in_chs, planes, stride, downsample)
    assert count_parameters(ours) == count_parameters(theirs)
    assert _eval(ours, torch.randn(1, in_chs, 16, 16)).shape == (1, planes, 16 // stride, 16 // stride)


def test_residual_block_adds_its_input():
    """With the last BN's scale and shift at zero, F(x) = 0 and the block is relu(x)."""
    block = BasicBlock(16, 16)
    nn.init.zeros_(block.conv2.norm.weight)
    nn.init.zeros_(block.conv2.norm.bias)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(_eval(block, x), torch.relu(x))
    assert isinstance(block.shortcut, nn.Identity)
    assert not isinstance(BasicBlock(16, 32, stride=2).shortcut, nn.Identity)


def test_bottleneck_matches_torchvision_and_expands_4x():
    ours = Bottleneck(256, 128, stride=2)
    downsample = nn.Sequential(nn.Conv2d(256, 512, 1, stride=2, bias=False), nn.BatchNorm2d(512))
    theirs = tv_resnet.Bottleneck(256, 128, 2, downsample)
    assert count_parameters(ours) == count_parameters(theirs)
    assert ours.width == 128 and ours.out_chs == 512
    assert _eval(ours, torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)


def test_resnext_bottleneck_is_a_grouped_convolution():
    block = ResNeXtBottleneck(256, 64, cardinality=32, base_width=4)
    conv = block.conv2.conv
    assert conv.groups == 32 and block.width == 128  # 32 paths x 4 channels
    assert conv.weight.numel() == conv_params(3, 128, 128, groups=32) == 128 * 128 * 9 // 32
    theirs = tv_resnet.Bottleneck(256, 64, groups=32, base_width=4)
    assert count_parameters(block) == count_parameters(theirs)
    assert _eval(block, torch.randn(1, 256, 8, 8)).shape == (1, 256, 8, 8)


def test_wide_basic_block_is_pre_activation_with_dropout():
    block = WideBasicBlock(16, 32, stride=2, dropout=0.3)
    assert block.dropout.p == 0.3
    assert _eval(block, torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    # first op is BN on the input (pre-activation), not a convolution
    assert list(block.children())[0] is block.norm1
    same = WideBasicBlock(8, 8)
    nn.init.zeros_(same.conv2.weight)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(_eval(same, x), x)  # identity shortcut, no activation after the sum


def test_attention_layer_turns_basic_block_into_se_block():
    block = BasicBlock(32, 32, attn_layer=SqueezeExcite)
    assert isinstance(block.attn, SqueezeExcite) and block.attn.rd_channels == 2
    assert count_parameters(block) == count_parameters(BasicBlock(32, 32)) + (32 * 2 + 2) + (2 * 32 + 32)


# --------------------------------------------------------------------------
# DenseNet
# --------------------------------------------------------------------------


def test_dense_block_concatenates_input_and_new_features():
    block = DenseBlock(64, num_layers=6, growth_rate=32)
    theirs = tv_densenet._DenseBlock(num_layers=6, num_input_features=64, bn_size=4, growth_rate=32, drop_rate=0)
    assert count_parameters(block) == count_parameters(theirs)
    x = torch.randn(2, 64, 8, 8)
    out = _eval(block, x)
    assert out.shape == (2, 64 + 6 * 32, 8, 8) and block.out_chs == 256
    torch.testing.assert_close(out[:, :64], x)  # the input is passed on untouched
    assert [layer.in_chs for layer in block.layers] == [64 + i * 32 for i in range(6)]


def test_transition_compresses_and_halves():
    t = Transition(256, 128)
    assert count_parameters(t) == count_parameters(tv_densenet._Transition(256, 128))
    assert _eval(t, torch.randn(1, 256, 8, 8)).shape == (1, 128, 4, 4)


# --------------------------------------------------------------------------
# Channel attention and efficient blocks
# --------------------------------------------------------------------------


def test_squeeze_excite_rescales_channels_by_a_gate():
    se = SqueezeExcite(64, rd_ratio=1 / 16)
    assert se.rd_channels == 4
    assert count_parameters(se) == 64 * 4 + 4 + 4 * 64 + 64
    x = torch.rand(2, 64, 5, 5) + 0.1
    out = _eval(se, x)
    gate = out / x
    # one factor in (0, 1) per sample and channel, constant over space
    assert (gate > 0).all() and (gate < 1).all()
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))
    nn.init.constant_(se.fc2.bias, -50.0)
    nn.init.zeros_(se.fc2.weight)
    assert _eval(se, x).abs().max() < 1e-6  # a closed gate silences every channel


def test_depthwise_separable_unit_is_depthwise_then_pointwise():
    unit = DepthwiseSeparableConv(32, 64, stride=2)
    assert unit.conv_dw.conv.groups == 32 and unit.conv_dw.conv.kernel_size == (3, 3)
    assert unit.conv_pw.conv.kernel_size == (1, 1)
    assert _eval(unit, torch.randn(1, 32, 16, 16)).shape == (1, 64, 8, 8)
    convs = unit.conv_dw.conv.weight.numel() + unit.conv_pw.conv.weight.numel()
    assert convs == 3 * 3 * 32 + 32 * 64


@pytest.mark.parametrize(("in_chs", "out_chs", "stride", "t"), [(32, 16, 1, 1), (24, 24, 1, 6), (24, 32, 2, 6)])
def test_inverted_residual_matches_torchvision(in_chs, out_chs, stride, t):
    ours = InvertedResidual(in_chs, out_chs, stride=stride, expand_ratio=t)
    theirs = tv_mobilenetv2.InvertedResidual(in_chs, out_chs, stride, t)
    assert count_parameters(ours) == count_parameters(theirs)
    assert ours.use_residual == theirs.use_res_connect == (stride == 1 and in_chs == out_chs)
    assert isinstance(ours.conv_pwl.act, nn.Identity)  # linear bottleneck
    assert ours.mid_chs == in_chs * t


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    y = torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(channel_shuffle(channel_shuffle(y, 3), 4), y)  # shuffling back


@pytest.mark.parametrize(("in_chs", "out_chs", "stride"), [(24, 116, 2), (116, 116, 1)])
def test_shuffle_unit_matches_torchvision(in_chs, out_chs, stride):
    ours = ShuffleUnit(in_chs, out_chs, stride=stride)
    theirs = tv_shufflenetv2.InvertedResidual(in_chs, out_chs, stride)
    assert count_parameters(ours) == count_parameters(theirs)
    assert _eval(ours, torch.randn(1, in_chs, 8, 8)).shape == (1, out_chs, 8 // stride, 8 // stride)


def test_shuffle_unit_stride_1_passes_half_the_channels_through():
    unit = ShuffleUnit(8, 8)
    x = torch.randn(1, 8, 4, 4)
    out = _eval(unit, x)
    # after the shuffle the untouched half sits at the even channel positions
    torch.testing.assert_close(out[:, 0::2], x[:, :4])


@pytest.mark.parametrize(
    ("t", "k", "stride", "in_chs", "out_chs"), [(1, 3, 1, 32, 16), (6, 5, 2, 24, 40), (6, 3, 1, 80, 80)]
)
def test_mbconv_matches_torchvision(t, k, stride, in_chs, out_chs):
    ours = MBConv(in_chs, out_chs, stride=stride, expand_ratio=t, kernel_size=k)
    cnf = tv_efficientnet.MBConvConfig(t, k, stride, in_chs, out_chs, 1, width_mult=1.0, depth_mult=1.0)
    theirs = tv_efficientnet.MBConv(cnf, 0.0, partial(nn.BatchNorm2d, eps=1e-3))
    assert count_parameters(ours) == count_parameters(theirs)
    assert isinstance(ours.se, SqueezeExcite) and ours.se.rd_channels == max(1, in_chs // 4)
    assert _eval(ours, torch.randn(1, in_chs, 8, 8)).shape == (1, out_chs, 8 // stride, 8 // stride)


def test_mbconv_stochastic_depth_drops_the_branch_per_sample():
    block = MBConv(16, 16, drop_path=0.5).train()
    x = torch.randn(64, 16, 4, 4)
    with torch.no_grad():
        out = block(x)
    kept_input_only = (out - x).flatten(1).abs().amax(1) == 0
    assert 10 < kept_input_only.sum() < 54  # about half the samples skip the branch


def test_compound_scaling_rule():
    s0 = compound_scaling(0)
    assert (s0.depth_mult, s0.width_mult, s0.resolution, s0.flops_mult) == (1.0, 1.0, 224, 1.0)
    s = compound_scaling(2)
    assert math.isclose(s.depth_mult, 1.44) and math.isclose(s.width_mult, 1.21)
    assert s.resolution == round(224 * 1.15**2)
    constraint = 1.2 * 1.1**2 * 1.15**2
    assert 1.9 < constraint < 2.0
    assert math.isclose(s.flops_mult, constraint**2)
    assert make_divisible(32 * 1.1) == 32 and make_divisible(40 * 1.1) == 48 and make_divisible(24 * 1.1) == 24
    assert round_repeats(3, 1.2) == 4 and round_repeats(1, 1.1) == 2


# --------------------------------------------------------------------------
# ConvNeXt, FractalNet
# --------------------------------------------------------------------------


def test_convnext_block_matches_torchvision_and_starts_near_identity():
    ours = ConvNeXtBlock(96)
    theirs = tv_convnext.CNBlock(96, 1e-6, 0.0)
    assert count_parameters(ours) == count_parameters(theirs)
    assert ours.conv_dw.kernel_size == (7, 7) and ours.conv_dw.groups == 96
    assert ours.fc1.out_features == 4 * 96  # inverted MLP
    x = torch.randn(2, 96, 7, 7)
    out = _eval(ours, x)
    assert out.shape == x.shape
    assert (out - x).abs().max() < 1e-3  # layer scale 1e-6: the residual starts tiny
    assert (out - x).abs().max() > 0


def test_fractal_block_follows_the_expansion_rule():
    block = FractalBlock(8, 16, num_columns=3)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2**3 - 1
    x = torch.randn(2, 8, 6, 6)
    block.eval()
    with torch.no_grad():
        columns = block.columns(x)
        assert len(columns) == 3
        torch.testing.assert_close(block(x), torch.stack(columns).mean(0))
        # column c alone runs 2**c convolutions
        for c in range(3):
            calls: list[nn.Module] = []
            handles = [m.register_forward_hook(lambda m, a, o: calls.append(m)) for m in convs]
            out = block(x, column=c)
            for h in handles:
                h.remove()
            assert len(calls) == 2**c and out.shape == (2, 16, 6, 6)
        torch.testing.assert_close(block(x, column=0), block.shallow(x))


def test_fractal_join_keeps_at_least_one_input():
    a, b = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    torch.testing.assert_close(fractal_join([a, b]), torch.full_like(a, 0.5))
    for _ in range(20):
        out = fractal_join([a, b], drop_prob=1.0, training=True)
        assert torch.equal(out, a) or torch.equal(out, b)
    torch.testing.assert_close(fractal_join([a, b], drop_prob=1.0, training=False), torch.full_like(a, 0.5))


# --------------------------------------------------------------------------
# Vision Transformer
# --------------------------------------------------------------------------


def test_patch_embedding_is_a_linear_map_of_flattened_patches():
    embed = PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=20)
    x = torch.randn(2, 3, 32, 32)
    tokens = _eval(embed, x)
    assert tokens.shape == (2, 16, 20)
    patches = nn.functional.unfold(x, kernel_size=8, stride=8).transpose(1, 2)  # (N, L, 3*8*8)
    manual = patches @ embed.proj.weight.flatten(1).T + embed.proj.bias
    torch.testing.assert_close(tokens, manual, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="32x32"):
        embed(torch.randn(1, 3, 64, 64))


def test_written_out_attention_equals_torch_multihead_attention():
    ours = Attention(32, num_heads=4).eval()
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.qkv.weight)
        mha.in_proj_bias.copy_(ours.qkv.bias)
        mha.out_proj.weight.copy_(ours.proj.weight)
        mha.out_proj.bias.copy_(ours.proj.bias)
        x = torch.randn(2, 10, 32)
        torch.testing.assert_close(ours(x), mha(x, x, x, need_weights=False)[0], rtol=1e-4, atol=1e-5)
    assert count_parameters(ours) == count_parameters(mha)


def test_encoder_block_matches_torchvision():
    ours = EncoderBlock(64, num_heads=4, mlp_ratio=4.0)
    theirs = tv_vit.EncoderBlock(4, 64, 256, 0.0, 0.0, partial(nn.LayerNorm, eps=1e-6))
    assert count_parameters(ours) == count_parameters(theirs)
    x = torch.randn(2, 5, 64)
    assert _eval(ours, x).shape == (2, 5, 64)


def test_blocks_take_act_and_norm_layers():
    block = Bottleneck(32, 8, act_layer=nn.SiLU, norm_layer=partial(nn.GroupNorm, 4))
    kinds = {type(m) for m in block.modules()}
    assert nn.SiLU in kinds and nn.GroupNorm in kinds
    assert nn.ReLU not in kinds and nn.BatchNorm2d not in kinds
    assert _eval(block, torch.randn(1, 32, 4, 4)).shape == (1, 32, 4, 4)
    enc = EncoderBlock(16, num_heads=2, act_layer=nn.ReLU)
    assert isinstance(enc.mlp.act, nn.ReLU)
