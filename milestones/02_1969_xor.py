"""1969 · The XOR crisis (Marvin Minsky & Seymour Papert)

In "Perceptrons", Minsky and Papert proved what a single layer cannot do: it draws one straight
line, and no straight line puts (0,0) and (1,1) on one side and (0,1) and (1,0) on the other.
At best it gets three of the four XOR points right (we check that too, trying every line on a
fine grid); trained by gradient descent it does no better, and its lowest loss is the useless
"50/50 everywhere". Funding for neural networks dried up for a decade. The way out was known in principle (a hidden layer) but not how to train one. Your
framework has the answer built in: reverse-mode autograd trains a two-layer network, and it
solves XOR. Here we train both, with the same optimizer and loss, and compare.
"""
import sys

import numpy as np

import kit
from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Dense
from tinytorch.core.losses import BinaryCrossEntropy
from tinytorch.core.networks import Sequential
from tinytorch.core.optimizers import Adam
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def train(model, steps, lr=0.05):
    """Full-batch Adam on binary cross-entropy (from logits) with your autograd; returns the losses."""
    optimizer, loss_fn, losses = Adam(model.parameters(), lr=lr), BinaryCrossEntropy(from_logits=True), []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(X)), Tensor(Y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def accuracy(model):
    return float(np.mean((model(Tensor(X)).data > 0) == (Y > 0.5)))


def best_single_layer(steps, seeds):
    """A single layer trained from several starts; the best accuracy any of them reached."""
    runs = []
    for seed in seeds:
        set_seed(seed)
        layer = Dense(2, 1)
        runs.append((accuracy_after(layer, steps), layer))
    return max(runs, key=lambda run: run[0][0])


def best_line_accuracy():
    """The best accuracy of any straight line on XOR, by trying 360 directions × 161 offsets."""
    angles = np.deg2rad(np.arange(360))
    normals = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (360, 2)
    offsets = np.linspace(-2, 2, 161)
    scores = (X @ normals.T)[None] + offsets[:, None, None]  # (offsets, points, directions)
    correct = (scores > 0) == (Y > 0.5)[None]
    return float(correct.mean(axis=1).max())


def accuracy_after(model, steps):
    losses = train(model, steps)
    return accuracy(model), losses


def output_grid(model, size=24):
    """The network's probability of class 1 over [-0.25, 1.25]², row 0 at the top."""
    axis = np.linspace(-0.25, 1.25, size, dtype=np.float32)
    grid = np.array([[x, y] for y in axis[::-1] for x in axis], dtype=np.float32)
    logits = model(Tensor(grid)).data.reshape(size, size)
    return 1 / (1 + np.exp(-logits))


def draw(run, single_losses, mlp_losses, mlp):
    steps = range(1, len(mlp_losses) + 1)
    series = {"single layer": (steps, single_losses), "two-layer MLP": (steps, mlp_losses)}
    run.plot(kit.line_chart(series, "binary cross-entropy on XOR", "step"))
    run.say("the MLP's P(class 1) over the plane ((0,0) bottom left, (1,1) top right; red = 1):",
            kit.heatmap(output_grid(mlp), 0.0, 1.0))  # fmt: skip

    def picture(fig):
        left, right = fig.subplots(1, 2)
        for label, losses in series.items():
            left.plot(*losses, label=label)
        left.set(xlabel="step", ylabel="loss", title="training on XOR", yscale="log")
        left.legend()
        image = right.imshow(output_grid(mlp, 100), extent=(-0.25, 1.25, -0.25, 1.25), cmap="coolwarm", vmin=0, vmax=1)
        right.scatter(X[:, 0], X[:, 1], c=Y[:, 0], cmap="coolwarm", edgecolors="k", s=80)
        right.set(title="MLP: P(class 1)")
        fig.colorbar(image, ax=right)

    run.png(picture)


def body(run):
    steps = run.size(quick=300, full=2000)
    (single_acc, single_losses), _ = best_single_layer(steps, seeds=range(run.size(quick=3, full=10)))
    set_seed(1969)
    mlp = Sequential(Dense(2, 8), Tanh(), Dense(8, 1))
    mlp_acc, mlp_losses = accuracy_after(mlp, steps)
    best_line = best_line_accuracy()
    run.figures.update(single_layer_accuracy=single_acc, mlp_accuracy=mlp_acc, steps=steps, best_line_accuracy=best_line,
                       single_layer_final_loss=single_losses[-1], mlp_final_loss=mlp_losses[-1])  # fmt: skip
    draw(run, single_losses, mlp_losses, mlp)
    return [
        kit.check("MLP accuracy on XOR", mlp_acc, kit.percent(mlp_acc), "100 %", mlp_acc == 1.0),
        kit.check("best single-layer accuracy", single_acc, kit.percent(single_acc), "≤ 75 % (no line separates XOR)",
                  single_acc <= 0.75),  # fmt: skip
        kit.check("MLP final loss", mlp_losses[-1], f"{mlp_losses[-1]:.3f}", "< 0.1", mlp_losses[-1] < 0.1),
        kit.check("best of 57,960 straight lines", best_line, kit.percent(best_line), "75 %: three points of four",
                  best_line == 0.75),  # fmt: skip
    ]


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
