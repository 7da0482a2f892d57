"""1998 · Gradient-based learning applied to document recognition (LeCun, Bottou, Bengio & Haffner)

LeNet-5 read the amounts on a large share of the cheques written in the United States. Its
idea: do not learn a separate weight for every pixel; slide one small learned filter over the
whole image (convolution), keep the strongest answers (pooling), and repeat, so that a stroke
is recognised wherever it appears. Here the same recipe (two convolution blocks, then one
dense layer, trained on randomly shifted copies of the images) runs on your `Conv2D`,
`MaxPool2D`, `BatchNorm2D`, `RandomCrop` and autograd, on the shipped digits. Set CIFAR10_DIR to a local copy of CIFAR-10 (cifar-10-batches-py) and the same recipe
also reads 32×32 colour photographs.
"""
import os
import sys

import numpy as np

import kit
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import CIFAR10Dataset, DataLoader, Normalize, RandomCrop, digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Flatten, Sequential
from tinytorch.core.normalization import BatchNorm2D
from tinytorch.core.optimizers import AdamW, CosineWithWarmup
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor

GOAL = {"quick": 0.85, "full": 0.983}


def lenet(channels, size, widths=(32, 64)):
    """Two blocks of 3×3 convolution, batch norm, ReLU and 2×2 max pooling, then one dense layer."""
    layers, previous = [], channels
    for width in widths:
        layers += [Conv2D(previous, width, 3, padding=1), BatchNorm2D(width), ReLU(), MaxPool2D(2)]
        previous = width
    return Sequential(*layers, Flatten(), Dense(previous * (size // 4) ** 2, 10))


def standardised(X_train, X_test):
    """Both sets scaled with the training set's per-channel mean and standard deviation."""
    normalize = Normalize(X_train.mean(axis=(0, 2, 3)), X_train.std(axis=(0, 2, 3)))
    return normalize(X_train).astype(np.float32), normalize(X_test).astype(np.float32)


def fit(X_train, y_train, X_test, y_test, epochs, seed):
    """The recipe: images shifted by up to 1/8 of their size (random crops of a padded copy), AdamW with
    a cosine schedule, batches of 32. Returns (model, per-epoch history)."""
    set_seed(seed)
    X_train, X_test = standardised(X_train, X_test)
    size = X_train.shape[2]
    model = lenet(X_train.shape[1], size)
    shift = RandomCrop(size, padding=size // 8)
    loader = DataLoader(X_train, y_train, batch_size=32, shuffle=True, seed=seed, transform=shift)
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    total = epochs * len(loader)
    schedule = CosineWithWarmup(optimizer, warmup_steps=min(len(loader), total // 2), total_steps=total)
    loss_fn, history = CrossEntropyLoss(), {"loss": [], "test_accuracy": []}
    for _ in range(epochs):
        model.train()
        total = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(x)
        history["loss"].append(total / len(X_train))
        history["test_accuracy"].append(accuracy(model, X_test, y_test))
    return model, history


def accuracy(model, X, y, batch=500):
    model.eval()
    with no_grad():
        predictions = np.concatenate([model(Tensor(X[i : i + batch])).data.argmax(1) for i in range(0, len(X), batch)])
    return float(np.mean(predictions == y))


def cifar(run):
    """The same recipe on CIFAR-10 when CIFAR10_DIR names a local copy; None otherwise."""
    folder = os.environ.get("CIFAR10_DIR")
    if not folder:
        run.say("[dim](CIFAR10_DIR is not set: the CIFAR-10 run is skipped)[/]")
        return None
    train_set, test_set = CIFAR10Dataset(folder, train=True), CIFAR10Dataset(folder, train=False)
    train_count = min(len(train_set), run.size(quick=2000, full=50000))
    test_count = min(len(test_set), run.size(quick=1000, full=10000))
    X_train, y_train = train_set.get_batch(np.arange(train_count))
    X_test, y_test = test_set.get_batch(np.arange(test_count))
    epochs = run.size(quick=1, full=10)
    run.say(f"CIFAR-10: {train_count} training and {test_count} test images, {epochs} epoch(s)")
    _, history = fit(X_train, y_train, X_test, y_test, epochs, seed=1998)
    run.figures.update(cifar10_test_accuracy=history["test_accuracy"][-1], cifar10_train_images=train_count,
                       cifar10_test_images=test_count, cifar10_epochs=epochs)  # fmt: skip
    return history["test_accuracy"][-1]


def draw(run, history, model):
    epochs = range(1, len(history["loss"]) + 1)
    series = {"training loss": (epochs, history["loss"]), "test error": (epochs, 1 - np.array(history["test_accuracy"]))}
    run.plot(kit.line_chart(series, "LeNet on the digits", "epoch"))
    filters = [w[0] for w in model[0].weights.data[:16]]  # (32, 1, 3, 3): each first-layer filter as a 3×3 image
    run.say("the 16 learned 3×3 filters of the first convolution (red positive, blue negative):",
            kit.image_grid(filters, columns=16))  # fmt: skip

    def picture(fig):
        grid = fig.add_gridspec(4, 8)
        curve = fig.add_subplot(grid[:, :4])
        for label, (xs, ys) in series.items():
            curve.plot(xs, ys, label=label)
        curve.set(xlabel="epoch", yscale="log", title="LeNet on the digits")
        curve.legend()
        kit.image_tiles(fig, grid, filters, columns=4, first_column=4)

    run.png(picture)


def body(run):
    X_train, y_train, X_test, y_test = digits_split(images=True)
    epochs = run.size(quick=2, full=30)
    model, history = fit(X_train, y_train, X_test, y_test, epochs, seed=1998)
    test_accuracy = history["test_accuracy"][-1]
    run.figures.update(test_accuracy=test_accuracy, epochs=epochs, final_training_loss=history["loss"][-1])
    draw(run, history, model)
    goal = GOAL["quick" if run.quick else "full"]
    checks = [kit.check("test accuracy", test_accuracy, kit.percent(test_accuracy), f"≥ {100 * goal:g} %",
                        test_accuracy >= goal)]  # fmt: skip
    cifar_accuracy = cifar(run)
    if cifar_accuracy is not None:
        checks.append(kit.check("CIFAR-10 test accuracy", cifar_accuracy, kit.percent(cifar_accuracy),
                                "better than chance (10 %)", cifar_accuracy > 0.10))  # fmt: skip
    return checks


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
