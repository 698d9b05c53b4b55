"""Hidden tests of notebook 00 (instructor only: never released, never mounted in the sandbox).

``probe_<id>(ns)`` runs in the sandbox after the student's solution and returns
plain outputs; ``EXPECT`` holds the host-side checks (see course_tools.grading.checks).
The experiment ``no_batchnorm`` is range-checked (grading/experiments/), not probed.
"""

from course_tools.grading.checks import equals, holds


def probe_count_trainable(ns):
    from torch import nn

    f = ns["count_trainable"]
    out = {}
    out["linear"] = f(nn.Linear(10, 5))
    frozen = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    frozen[0].requires_grad_(False)
    out["first_frozen"] = f(frozen)
    out["no_parameters"] = f(nn.Sequential(nn.ReLU(), nn.Flatten()))
    conv = nn.Conv2d(3, 8, 3)
    conv.requires_grad_(False)
    out["all_frozen"] = f(conv)
    shared = nn.Linear(7, 3)
    out["shared_weights"] = f(nn.Sequential(shared, nn.ReLU(), shared))  # one tensor, counted once
    bias_frozen = nn.Linear(4, 3)
    bias_frozen.bias.requires_grad_(False)
    out["bias_frozen"] = f(bias_frozen)
    out["batchnorm"] = f(nn.BatchNorm2d(6))  # running statistics are buffers, not parameters
    out["returns_int"] = type(out["linear"]).__name__ in ("int", "Tensor") and int(out["linear"]) == out["linear"]
    return out


def probe_stop_at_accuracy(ns):
    import torch
    from torch import nn

    from course_utils.train import TrainState, fit

    cls = ns["StopAtAccuracy"]
    out = {}

    def replay(target, accs):
        cb = cls(target)
        state = TrainState(model=nn.Linear(1, 1), optimizer=None, history=None)
        stops = []
        for epoch, acc in enumerate(accs, 1):
            state.epoch = epoch
            cb.on_epoch_end(state, {"train_loss": 1.0, "val_loss": 1.0, "val_acc": acc})
            stops.append(bool(state.stop))
            if state.stop:
                break
        return {"stops": stops, "stopped_at": cb.stopped_at}

    out["rising"] = replay(0.9, [0.5, 0.7, 0.95, 0.99])
    out["exact_target"] = replay(0.8, [0.6, 0.8, 0.9])
    out["never"] = replay(0.99, [0.5, 0.6, 0.7])
    out["first_epoch"] = replay(0.1, [0.5, 0.6])
    # with the real fit: a separable toy problem, a target reached at once
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=32)
    model = nn.Linear(2, 2)
    cb = cls(0.0)

    def acc(logits, target):
        return (logits.argmax(1) == target).float().mean()

    history = fit(model, loader, loss_fn=nn.functional.cross_entropy,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=5, val_loader=loader,
                  metrics={"acc": acc}, callbacks=[cb], progress=False)
    out["fit_epochs"] = len(history)
    out["fit_stopped_at"] = cb.stopped_at
    return out


EXPECT = {
    "count_trainable": {
        "linear": equals(55),
        "first_frozen": equals(12),
        "no_parameters": equals(0),
        "all_frozen": equals(0),
        "shared_weights": equals(24),
        "bias_frozen": equals(12),
        "batchnorm": equals(12),
        "returns_int": equals(True),
    },
    "stop_at_accuracy": {
        "rising": equals({"stops": [False, False, True], "stopped_at": 3}),
        "exact_target": [equals({"stops": [False, True], "stopped_at": 2}),
                         holds(lambda r: r["stopped_at"] == 2, "reaching the target exactly must stop")],
        "never": equals({"stops": [False, False, False], "stopped_at": None}),
        "first_epoch": equals({"stops": [True], "stopped_at": 1}),
        "fit_epochs": equals(1),
        "fit_stopped_at": equals(1),
    },
}
