"""Embedding networks: shapes, unit norm, shared Siamese weights, extraction in order."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_utils.evaluation import EmbeddingSet
from course_utils.models import create_model
from course_utils.models.embedding import EmbeddingNet, FaceBackbone, SiameseNet, face_backbone
from course_utils.train import make_loader, predict


@pytest.fixture
def faces():
    torch.manual_seed(0)
    return torch.rand(6, 1, 32, 32)


def test_face_backbone_shapes_and_interface(faces):
    bb = face_backbone(in_chans=1)
    assert isinstance(bb, FaceBackbone)
    f = bb.forward_features(faces)
    assert f.shape == (6, 128, 2, 2)  # four stride-2 steps: 32 -> 2
    assert bb.forward_head(f, pre_logits=True).shape == (6, bb.num_features)
    assert bb(faces).shape == (6, 128)  # no classifier by default
    bb.reset_classifier(7)
    assert bb(faces).shape == (6, 7)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        bb(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize("normalize", [True, False])
def test_embedding_net_output(faces, normalize):
    net = EmbeddingNet(face_backbone(in_chans=1, widths=(8, 16, 32)), embedding_dim=10, normalize=normalize).eval()
    e = net(faces)
    assert e.shape == (6, 10)
    norms = e.norm(dim=1)
    if normalize:
        torch.testing.assert_close(norms, torch.ones(6))
    else:
        assert not torch.allclose(norms, torch.ones(6))
    assert net.pooled_features(faces).shape == (6, 32)
    assert bool((net.pooled_features(faces) >= 0).all())  # after a ReLU: fit for chi-square features


def test_embedding_net_on_a_zoo_model_and_a_plain_module(faces):
    net = EmbeddingNet(create_model("resnet_small", num_classes=0, in_chans=1), embedding_dim=16).eval()
    assert net(faces).shape == (6, 16)
    plain = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU())  # a feature map, no num_features
    with pytest.raises(ValueError, match="num_features"):
        EmbeddingNet(plain)
    net = EmbeddingNet(plain, num_features=5, embedding_dim=4).eval()
    assert net(faces).shape == (6, 4)
    wrong = EmbeddingNet(plain, num_features=6, embedding_dim=4)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        wrong(faces)


def test_siamese_net_shares_weights(faces):
    torch.manual_seed(1)
    net = EmbeddingNet(face_backbone(in_chans=1, widths=(8, 16)), embedding_dim=8).eval()
    siam = SiameseNet(net)
    a, b = faces[:3], faces[3:]
    e1, e2 = siam(a, b)
    torch.testing.assert_close(e1, net(a))
    torch.testing.assert_close(e2, net(b))
    f2, f1 = siam((b, a))  # the tuple form fit() passes; swapping swaps
    torch.testing.assert_close(f1, e1)
    torch.testing.assert_close(f2, e2)
    # one set of parameters: both branches' gradients land in the same tensors
    assert sum(p.numel() for p in siam.parameters()) == sum(p.numel() for p in net.parameters())
    siam.train()
    x1, x2 = siam(a, b)
    (x1.sum() + x2.sum()).backward()
    assert net.proj.weight.grad is not None
    with pytest.raises(ValueError, match="two image batches"):
        siam(a)
    with pytest.raises(ValueError, match="same shape"):
        siam(a, faces[:2])


def test_predict_embeddings_keeps_order_and_eval_mode(faces):
    torch.manual_seed(2)
    net = EmbeddingNet(face_backbone(in_chans=1, widths=(8, 16)), embedding_dim=8)
    net.train()
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    ds = TensorDataset(faces, labels)
    emb, lab = predict(net, ds, device="cpu", batch_size=4)
    assert net.training, "the model's mode is restored"
    assert emb.shape == (6, 8) and emb.dtype == torch.float32
    assert lab.tolist() == labels.tolist() and lab.dtype == torch.int64
    net.eval()
    torch.testing.assert_close(emb, net(faces))  # eval mode was used (BatchNorm running stats)
    emb2, _ = predict(net, make_loader(ds, batch_size=2), device="cpu")
    torch.testing.assert_close(emb2, emb)
    pooled, _ = predict(net, ds, device="cpu", forward_fn=lambda m, x: m.pooled_features(x))
    assert pooled.shape == (6, 16)
    with pytest.raises(ValueError, match="no labels"):
        EmbeddingSet.from_predictions(predict(net, make_loader(TensorDataset(faces), batch_size=3), device="cpu"))


def test_per_image_standardize_and_input_norm(faces):
    from course_utils.models.embedding import PerImageStandardize

    z = PerImageStandardize()(faces * 3 + 1)
    torch.testing.assert_close(z.mean(dim=(1, 2, 3)), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(1, 2, 3)), torch.ones(6), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        PerImageStandardize()(faces[0])
    torch.manual_seed(3)
    net = EmbeddingNet(face_backbone(in_chans=1, widths=(8, 16)), embedding_dim=8,
                       input_norm=PerImageStandardize()).eval()
    # brightness and contrast no longer change the embedding
    torch.testing.assert_close(net(faces), net(faces * 0.5 + 0.2), atol=1e-4, rtol=0)
