"""The training loop: it learns, records, stops, clips, schedules, checkpoints, and fails clearly."""

import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import train
from course_utils.data import TensorImageDataset
from course_utils.train import (
    BestCheckpoint,
    CheckpointMismatchError,
    EarlyStopping,
    NonFiniteLossError,
    Predictions,
    accuracy,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
)


def blobs(n=256, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[3.0] * d, [-3.0] * d, [3.0, -3.0] * (d // 2) + [0.0] * (d % 2)])
    x = centers[y] + torch.randn(n, d, generator=g)
    return TensorDataset(x, y)


def loaders(batch_size=32):
    g = torch.Generator().manual_seed(0)
    return (DataLoader(blobs(seed=0), batch_size=batch_size, shuffle=True, generator=g),
            DataLoader(blobs(seed=1), batch_size=64))


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))


def test_fit_learns_and_records_history():
    train_dl, val_dl = loaders()
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=4,
               val_loader=val_dl, metrics={"acc": accuracy}, progress=False)
    assert len(hist) == 4
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"):
        assert key in hist.keys()
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist.last("val_acc") > 0.95
    # the history's val numbers are what evaluate() says about the final model
    again = evaluate(model, val_dl, loss_fn=nn.functional.cross_entropy, metrics={"acc": accuracy})
    assert again["acc"] == pytest.approx(hist.last("val_acc"))
    assert again["loss"] == pytest.approx(hist.last("val_loss"), rel=1e-5)
    assert hist.best("val_acc", mode="max")[1] == max(hist["val_acc"])
    df = hist.to_dataframe()
    assert list(df["epoch"]) == [1, 2, 3, 4]


def test_train_loss_is_sample_weighted_mean():
    # one epoch with lr=0: the recorded loss equals the loss over the whole set
    ds = blobs(n=70)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    hist = fit(model, DataLoader(ds, batch_size=32), loss_fn=nn.functional.cross_entropy, optimizer=opt,
               epochs=1, progress=False)
    x, y = ds.tensors
    expected = nn.functional.cross_entropy(model(x), y).item()
    assert hist.last("train_loss") == pytest.approx(expected, rel=1e-5)


def test_predict_returns_all_outputs_in_order():
    ds = blobs(n=50)
    model = make_model()
    out, tgt = predict(model, DataLoader(ds, batch_size=16))
    assert out.shape == (50, 3)
    torch.testing.assert_close(out, model(ds.tensors[0]).detach())
    assert torch.equal(tgt, ds.tensors[1])
    only = predict(model, DataLoader(ds, batch_size=16), return_targets=False)
    assert isinstance(only, torch.Tensor)


def test_train_transform_touches_training_batches_only():
    train_dl, val_dl = loaders()
    model = make_model()
    seen = []

    def transform(x):
        seen.append(x.shape[0])
        return x * 0.0  # the model sees only zeros while training

    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    hist = fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, val_loader=val_dl,
               train_transform=transform, progress=False)
    assert sum(seen) == len(train_dl.dataset)  # every training batch, once
    x, y = val_dl.dataset.tensors
    assert hist.last("val_loss") == pytest.approx(nn.functional.cross_entropy(model(x), y).item(), rel=1e-5)


def test_predict_reads_a_dataset_and_returns_its_attributes():
    images = torch.randint(0, 256, (7, 1, 4, 4), dtype=torch.uint8)
    frame = pd.DataFrame({"group": list("aabbccd"), "file": [f"{i}.png" for i in range(7)]})
    ds = TensorImageDataset(images, torch.arange(7) % 2, attributes=frame, group_columns=("group",))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    pred = predict(model, ds, batch_size=3)
    assert isinstance(pred, Predictions) and len(pred) == 7
    assert pred.attributes["file"].tolist() == frame["file"].tolist() and pred.group_columns == ("group",)
    out, tgt = pred
    torch.testing.assert_close(out, model(ds.float_images()).detach())
    assert tgt.tolist() == (torch.arange(7) % 2).tolist()
    shuffled = predict(model, DataLoader(ds, batch_size=3, shuffle=True))
    assert shuffled.attributes is None  # rows no longer match the data set's order


def test_early_stopping_stops():
    train_dl, val_dl = loaders()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # never improves
    stopper = EarlyStopping("val_loss", patience=2)
    hist = fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=20,
               val_loader=val_dl, callbacks=[stopper], progress=False)
    assert len(hist) == 3
    assert stopper.stopped_epoch == 3


