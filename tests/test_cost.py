"""course_utils.cost: counting helpers and the depthwise-separable formulas on real layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.cost import (
    Latency,
    conv_macs,
    conv_params,
    count_macs,
    count_parameters,
    depthwise_separable_macs,
    depthwise_separable_ratio,
    format_count,
    layer_table,
    macs_by_module,
    measure_latency,
    torchvision_reference,
)


def _flop_counter_macs(module: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops() // 2


def _small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


def test_count_parameters_all_and_trainable():
    model = _small_cnn()
    expected = (3 * 9 * 8 + 8) + 16 + (8 * 9 * 16 + 16) + (16 * 5 + 5)
    assert count_parameters(model) == expected
    for p in model[0].parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == expected - (3 * 9 * 8 + 8)
    assert count_parameters(model) == expected


@pytest.mark.parametrize(("Dk", "M", "N", "Df"), [(3, 16, 32, 14), (5, 8, 8, 7), (1, 64, 128, 28)])
def test_conv_macs_formula_matches_flop_counter(Dk, M, N, Df):
    conv = nn.Conv2d(M, N, Dk, padding=Dk // 2)
    x = torch.randn(1, M, Df, Df)
    assert _flop_counter_macs(conv, x) == conv_macs(Dk, M, N, Df) == Dk * Dk * M * N * Df * Df
    assert count_macs(conv, (1, M, Df, Df)) == conv_macs(Dk, M, N, Df)
    assert count_parameters(conv) == conv_params(Dk, M, N, bias=True)


@pytest.mark.parametrize(("Dk", "M", "N", "Df"), [(3, 32, 64, 112), (3, 512, 512, 14), (5, 24, 40, 28)])
def test_depthwise_separable_formula_matches_real_layers(Dk, M, N, Df):
    depthwise = nn.Conv2d(M, M, Dk, padding=Dk // 2, groups=M, bias=False)
    pointwise = nn.Conv2d(M, N, 1, bias=False)
    x = torch.zeros(1, M, Df, Df, device="meta")
    measured = _flop_counter_macs(nn.Sequential(depthwise, pointwise).to("meta"), x)
    assert measured == depthwise_separable_macs(Dk, M, N, Df)
    assert _flop_counter_macs(depthwise.to("meta"), x) == Dk * Dk * M * Df * Df
    ratio = depthwise_separable_macs(Dk, M, N, Df) / conv_macs(Dk, M, N, Df)
    assert math.isclose(ratio, depthwise_separable_ratio(Dk, N))
    assert math.isclose(ratio, 1 / N + 1 / Dk**2)
    assert conv_params(Dk, M, M, groups=M) == depthwise.weight.numel()


def test_depthwise_separable_saves_8_to_9_times_for_3x3():
    assert 8 < 1 / depthwise_separable_ratio(3, 512) < 9
    assert depthwise_separable_ratio(3, 1) == 1 + 1 / 9


def test_conv_params_grouped():
    conv = nn.Conv2d(64, 128, 3, groups=8, bias=False)
    assert conv_params(3, 64, 128, groups=8) == conv.weight.numel() == 3 * 3 * 8 * 128
    with pytest.raises(ValueError):
        conv_params(3, 10, 12, groups=4)


def test_count_macs_counts_matmuls_not_biases_and_scales_with_batch():
    fc = nn.Linear(100, 10)
    assert count_macs(fc, (1, 100)) == 1000
    assert count_macs(fc, (7, 100)) == 7000
    model = _small_cnn()
    expected = conv_macs(3, 3, 8, 32) + conv_macs(3, 8, 16, 16) + 16 * 5
    assert count_macs(model, (1, 3, 32, 32)) == expected


def test_count_macs_restores_mode_and_works_on_meta():
    model = _small_cnn().train()
    cpu = count_macs(model, (1, 3, 32, 32))
    assert model.training
    with torch.device("meta"):
        meta_model = _small_cnn()
    assert count_macs(meta_model, (1, 3, 32, 32)) == cpu


def test_macs_by_module_adds_up_to_the_total():
    model = _small_cnn()
    parts = macs_by_module(model, (1, 3, 32, 32))
    assert set(parts) == {"0", "3", "7"}
    assert sum(parts.values()) == count_macs(model, (1, 3, 32, 32))
    assert parts["3"] == conv_macs(3, 8, 16, 16)


def test_layer_table_rows():
    model = _small_cnn()
    rows = layer_table(model, (2, 3, 32, 32))
    assert [r.name for r in rows] == ["0", "1", "3", "7"]
    assert [r.kind for r in rows] == ["Conv2d", "BatchNorm2d", "Conv2d", "Linear"]
    assert rows[2].output_shape == (2, 16, 16, 16)
    assert sum(r.params for r in rows) == count_parameters(model)
    assert sum(r.macs for r in rows) == count_macs(model, (2, 3, 32, 32))
    assert rows[1].macs == 0  # normalisation is not counted


def test_measure_latency_reports_images_per_second():
    model = _small_cnn().train()
    result = measure_latency(model, (4, 3, 16, 16), warmup=1, repeats=3)
    assert isinstance(result, Latency)
    assert len(result.times_ms) == 3 and result.batch_size == 4 and result.device == "cpu"
    assert result.ms_per_batch > 0
    assert math.isclose(result.images_per_second, 4 / (result.ms_per_batch / 1000))
    assert model.training  # mode restored
    with pytest.raises(ValueError):
        measure_latency(model, (1, 3, 16, 16), repeats=0)
    with torch.device("meta"):
        meta_model = _small_cnn()
    with pytest.raises(ValueError, match="meta"):
        measure_latency(meta_model, (1, 3, 16, 16))


def test_format_count():
    assert format_count(3_504_872) == "3.50M"
    assert format_count(1.8e9) == "1.80G"
    assert format_count(950) == "950"
    assert format_count(25_600, digits=1) == "25.6k"


def test_torchvision_reference_reads_metadata_offline():
    rows = torchvision_reference()
    by_model = {r.model: r for r in rows}
    assert len(rows) == len(by_model) >= 60
    r50 = by_model["resnet50"]
    assert (r50.num_params, r50.gmacs, r50.acc1, r50.resolution) == (25_557_032, 4.089, 80.858, 224)
    assert r50.weights == "IMAGENET1K_V2" and r50.is_default
    everything = torchvision_reference(all_weights=True)
    assert len(everything) > len(rows)
    assert {r.weights for r in everything if r.model == "resnet50"} == {"IMAGENET1K_V1", "IMAGENET1K_V2"}
