"""The from-scratch layers agree with PyTorch (and with hand-worked examples)."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import scratch as L
from course_utils.augment import BatchAugment, random_crop_flip

# stride, padding, dilation, groups
CONV_GRID = list(itertools.product([1, 2, 3], [0, 2], [1, 2], [1, 2, 4]))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("impl", [L.conv2d_loop, L.conv2d_unfold], ids=["loop", "unfold"])
def test_conv2d_matches_torch_over_grid(impl):
    x = torch.randn(2, 4, 8, 7, dtype=torch.float64)
    for stride, padding, dilation, groups in CONV_GRID:
        w = torch.randn(8, 4 // groups, 3, 2, dtype=torch.float64)
        b = torch.randn(8, dtype=torch.float64)
        expected = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        got = impl(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        assert got.shape == expected.shape, (stride, padding, dilation, groups)
        torch.testing.assert_close(got, expected, msg=f"s={stride} p={padding} d={dilation} g={groups}")


@pytest.mark.parametrize("impl", [L.conv2d_loop, L.conv2d_unfold], ids=["loop", "unfold"])
def test_conv2d_pairs_depthwise_and_gradients(impl):
    x = torch.randn(1, 6, 10, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=6)
    got = impl(x, w, None, **kw)
    expected = F.conv2d(x, w, None, **kw)
    torch.testing.assert_close(got, expected)
    gx, gw = torch.autograd.grad(got.square().sum(), (x, w))
    ex, ew = torch.autograd.grad(expected.square().sum(), (x, w))
    torch.testing.assert_close(gx, ex)
    torch.testing.assert_close(gw, ew)


def test_conv2d_rejects_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        L.conv2d_unfold(torch.randn(1, 3, 5, 5), torch.randn(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match="input channels per group"):
        L.conv2d_loop(torch.randn(1, 4, 5, 5), torch.randn(4, 4, 3, 3), groups=2)


def test_conv_output_size_matches_real_layers():
    for n, k, s, p, d in itertools.product([7, 8, 32], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]):
        if n + 2 * p < d * (k - 1) + 1:
            with pytest.raises(ValueError):
                L.conv_output_size(n, k, stride=s, padding=p, dilation=d)
            continue
        out = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, n, n))
        assert L.conv_output_size(n, k, stride=s, padding=p, dilation=d) == out.shape[-1], (n, k, s, p, d)
    assert L.conv_output_size(224, 7, stride=2, padding=3) == 112  # ResNet stem
    assert L.conv_output_size(112, 3, stride=2, padding=1) == 56  # its max pool


def test_receptive_field_hand_worked_example():
    # conv3 -> conv3 -> maxpool2/2 -> conv3 (dilation 2) on a 32-pixel input:
    # rf: 1+2=3, 3+2=5, 5+1=6, 6+(5-1)*2=14; jump: 1, 1, 2, 2; size: 30, 28, 14, 10
    rows = L.receptive_field([(3, 1), (3, 1), (2, 2), (3, 1, 2)], input_size=32)
    assert [r.rf for r in rows] == [3, 5, 6, 14]
    assert [r.jump for r in rows] == [1, 1, 2, 2]
    assert [r.size for r in rows] == [30, 28, 14, 10]
    assert [r.start for r in rows] == [1.5, 2.5, 3.0, 7.0]


def _vgg_like():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 8, 3, padding=2, dilation=2), nn.ReLU()),
        nn.Conv2d(8, 8, 5, stride=2, padding=2), nn.ReLU(), nn.AvgPool2d(3, stride=1, padding=1),
        nn.Flatten(), nn.Linear(8, 2),
    )


def test_receptive_field_of_module_matches_gradient_measurement():
    model = _vgg_like()
    rows = L.receptive_field(model, input_size=64)
    assert len(rows) == 6  # five convolution/pooling layers plus the average pool; stops at Flatten
    # by hand: 3, 5, then the 2x2 pool adds 1 (jump 1) -> 6 and doubles the jump; the dilated conv
    # spans 5 pixels: 6 + 4*2 = 14; the strided 5x5: 14 + 4*2 = 22 (jump 4); the 3x3 pool: 22 + 2*4 = 30
    assert [r.rf for r in rows] == [3, 5, 6, 14, 22, 30]
    assert [r.jump for r in rows] == [1, 1, 2, 2, 4, 4]
    assert rows[-1].size == L.conv_output_size(32, 5, stride=2, padding=2)
    measured = L.measured_receptive_field(model[:-2], (1, 96, 96))
    assert measured == (rows[-1].rf, rows[-1].rf)
    # and the sizes agree with the real feature map
    assert model[:-2](torch.zeros(1, 1, 64, 64)).shape[-1] == rows[-1].size


def test_measured_receptive_field_sees_a_single_conv():
    assert L.measured_receptive_field(nn.Sequential(nn.Conv2d(1, 1, (3, 5))), (1, 20, 20)) == (3, 5)


def test_classic_filters():
    f = L.CLASSIC_FILTERS
    assert torch.equal(f["sobel x"], torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    assert torch.equal(f["sobel y"], f["sobel x"].T)
    assert torch.equal(f["laplacian"], torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    assert torch.equal(f["sharpen"], torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]]))
    for size in (3, 5, 7):
        assert L.classic_filter("box blur", size).sum().item() == pytest.approx(1.0)
        assert L.classic_filter("gaussian blur", size).sum().item() == pytest.approx(1.0)
        assert L.classic_filter("sharpen", size).sum().item() == pytest.approx(1.0, abs=1e-6)
        assert L.classic_filter("laplacian", size).sum().item() == pytest.approx(0.0, abs=1e-6)
        assert L.classic_filter("sobel x", size).sum().item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        L.classic_filter("laplacian", 1)
    with pytest.raises(KeyError):
        L.classic_filter("emboss")


def test_apply_filter_keeps_size_and_finds_edges():
    img = torch.zeros(1, 16, 16)
    img[:, :, 8:] = 1.0  # a vertical edge
    gx = L.apply_filter(img, L.CLASSIC_FILTERS["sobel x"])
    gy = L.apply_filter(img, L.CLASSIC_FILTERS["sobel y"])
    assert gx.shape == img.shape
    assert gx.abs().max() == 4.0 and gy.abs().max() == 0.0
    assert set(torch.nonzero(gx[0])[:, 1].tolist()) == {7, 8}
    torch.testing.assert_close(L.apply_filter(img, L.CLASSIC_FILTERS["identity"]), img)


def test_shift_tolerance_orders_pooling():
    torch.manual_seed(0)
    x = F.avg_pool2d(torch.rand(4, 1, 40, 48), 3, 1, 1)  # smooth-ish random images
    none = L.shift_tolerance(lambda t: t, x, range(0, 5))
    pooled = L.shift_tolerance(lambda t: F.max_pool2d(t, 4), x, range(0, 5))
    glob = L.shift_tolerance(lambda t: t.mean((2, 3)), x, range(0, 5))
    assert none[0] == pooled[0] == glob[0] == 0.0
    assert (glob[1:] < pooled[1:]).all() and (pooled[1:] < none[1:]).all()


def test_batch_norm_matches_torch_in_train_and_eval():
    ref = nn.BatchNorm2d(5, momentum=0.2)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2)
        ref.bias.normal_()
    mine = L.BatchNorm2dScratch(5, momentum=0.2)
    mine.load_state_dict(ref.state_dict())
    for step in range(3):
        x = torch.randn(8, 5, 6, 7) * 3 + step
        torch.testing.assert_close(mine(x), ref(x))
    torch.testing.assert_close(mine.running_mean, ref.running_mean)
    torch.testing.assert_close(mine.running_var, ref.running_var)
    assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ref.eval()
    mine.eval()
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(mine(x), ref(x))
    before = mine.running_mean.clone()
    mine(x)
    assert torch.equal(before, mine.running_mean), "eval mode must not update the running statistics"


def test_batch_norm_functional_and_gradients():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    g = torch.rand(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = L.batch_norm_2d(x, None, None, g, b, training=True)
    e = F.batch_norm(x, None, None, g, b, training=True)
    torch.testing.assert_close(y, e)
    torch.testing.assert_close(torch.autograd.grad(y.sin().sum(), (x, g, b)),
                               torch.autograd.grad(e.sin().sum(), (x, g, b)))
    with pytest.raises(ValueError):
        L.batch_norm_2d(torch.randn(1, 3, 1, 1), None, None, training=True)


def test_maxout():
    m = L.Maxout(6, 4, pieces=3)
    x = torch.randn(5, 6)
    z = m.linear(x).view(5, 4, 3)
    torch.testing.assert_close(m(x), z.max(-1).values)
    relu = L.Maxout(1, 1, pieces=2)
    with torch.no_grad():
        relu.linear.weight.copy_(torch.tensor([[1.0], [0.0]]))
        relu.linear.bias.zero_()
    t = torch.linspace(-2, 2, 9).unsqueeze(1)
    torch.testing.assert_close(relu(t), torch.relu(t))
    assert sum(p.numel() for p in m.parameters()) == 3 * (6 * 4 + 4)


def test_linear_to_conv1x1_same_logits_and_sliding():
    features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2))  # no padding: crops are exact
    head = nn.Linear(8 * 4 * 4, 10)
    x = torch.randn(6, 3, 10, 10)
    logits = head(features(x).flatten(1))
    conv = L.linear_to_conv1x1(head, 8, (4, 4))
    torch.testing.assert_close(conv(features(x)).flatten(1), logits)
    big = torch.randn(1, 3, 18, 26)
    maps = conv(features(big))
    assert maps.shape == (1, 10, 5, 9)
    # the top-left score equals the head applied to the top-left 8x8 crop
    torch.testing.assert_close(maps[0, :, 0, 0], head(features(big[..., :10, :10]).flatten(1))[0])
    # after global pooling it is a true 1x1 convolution
    one = L.linear_to_conv1x1(nn.Linear(8, 10), 8)
    assert one.kernel_size == (1, 1)
    with pytest.raises(ValueError, match="inputs"):
        L.linear_to_conv1x1(head, 8, 3)


def test_dropblock_statistics():
    torch.manual_seed(0)
    db = L.DropBlock2d(drop_prob=0.15, block_size=5).train()
    x = torch.ones(16, 8, 32, 32)
    mask = db.block_mask(x)
    frac = 1 - mask.mean().item()
    assert 0.12 < frac < 0.16, frac  # about drop_prob (overlapping blocks make it a bit less)
    y = db(x)
    kept = y != 0
    assert y.mean().item() == pytest.approx(1.0, abs=1e-5)  # scaled to keep the expected sum
    assert torch.allclose(y[kept], y[kept][0])
    # dropped regions are squares of block_size x block_size, not single pixels
    single = L.DropBlock2d(drop_prob=0.02, block_size=5)
    m = single.block_mask(torch.ones(1, 1, 30, 30))
    assert (1 - m).sum() % 25 == 0 or (1 - m).sum() > 25
    zeros = (1 - m)[0, 0]
    if zeros.any():
        rows, cols = torch.nonzero(zeros, as_tuple=True)
        assert rows.max() - rows.min() + 1 >= 5 and cols.max() - cols.min() + 1 >= 5
    db.eval()
    assert torch.equal(db(x), x)
    assert torch.equal(L.DropBlock2d(0.0, 3).train()(x), x)


def test_dropblock_block_of_one_is_dropout_rate():
    torch.manual_seed(1)
    db = L.DropBlock2d(drop_prob=0.3, block_size=1).train()
    frac = 1 - db.block_mask(torch.ones(4, 4, 50, 50)).mean().item()
    assert frac == pytest.approx(0.3, abs=0.01)


def test_deep_stack_helpers():
    torch.manual_seed(0)
    x = torch.randn(256, 128)
    stats = {}
    for scheme in ("default", "kaiming", "orthogonal"):
        model = L.init_weights(L.mlp_stack(20, 128, nn.ReLU), scheme)
        stats[scheme] = L.activation_stats(model, x)
        assert len(stats[scheme]) == 20
    assert stats["default"][-1]["std"] < 0.1 * stats["kaiming"][-1]["std"]
    assert 0.2 < stats["kaiming"][-1]["std"] < 5
    assert 0.4 < stats["kaiming"][0]["frac_zero"] < 0.6
    sig = L.mlp_stack(15, 128, nn.Sigmoid, out_features=10)
    relu = L.init_weights(L.mlp_stack(15, 128, nn.ReLU, out_features=10), "kaiming")
    y = torch.randint(0, 10, (256,))
    g_sig = L.layer_gradient_norms(sig, x, y)
    g_relu = L.layer_gradient_norms(relu, x, y)
    assert len(g_sig) == len(g_relu) == 16
    assert g_sig[0] / g_sig[-1] < 1e-4 < g_relu[0] / g_relu[-1]


def test_init_weights_scales():
    lin = nn.Linear(400, 400)
    L.init_weights(lin, "kaiming")
    assert lin.weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    L.init_weights(lin, "orthogonal", nonlinearity="linear")
    torch.testing.assert_close(lin.weight @ lin.weight.T, torch.eye(400), atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        L.init_weights(lin, "zeros")


def test_random_crop_flip_is_a_per_image_crop_of_the_padded_batch():
    x = torch.arange(4 * 2 * 5 * 6, dtype=torch.float32).view(4, 2, 5, 6) + 1
    torch.manual_seed(3)
    out = random_crop_flip(x, padding=2, flip=True)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(4):
        # each output is one of the (2p+1)^2 crops of its own padded image, possibly mirrored
        candidates = [padded[i, :, dy:dy + 5, dx:dx + 6] for dy in range(5) for dx in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates), i
    shifts = {tuple(torch.nonzero(out[i, 0] == x[i, 0, 2, 2]).flatten().tolist()) for i in range(4)}
    assert len(shifts) > 1, "images of one batch get different shifts"
    assert torch.equal(random_crop_flip(x), x)
    flipped = [torch.equal(random_crop_flip(x, flip=True)[0], x[0].flip(-1)) for _ in range(40)]
    assert 5 < sum(flipped) < 35


def test_batch_augment_collates_and_augments():
    batch = [(torch.ones(1, 4, 4), i) for i in range(6)]
    images, targets = BatchAugment(padding=1)(batch)
    assert images.shape == (6, 1, 4, 4) and targets.tolist() == list(range(6))
    assert (images.sum((1, 2, 3)) < 16).any()  # some shifted in zeros
