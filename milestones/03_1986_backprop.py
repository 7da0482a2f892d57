"""1986 · Learning representations by back-propagating errors (Rumelhart, Hinton & Williams)

The paper in Nature that ended the winter: the chain rule, applied backwards through a network
layer by layer, tells every weight of every hidden layer how to change. Hidden units stop being
hand-designed; they learn features of their own. Here your autograd back-propagates through a
multi-layer perceptron reading the shipped handwritten digits (8×8 pixels, the fixed split of
1,438 training and 359 test images), and we look at what the first layer learned: each hidden
unit's 64 incoming weights, drawn as an 8×8 image.
"""
import sys

import numpy as np

import kit
from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, Normalize, digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Sequential
from tinytorch.core.optimizers import AdamW, CosineWithWarmup
from tinytorch.core.regularization import Dropout
from tinytorch.core.setup import set_seed
from tinytorch.core.training import Trainer

GOAL = {"quick": 0.90, "full": 0.975}


def digits_loaders(seed):
    """Training and test loaders over the fixed split, pixels standardised with the training statistics."""
    X_train, y_train, X_test, y_test = digits_split()
    normalize = Normalize(X_train.mean(axis=0), X_train.std(axis=0) + 0.1)  # + 0.1: some pixels are always 0
    train = DataLoader(normalize(X_train), y_train, batch_size=32, shuffle=True, seed=seed)
    return train, DataLoader(normalize(X_test), y_test, batch_size=359)


def mlp(hidden=(256, 128), dropout=0.2):
    layers, width = [], 64
    for size in hidden:
        layers += [Dense(width, size, init="kaiming"), ReLU(), Dropout(dropout)]
        width = size
    return Sequential(*layers, Dense(width, 10))


def train(model, train_loader, test_loader, epochs, progress):
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    schedule = CosineWithWarmup(optimizer, warmup_steps=len(train_loader), total_steps=epochs * len(train_loader))
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), scheduler=schedule)
    history = trainer.fit(train_loader, epochs, val_loader=test_loader, progress=progress)
    return trainer, history


def first_layer_images(model, count=16):
    """The incoming weights of the `count` hidden units with the largest weight norm, as 8×8 images."""
    weights = model[0].weights.data  # (64, hidden)
    strongest = np.argsort(-np.linalg.norm(weights, axis=0))[:count]
    return [weights[:, unit].reshape(8, 8) for unit in strongest]


def draw(run, history, images):
    epochs = range(1, len(history["loss"]) + 1)
    run.plot(kit.line_chart({"training loss": (epochs, history["loss"]), "test loss": (epochs, history["val_loss"])},
                            "cross-entropy per epoch", "epoch"))  # fmt: skip
    run.say("what 16 first-layer units look for (their 64 weights as 8×8 images; red positive, blue negative):",
            kit.image_grid(images, columns=8))  # fmt: skip

    def picture(fig):
        grid = fig.add_gridspec(2, 10)
        curve = fig.add_subplot(grid[:, :4])
        curve.plot(epochs, history["loss"], label="training loss")
        curve.plot(epochs, history["val_loss"], label="test loss")
        curve.set(xlabel="epoch", title="back-propagation on the digits", yscale="log")
        curve.legend()
        kit.image_tiles(fig, grid, images[:12], columns=6, first_column=4)

    run.png(picture)


def body(run):
    set_seed(1986)
    train_loader, test_loader = digits_loaders(seed=1986)
    model = mlp()
    epochs = run.size(quick=3, full=20)
    trainer, history = train(model, train_loader, test_loader, epochs, progress=not run.quick)
    test = trainer.evaluate(test_loader)
    run.figures.update(test_accuracy=test["accuracy"], test_loss=test["loss"], epochs=epochs,
                       train_loss=history["loss"][-1], seconds_per_epoch=float(np.mean(history["seconds"])))  # fmt: skip
    draw(run, history, first_layer_images(model))
    goal = GOAL["quick" if run.quick else "full"]
    return [
        kit.check("test accuracy", test["accuracy"], kit.percent(test["accuracy"]), f"≥ {100 * goal:g} %",
                  test["accuracy"] >= goal),  # fmt: skip
        kit.check("training loss fell", history["loss"][-1] / history["loss"][0],
                  f"{history['loss'][0]:.3f} → {history['loss'][-1]:.3f}", "to under a third",
                  history["loss"][-1] < history["loss"][0] / 3),  # fmt: skip
    ]


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