def test_early_stopping_names_missing_key():
    train_dl, _ = loaders()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyError, match="val_loader"):
        fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1,
            callbacks=[EarlyStopping("val_loss")], progress=False)


class Scripted(train.Callback):
    """Pretend the validation metric peaks at epoch 2, to test the best checkpoint."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, state, record):
        record["val_score"] = {1: 0.5, 2: 0.9, 3: 0.7}[state.epoch]
        self.weights[state.epoch] = [p.detach().clone() for p in state.model.parameters()]


def test_best_checkpoint_restores_best_and_writes_file(tmp_path):
    train_dl, _ = loaders()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    spy = Scripted()
    best = BestCheckpoint(tmp_path / "best.pt", monitor="val_score", mode="max")
    fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=3,
        callbacks=[spy, best], progress=False)
    assert best.best_epoch == 2
    for p, q in zip(model.parameters(), spy.weights[2]):
        torch.testing.assert_close(p, q)
    ckpt = load_checkpoint(tmp_path / "best.pt", make_model())
    assert ckpt["meta"]["epoch"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_non_finite_loss_stops_before_the_weights_change():
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = blobs(64).tensors
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    calls = []

    def loss_nan_on_second(out, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("nan") if len(calls) == 2 else loss

    fit(model, batches[:1], loss_fn=loss_nan_on_second, optimizer=opt, progress=False)
    after_first = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="step 1"):
        fit(model, batches[1:], loss_fn=loss_nan_on_second, optimizer=opt, progress=False)
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all() and torch.equal(v, after_first[k]), k  # no NaN step happened


def test_non_finite_batches_can_be_skipped():
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def every_third_nan(out, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("inf") if len(calls) % 3 == 0 else loss

    train_dl, _ = loaders()
    with pytest.warns(RuntimeWarning, match="skipped 2 batch"):
        h = fit(model, train_dl, loss_fn=every_third_nan, optimizer=opt, progress=False, on_nonfinite="skip")
    assert math.isfinite(h.last("train_loss")) and all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(NonFiniteLossError, match="Every training batch"), pytest.warns(RuntimeWarning):
        fit(model, train_dl, loss_fn=lambda o, t: o.sum() * float("nan"), optimizer=opt, progress=False,
            on_nonfinite="skip")


def test_single_sample_batch_with_batchnorm_is_skipped_not_a_crash():
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plain = DataLoader(blobs(n=33), batch_size=16)  # the last batch holds one sample
    with pytest.warns(RuntimeWarning, match="one sample"):
        h = fit(model, plain, loss_fn=nn.functional.cross_entropy, optimizer=opt, progress=False)
    assert math.isfinite(h.last("train_loss"))
    dl = train.make_loader(blobs(n=33), batch_size=16, shuffle=True, device="cpu")
    assert dl.drop_last and [len(b[0]) for b in dl] == [16, 16]
    assert not train.make_loader(blobs(n=33), batch_size=16, device="cpu").drop_last  # evaluation keeps all
    assert [len(b[0]) for b in train.make_loader(blobs(n=34), batch_size=16, shuffle=True, device="cpu")] == [16, 16, 2]


def test_non_finite_loss_raises_with_advice():
    train_dl, _ = loaders()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def bad_loss(out, y):
        return nn.functional.cross_entropy(out, y) * float("nan")

    with pytest.raises(NonFiniteLossError, match="learning rate"):
        fit(model, train_dl, loss_fn=bad_loss, optimizer=opt, epochs=1, progress=False)


class NormSpy(torch.optim.SGD):
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.norms = []

    def step(self, closure=None):
        grads = [p.grad.flatten() for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(torch.cat(grads).norm().item())
        return super().step(closure)


def test_grad_clip_bounds_the_gradient_norm():
    train_dl, _ = loaders()
    model = make_model()
    opt = NormSpy(model.parameters(), lr=0.01)
    fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, grad_clip=0.05,
        progress=False)
    assert max(opt.norms) <= 0.05 + 1e-5
    model2 = make_model()
    opt2 = NormSpy(model2.parameters(), lr=0.01)
    fit(model2, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt2, epochs=1, progress=False)
    assert max(opt2.norms) > 0.05  # without clipping the norm is larger: the bound above means something


def test_scheduler_epoch_and_batch_steps():
    train_dl, _ = loaders(batch_size=64)  # 4 batches per epoch
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    hist = fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=3, scheduler=sched,
               progress=False)
    assert hist["lr"] == pytest.approx([1.0, 0.5, 0.25])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, scheduler=sched,
        scheduler_step="batch", progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 ** 4)


def test_forward_fn_and_nested_batches():
    # a Siamese-style batch: ((x1, x2), y); forward_fn decides how to call the model
    x1, x2 = torch.randn(40, 5), torch.randn(40, 5)
    y = (x1.sum(1) > x2.sum(1)).float()
    ds = TensorDataset(x1, x2, y)
    loader = [((a, b), t) for a, b, t in DataLoader(ds, batch_size=8)]
    lin = nn.Linear(5, 1)
    calls = []

    def forward(model, pair):
        calls.append(1)
        return (model(pair[0]) - model(pair[1])).squeeze(1)

    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    hist = fit(lin, loader, loss_fn=nn.functional.binary_cross_entropy_with_logits, optimizer=opt, epochs=2,
               forward_fn=forward, progress=False)
    assert len(calls) == 10 and len(hist) == 2


def test_max_steps_per_epoch():
    train_dl, _ = loaders()
    model = make_model()
    opt = NormSpy(model.parameters(), lr=0.01)
    fit(model, train_dl, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=2, max_steps_per_epoch=3,
        progress=False)
    assert len(opt.norms) == 6


def test_empty_loader_is_an_error():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, progress=False)


def test_amp_is_off_on_cpu():
    cpu = torch.device("cpu")
    assert train.amp_dtype(cpu, "auto") is None
    assert train.amp_dtype(cpu, "fp16") is None
    with train.autocast_context(cpu, None):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="amp"):
        train.amp_dtype(torch.device("cuda"), "int8")
    assert train.amp_dtype(torch.device("cuda"), "fp16") is torch.float16
    assert train.amp_dtype(torch.device("cuda"), False) is None


def test_make_loader_on_cpu():
    dl = train.make_loader(blobs(n=10), batch_size=4, device="cpu")
    assert dl.num_workers == 0 and dl.pin_memory is False
    assert sum(len(b[0]) for b in dl) == 10


class _NotebookDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(2), 0


def test_make_loader_workers_only_where_they_help_and_work(monkeypatch):
    monkeypatch.setattr(train, "resolve_device", lambda device=None: torch.device("cuda"))
    monkeypatch.setattr(train, "_start_method", lambda: "fork")
    assert train.make_loader(blobs(n=8), batch_size=4).num_workers == 0  # in-memory tensors
    ds = _NotebookDataset()
    dl = train.make_loader(ds, batch_size=2)
    assert dl.num_workers > 0 and dl.persistent_workers is False
    monkeypatch.setattr(_NotebookDataset, "__module__", "__main__")  # as if defined in a notebook
    monkeypatch.setattr(train, "_start_method", lambda: "spawn")  # Windows, macOS
    assert train.make_loader(ds, batch_size=2).num_workers == 0  # the default falls back, silently
    with pytest.raises(RuntimeError, match=r"(?s)_NotebookDataset is defined in the notebook.*\.py file.*num_workers=0"):
        train.make_loader(ds, batch_size=2, num_workers=2)


def test_channels_last_runs_a_conv_net():
    x = torch.randn(16, 3, 8, 8)
    y = torch.randint(0, 2, (16,))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, DataLoader(TensorDataset(x, y), batch_size=8), loss_fn=nn.functional.cross_entropy,
               optimizer=opt, epochs=1, channels_last=True, progress=False)
    assert math.isfinite(hist.last("train_loss"))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_roundtrip_with_optimizer(tmp_path):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 5)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, optimizer=opt, meta={"acc": 0.9, "seed": 1})
    other = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    opt2 = torch.optim.Adam(other.parameters(), lr=1e-3)
    ckpt = load_checkpoint(path, other, optimizer=opt2)
    assert ckpt["meta"] == {"acc": 0.9, "seed": 1}
    assert ckpt["arch"] == "Sequential"
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_load_bare_state_dict(tmp_path):
    model = make_model()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    other = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    load_checkpoint(tmp_path / "sd.pt", other)
    torch.testing.assert_close(other[0].weight, model[0].weight)


def test_checkpoint_for_another_architecture_is_a_clear_error(tmp_path):
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(5, 7)

    save_checkpoint(tmp_path / "w.pt", Wide())
    with pytest.raises(CheckpointMismatchError, match="Wide") as err:
        load_checkpoint(tmp_path / "w.pt", make_model())
    assert "missing key" in str(err.value) and "unexpected key" in str(err.value)


def test_checkpoint_shape_mismatch_names_the_tensor(tmp_path):
    save_checkpoint(tmp_path / "a.pt", nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 10)))
    with pytest.raises(CheckpointMismatchError, match=r"2\.weight.*\(10, 16\)"):
        load_checkpoint(tmp_path / "a.pt", make_model())


def test_checkpoint_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt", make_model())


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "m.pt"
    save_checkpoint(target, make_model(), meta={"v": 1})
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, make_model(), meta={"v": 2})
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["m.pt"]
    assert target.read_bytes() == before


def test_checkpoint_load_refuses_pickled_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"state_dict": Evil()}, fh)
    with pytest.raises(train.CheckpointLoadError, match="evil.pt.*arbitrary code") as info:
        load_checkpoint(tmp_path / "evil.pt", make_model())
    assert "weights_only=False" not in str(info.value)


@pytest.mark.parametrize("kind", ["empty", "truncated", "html", "text"])
def test_unreadable_checkpoints_say_which_file_and_what_it_is(tmp_path, kind):
    good = save_checkpoint(tmp_path / "good.pt", make_model())
    path = tmp_path / f"{kind}.pt"
    content = {"empty": b"", "truncated": good.read_bytes()[: good.stat().st_size // 2],
               "html": b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>",
               "text": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n"}[kind]
    path.write_bytes(content)
    expected = {"empty": "is empty", "truncated": "is truncated", "html": "is a web page \\(HTML\\)",
                "text": "is not a PyTorch checkpoint"}[kind]
    with pytest.raises(train.CheckpointLoadError, match=f"{kind}.pt: it {expected}") as info:
        load_checkpoint(path, make_model())
    assert "weights_only=False" not in str(info.value) and str(path) in str(info.value)


def test_checkpoint_save_cleans_leftovers_of_killed_writers(tmp_path):
    dead = tmp_path / ".m.pt.999999999-0123456789ab.tmp"  # no such process id
    dead.write_bytes(b"half")
    live = tmp_path / f".m.pt.{os.getpid()}-0123456789ab.tmp"  # a write in progress in this process
    live.write_bytes(b"busy")
    save_checkpoint(tmp_path / "m.pt", make_model())
    assert not dead.exists() and live.exists()


class _TwoHeads(nn.Module):
    """A multi-task model whose forward returns a plain dict of logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(5, 8)
        self.a = nn.Linear(8, 3)
        self.b = nn.Linear(8, 2)

    def forward(self, x):
        z = torch.relu(self.body(x))
        return {"a": self.a(z), "b": self.b(z)}


