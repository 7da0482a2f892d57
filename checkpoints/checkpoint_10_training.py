"""Checkpoint 10 · training: I can train a network end to end on real data."""
import numpy as np
import pytest

import tinytorch.core.dataloader as dataloader
import tinytorch.core.losses as losses
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.networks import MLP, Flatten, Sequential
from tinytorch.core.normalization import BatchNorm2D
from tinytorch.core.optimizers import SGD, Adam, CosineWithWarmup
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    Accuracy,
    BinaryCrossEntropy,
    CrossEntropyLoss,
    DataLoader,
    MeanSquaredError,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)


def predict(model, X):
    model.eval()
    with no_grad():
        return model(Tensor(X)).data


def test_a_cnn_reads_handwritten_digits():
    """Conv2D -> ReLU -> MaxPool -> Flatten -> Dense on the fixed digits split: >= 95 % test accuracy."""
    set_seed(0)
    X_train, y_train, X_test, y_test = digits_split(images=True)
    model = Sequential(Conv2D(1, 32, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(32 * 4 * 4, 10))
    train_loader = DataLoader(X_train, y_train, batch_size=64, shuffle=True)
    optimizer = Adam(model.parameters(), lr=0.01)
    epochs = 8
    schedule = CosineWithWarmup(optimizer, warmup_steps=len(train_loader), total_steps=epochs * len(train_loader))
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), metrics=[Accuracy()], scheduler=schedule)
    history = trainer.fit(train_loader, epochs=epochs, progress=False)
    assert [len(history[k]) for k in ("loss", "accuracy", "seconds")] == [epochs] * 3
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    result = trainer.evaluate(DataLoader(X_test, y_test, batch_size=128))
    assert result["accuracy"] >= 0.95, f"test accuracy {result['accuracy']:.3f}"
    assert np.isclose(result["accuracy"], np.mean(predict(model, X_test).argmax(axis=1) == y_test))


