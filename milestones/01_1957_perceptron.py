"""1957 · The Perceptron (Frank Rosenblatt)

At the Cornell Aeronautical Laboratory, Rosenblatt described a machine that learns from its
mistakes: show it a point, and if it answers wrongly, add the point (times its label) to the
weights. Nothing else. In 1962 Novikoff proved that when a straight line can separate the two
classes with a margin γ, this rule stops making mistakes after at most (R/γ)² updates, R being
the length of the longest input. Here your `Dense` layer is the perceptron: we count its updates
on a linearly separable cloud of points and check them against Novikoff's bound.
"""
import sys

import numpy as np

import kit
from tinytorch.core.layers import Dense
from tinytorch.core.tensor import Tensor

MARGIN = 0.1  # no point closer than this to the true line: the data are separable with margin γ
TRUE_W, TRUE_B = np.array([1.0, -0.7]), 0.15


def separable_points(count, seed=1957):
    """`count` points of the square [-1, 1]² labelled ±1 by a known line, none within MARGIN of it."""
    generator = np.random.default_rng(seed)
    points = generator.uniform(-1, 1, size=(4 * count, 2))
    signed = (points @ TRUE_W + TRUE_B) / np.linalg.norm(TRUE_W)
    keep = np.abs(signed) >= MARGIN
    return points[keep][:count].astype(np.float32), np.sign(signed[keep][:count]).astype(np.float32)


def train_perceptron(X, y, max_epochs=100):
    """Rosenblatt's rule on your Dense(2, 1): on a mistake, w += y·x and b += y. Returns
    (layer, updates, epochs, mistakes per epoch)."""
    perceptron = Dense(2, 1)
    perceptron.weights.data[:] = 0.0
    perceptron.bias.data[:] = 0.0
    updates, history = 0, []
    for _ in range(max_epochs):
        mistakes = 0
        for x, label in zip(X, y):
            score = perceptron(Tensor(x[None])).item()
            if label * score <= 0:
                perceptron.weights.data[:, 0] += label * x
                perceptron.bias.data[0] += label
                mistakes += 1
        updates += mistakes
        history.append(mistakes)
        if mistakes == 0:
            break
    return perceptron, updates, len(history), history


def novikoff_bound(X, y):
    """(R/γ)² for inputs extended with a constant 1 (the bias), using the true separating line."""
    extended = np.hstack([X, np.ones((len(X), 1))])
    direction = np.append(TRUE_W, TRUE_B)
    gamma = np.min(y * (extended @ direction)) / np.linalg.norm(direction)
    radius = np.max(np.linalg.norm(extended, axis=1))
    return (radius / gamma) ** 2


def accuracy(perceptron, X, y):
    scores = perceptron(Tensor(X)).data[:, 0]
    return float(np.mean(np.sign(scores) == y))


def boundary(perceptron):
    """Two points of the learned line w·x + b = 0 at x0 = -1 and x0 = 1."""
    (w0, w1), b = perceptron.weights.data[:, 0], perceptron.bias.data[0]
    xs = np.array([-1.0, 1.0])
    return xs, -(w0 * xs + b) / (w1 if w1 else 1e-12)


def draw(run, X, y, perceptron, history):
    import plotext

    figure = plotext.figure
    figure.clear()
    figure.plot_size(70, 22)
    figure.theme("dark")
    for label, marker in ((1, "+"), (-1, "o")):
        members = X[y == label]
        points = figure.signal(members[:, 0].tolist(), members[:, 1].tolist(), marker=marker)
        figure.draw(points.label(f"class {label:+d}"))
    xs, ys = boundary(perceptron)
    figure.draw(figure.signal(xs.tolist(), ys.tolist()).label("learned boundary").lines())
    figure.title("the perceptron's decision boundary")
    run.plot(figure)
    run.say(f"mistakes per epoch: {history}")

    def picture(fig):
        left, right = fig.subplots(1, 2)
        for label, colour in ((1, "tab:red"), (-1, "tab:blue")):
            members = X[y == label]
            left.scatter(members[:, 0], members[:, 1], s=8, c=colour, label=f"class {label:+d}")
        left.plot(*boundary(perceptron), "k-", label="learned boundary")
        left.set(xlim=(-1, 1), ylim=(-1, 1), title="decision boundary")
        left.legend(fontsize=7)
        right.bar(range(1, len(history) + 1), history)
        right.set(xlabel="epoch", ylabel="mistakes (= updates)", title="learning from mistakes")

    run.png(picture)


def body(run):
    X, y = separable_points(run.size(quick=200, full=2000))
    cut = len(X) * 3 // 4
    perceptron, updates, epochs, history = train_perceptron(X[:cut], y[:cut])
    bound = novikoff_bound(X[:cut], y[:cut])
    train_acc, test_acc = accuracy(perceptron, X[:cut], y[:cut]), accuracy(perceptron, X[cut:], y[cut:])
    run.figures.update(updates=updates, epochs=epochs, novikoff_bound=round(bound, 1),
                       train_accuracy=train_acc, test_accuracy=test_acc, points=len(X))  # fmt: skip
    draw(run, X[:cut], y[:cut], perceptron, history)
    converged = history[-1] == 0
    return [
        kit.check("updates to converge", updates, f"{updates}", f"≤ (R/γ)² = {bound:.0f}", converged and updates <= bound),
        kit.check("training accuracy", train_acc, kit.percent(train_acc), "100 % (converged)", train_acc == 1.0),
        kit.check("held-out accuracy", test_acc, kit.percent(test_acc), "≥ 95 %", test_acc >= 0.95),
    ]


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