def test_dict_outputs_reach_metrics_detached():
    loader = DataLoader(blobs(64), batch_size=16)
    seen = []

    def loss_fn(out, t):
        return nn.functional.cross_entropy(out["a"], t) + nn.functional.cross_entropy(out["b"], t % 2)

    def acc_a(out, t):
        seen.append(all(not v.requires_grad for v in out.values()))
        return accuracy(out["a"], t)

    model = _TwoHeads()
    hist = fit(model, loader, loss_fn=loss_fn, optimizer=torch.optim.Adam(model.parameters(), 1e-2), epochs=2,
               metrics={"acc_a": acc_a}, progress=False)
    assert len(hist) == 2 and seen and all(seen)
    assert 0.0 <= hist.records[-1]["train_acc_a"] <= 1.0


def test_detach_outputs_keeps_containers():
    from collections import namedtuple

    Out = namedtuple("Out", "logits emb")
    w = torch.ones(3, requires_grad=True)
    tree = {"x": [w * 2, (w * 3,)], "n": Out(w * 1, 7)}
    d = train.detach_outputs(tree)
    assert isinstance(d["n"], Out) and d["n"].emb == 7 and isinstance(d["x"][1], tuple)
    assert not d["x"][0].requires_grad and not d["x"][1][0].requires_grad and not d["n"].logits.requires_grad
    torch.testing.assert_close(d["x"][0], w.detach() * 2)