def test_evaluate_and_accuracy_by_hand():
    scores = Tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert Accuracy()(scores, Tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert Accuracy()(scores, [0, 1, 1]) == pytest.approx(2 / 3)  # targets: a Tensor, an array or a list
    sequences = Tensor(np.array([[[0.9, 0.1], [0.8, 0.2]], [[0.3, 0.7], [0.6, 0.4]]]))  # (batch, time, classes)
    assert Accuracy()(sequences, np.array([[0, 0], [1, 1]])) == 0.75  # the classes are the last axis
    set_seed(1)
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = MLP([4, 8, 2])
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    result = trainer.evaluate(DataLoader(X, y, batch_size=16))  # uneven batches: 16, 16, 16, 2
    logits = predict(model, X).astype(np.float64)
    log_probs = logits - logits.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    assert result["loss"] == pytest.approx(-log_probs[np.arange(50), y].mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
    model.train()
    trainer.evaluate(DataLoader(X, y, batch_size=16))
    assert model.training  # evaluate puts the model back in the mode it found it in


def small_cnn():
    return Sequential(Conv2D(1, 4, 3, padding=1), BatchNorm2D(4), ReLU(), MaxPool2D(2), Flatten(), Dense(64, 10))


def test_checkpoint_round_trip_and_exact_resume(tmp_path):
    X_train, y_train, X_test, _ = digits_split(images=True)
    X_train, y_train = X_train[:256], y_train[:256]

    def loader():
        return DataLoader(X_train, y_train, batch_size=32, shuffle=True, seed=3)

    set_seed(4)
    model = small_cnn()
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss())
    trainer.fit(loader(), epochs=2, progress=False)
    path = trainer.save_checkpoint(tmp_path / "run")
    assert path.suffix == ".npz" and path.exists()

    set_seed(99)  # different initial weights: everything must come from the file
    clone = small_cnn()
    clone_trainer = Trainer(clone, Adam(clone.parameters(), lr=0.5), CrossEntropyLoss())
    assert clone_trainer.load_checkpoint(path) == 2 and clone_trainer.epoch == 2
    assert np.array_equal(predict(clone, X_test), predict(model, X_test))  # running statistics included
    assert clone_trainer.optimizer.param_groups[0]["lr"] == 0.01

    # resuming: one more epoch from the original and from the restored copy gives the same weights
    trainer.fit(loader(), epochs=1, progress=False)
    clone_trainer.fit(loader(), epochs=1, progress=False)
    for a, b in zip(model.parameters(), clone.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert len(clone_trainer.history["loss"]) == 1 and clone_trainer.epoch == 3


def test_checkpoint_file_layout_with_and_without_optimizer(tmp_path):
    set_seed(5)
    model = MLP([3, 4, 2])
    optimizer = SGD(model.parameters(), lr=0.25, momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    optimizer.step()  # every parameter now has a momentum buffer
    model_keys = ["epoch"] + [f"model/{k}" for k in model.state_dict()]
    written = save_checkpoint(tmp_path / "full.npz", model, optimizer, epoch=3)
    with np.load(written) as archive:
        buffers = [f"optimizer/{i}/momentum_buffer" for i in range(len(model.parameters()))]
        assert sorted(archive.files) == sorted(model_keys + buffers + ["optimizer/lr/0"])
        assert float(archive["optimizer/lr/0"]) == 0.25 and int(archive["epoch"]) == 3
        for i, p in enumerate(model.parameters()):
            np.testing.assert_array_equal(archive[f"optimizer/{i}/momentum_buffer"], optimizer.state[p]["momentum_buffer"])
    written = save_checkpoint(tmp_path / "sub" / "weights.npz", model, epoch=7)
    with np.load(written) as archive:
        assert sorted(archive.files) == sorted(model_keys)
    set_seed(6)
    other = MLP([3, 4, 2])
    assert load_checkpoint(written, other) == 7
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(KeyError):
        load_checkpoint(written, MLP([3, 5, 4, 2]))
    early = save_checkpoint(tmp_path / "early.npz", model, SGD(model.parameters(), lr=0.5, momentum=0.9), epoch=0)
    assert load_checkpoint(early, model, optimizer) == 0  # saved before any step: no momentum buffers
    assert not optimizer.state and optimizer.param_groups[0]["lr"] == 0.5, "the checkpoint's state, not a mix"


def test_early_stopping_on_a_plateau_keeps_the_first_best_epoch():
    """lr = 0: the weights never move and every epoch has the same validation loss -- no improvement."""
    X = np.random.default_rng(1).standard_normal((32, 4)).astype(np.float32)
    y = np.arange(32) % 2
    set_seed(9)
    model = MLP([4, 8, 2])
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), CrossEntropyLoss())
    history = trainer.fit(DataLoader(X, y, batch_size=8), epochs=20, val_loader=DataLoader(X, y, batch_size=16),
                          patience=2, progress=False)  # fmt: skip
    assert len(set(history["val_loss"])) == 1 and len(history["val_loss"]) == 3 and trainer.best_epoch == 1


def test_early_stopping_stops_and_restores_the_best_weights():
    """Labels that are pure noise: the network memorises the training set and the validation loss rises."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 16)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    set_seed(7)
    model = MLP([16, 128, 3])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss())
    val_loader = DataLoader(X[64:], y[64:], batch_size=32)
    history = trainer.fit(DataLoader(X[:64], y[:64], batch_size=16, shuffle=True, seed=0), epochs=50,
                          val_loader=val_loader, patience=3, progress=False)  # fmt: skip
    epochs_run = len(history["loss"])
    assert epochs_run < 50 and all(len(v) == epochs_run for v in history.values())
    best = int(np.argmin(history["val_loss"]))
    assert trainer.best_epoch == best + 1 and epochs_run == best + 1 + 3
    assert trainer.evaluate(val_loader)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-6)
    with pytest.raises(ValueError):
        trainer.fit(DataLoader(X, y), epochs=1, patience=2, progress=False)  # patience needs a val_loader


def test_fit_with_a_progress_bar(capsys):
    set_seed(8)
    X = np.random.default_rng(1).standard_normal((40, 2)).astype(np.float32)
    y = (X.sum(axis=1) > 0).astype(np.int64)
    model = MLP([2, 8, 2])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), CrossEntropyLoss())
    history = trainer.fit(DataLoader(X, y, batch_size=8, shuffle=True), epochs=15, progress=True)
    assert "epochs" in capsys.readouterr().out
    assert history["accuracy"][-1] >= 0.9 and trainer.epoch == 15
    # the training module re-exports what a training script needs, as the very same objects
    assert DataLoader is dataloader.DataLoader and CrossEntropyLoss is losses.CrossEntropyLoss
    assert MeanSquaredError is losses.MeanSquaredError and BinaryCrossEntropy is losses.BinaryCrossEntropy
