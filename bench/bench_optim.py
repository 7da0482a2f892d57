"""Training speed and results: an MLP training step against PyTorch, and the digits MLP and CNN.

- "MLP step": one training step (zero_grad, forward, cross-entropy, backward, optimizer step) of a
  784-256-128-10 ReLU MLP on a batch of 128, with SGD (momentum 0.9) and with Adam. Goal: at most
  1.5x PyTorch's time.
- "digits MLP" / "digits CNN": the course's recipes trained on the shipped digits with the fixed
  split `digits_split()` (1438 train / 359 test), seed 0; extra reports the test accuracy, the wall
  and CPU seconds, and the goals (MLP >= 97.5 %, CNN >= 98.3 %, each in under 20 s). The same
  recipe is trained in PyTorch on the same batches for the time ratio.

Recipes (chosen on a validation split carved out of the training half, never on the test set):
  both: batch 64, RandomCrop(8, padding=1), cosine schedule with one epoch of linear warm-up
  MLP 64-256-128-10, AdamW lr 0.01 weight_decay 0.1, 60 epochs
  CNN conv3x3(32)-ReLU-maxpool2-conv3x3(64)-ReLU-maxpool2-flatten-dense(10), Adam lr 0.01, 30 epochs
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from bench.harness import Measurement, compare, torch

BATCH, SIZES = 128, (784, 256, 128, 10)
ACCURACY_GOALS = {"MLP": 0.975, "CNN": 0.983}
TIME_GOAL_S = 20.0


def _tinytorch_mlp_step(optimizer_name):
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.networks import MLP
    from tinytorch.core.optimizers import SGD, Adam
    from tinytorch.core.setup import set_seed
    from tinytorch.core.tensor import Tensor

    set_seed(0)
    data = np.random.default_rng(0)
    x = Tensor(data.standard_normal((BATCH, SIZES[0])).astype(np.float32))
    y = Tensor(data.integers(0, SIZES[-1], BATCH))
    model, loss_fn = MLP(list(SIZES)), CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9) if optimizer_name == "SGD" else Adam(model.parameters())

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def _torch_mlp_step(optimizer_name):
    t = torch()
    t.manual_seed(0)
    data = np.random.default_rng(0)
    x = t.from_numpy(data.standard_normal((BATCH, SIZES[0])).astype(np.float32))
    y = t.from_numpy(data.integers(0, SIZES[-1], BATCH))
    nn = t.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = (t.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if optimizer_name == "SGD"
                 else t.optim.Adam(model.parameters()))  # fmt: skip
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def mlp_steps():
    return [
        compare(f"MLP step 784-256-128-10, batch {BATCH}, {name}", _tinytorch_mlp_step(name),
                _torch_mlp_step(name) if torch() else None, goal_ratio=1.5, repeat=50, warmup=5)  # fmt: skip
        for name in ("SGD", "Adam")
    ]


# --- the digits recipes -------------------------------------------------------------------------
def _recipe(kind):
    """(images?, epochs, lr, weight decay) of the MLP or CNN recipe."""
    return {"MLP": (False, 60, 0.01, 0.1), "CNN": (True, 30, 0.01, 0.0)}[kind]


def _batches(kind, epochs, seed=0):
    """Every training batch of every epoch, drawn once so both frameworks see identical data."""
    from tinytorch.core.dataloader import DataLoader, RandomCrop, digits_split
    from tinytorch.core.setup import set_seed

    set_seed(seed)
    images, *_ = _recipe(kind)
    X_train, y_train, X_test, y_test = digits_split(images=True)
    crop = RandomCrop(8, padding=1)
    flatten = (lambda x: x) if images else (lambda x: x.reshape(len(x), -1))
    loader = DataLoader(X_train, y_train, batch_size=64, shuffle=True, seed=seed, transform=lambda x: flatten(crop(x)))
    epochs_of_batches = [[(x.data, y.data) for x, y in loader] for _ in range(epochs)]
    return epochs_of_batches, flatten(X_test), y_test


def _schedule(step, warmup, total):
    """The CosineWithWarmup factor at `step` (to drive PyTorch's LambdaLR identically)."""
    if step < warmup:
        return (step + 1) / warmup
    return (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup)))) / 2


def train_tinytorch(kind, epochs_of_batches, X_test, y_test):
    from tinytorch.core.activations import ReLU
    from tinytorch.core.dataloader import DataLoader
    from tinytorch.core.layers import Dense
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.networks import MLP, Flatten, Sequential
    from tinytorch.core.optimizers import Adam, AdamW, CosineWithWarmup
    from tinytorch.core.setup import set_seed
    from tinytorch.core.spatial import Conv2D, MaxPool2D
    from tinytorch.core.training import Trainer

    set_seed(0)
    _, epochs, lr, weight_decay = _recipe(kind)
    if kind == "MLP":
        model = MLP([64, 256, 128, 10])
        optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        model = Sequential(Conv2D(1, 32, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(32, 64, 3, padding=1), ReLU(),
                           MaxPool2D(2), Flatten(), Dense(64 * 2 * 2, 10))  # fmt: skip
        optimizer = Adam(model.parameters(), lr=lr)
    per_epoch = len(epochs_of_batches[0])
    schedule = CosineWithWarmup(optimizer, warmup_steps=per_epoch, total_steps=epochs * per_epoch)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), scheduler=schedule)
    for batches in epochs_of_batches:
        trainer.train_epoch(_Replay(batches))
    return trainer.evaluate(DataLoader(X_test, y_test, batch_size=512))["accuracy"]


class _Replay:
    """Pre-drawn batches as Tensors, looking like a DataLoader to Trainer."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        from tinytorch.core.tensor import Tensor

        return ((Tensor(x), Tensor(y)) for x, y in self.batches)


def train_torch(kind, epochs_of_batches, X_test, y_test):
    t = torch()
    t.manual_seed(0)
    nn = t.nn
    _, epochs, lr, weight_decay = _recipe(kind)
    if kind == "MLP":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
        optimizer = t.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))  # fmt: skip
        optimizer = t.optim.Adam(model.parameters(), lr=lr)
    per_epoch = len(epochs_of_batches[0])
    schedule = t.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, per_epoch, epochs * per_epoch))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for batches in epochs_of_batches:
        for x, y in batches:
            optimizer.zero_grad()
            loss_fn(model(t.from_numpy(x)), t.from_numpy(y)).backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with t.no_grad():
        predictions = model(t.from_numpy(X_test)).argmax(dim=1).numpy()
    return float(np.mean(predictions == y_test))


def _timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def digits(kind):
    _, epochs, _, _ = _recipe(kind)
    data = _batches(kind, epochs)
    accuracy, wall, cpu = _timed(train_tinytorch, kind, *data)
    extra = {
        "test_acc": f"{accuracy:.2%}",
        "goal": f">= {ACCURACY_GOALS[kind]:.1%} in < {TIME_GOAL_S:g} s",
        "met": accuracy >= ACCURACY_GOALS[kind] and wall < TIME_GOAL_S,
        "cpu_s": round(cpu, 2),
        "load": round(os.getloadavg()[0], 2),  # other processes on the machine inflate wall time
    }
    torch_wall = None
    if torch() is not None:
        torch_accuracy, torch_wall, _ = _timed(train_torch, kind, *data)
        extra["torch_test_acc"] = f"{torch_accuracy:.2%}"
    name = f"digits {kind}: train {epochs} epochs (whole run)"
    return Measurement(name, wall, torch_wall, None, extra)


def run():
    return mlp_steps() + [digits("MLP"), digits("CNN")]
