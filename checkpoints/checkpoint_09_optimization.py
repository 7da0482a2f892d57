"""Checkpoint 09 · optimization: I can optimise parameters with SGD, Adam and learning-rate schedules."""
import math

import numpy as np
import pytest

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Dense, Parameter
from tinytorch.core.losses import MeanSquaredError
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineWithWarmup, RMSprop, StepLR, clip_grad_norm
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.25, 1.0, -3.0]), np.array([1.0, 0.0, 0.5])]
START = np.array([1.0, -2.0, 0.5])


def run(optimizer_cls, steps=3, **settings):
    """Apply the fixed gradient sequence GRADS to a parameter starting at START; return its values."""
    p = Parameter(START.copy())
    optimizer = optimizer_cls([p], **settings)
    for grad in GRADS[:steps]:
        p.grad = Tensor(grad.copy())
        optimizer.step()
    return p.data


def test_sgd_plain_and_weight_decay():
    np.testing.assert_allclose(run(SGD, steps=1, lr=0.1), START - 0.1 * GRADS[0], rtol=1e-12)
    p = START.copy()
    for g in GRADS:
        p = p - 0.1 * (g + 0.01 * p)  # L2 weight decay joins the gradient
    np.testing.assert_allclose(run(SGD, lr=0.1, weight_decay=0.01), p, rtol=1e-12)


def test_sgd_momentum_and_nesterov():
    for nesterov in (False, True):
        p, buffer = START.copy(), None
        for g in GRADS:
            buffer = g.copy() if buffer is None else 0.9 * buffer + g
            p = p - 0.05 * (g + 0.9 * buffer if nesterov else buffer)
        np.testing.assert_allclose(run(SGD, lr=0.05, momentum=0.9, nesterov=nesterov), p, rtol=1e-12)
    # hand-computed, first coordinate: g = 0.5, 0.25, 1.0; b = 0.5, 0.7, 1.63
    assert np.isclose(run(SGD, lr=1.0, momentum=0.9)[0], 1.0 - 0.5 - 0.7 - 1.63)


def test_adam_textbook():
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    p, m, v = START.copy(), 0.0, 0.0
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run(Adam, lr=lr), p, rtol=1e-10)
    # first step: m̂ = g, v̂ = g², so each number moves by lr · sign(g), whatever |g|
    np.testing.assert_allclose(run(Adam, steps=1, lr=0.01), START - 0.01 * np.sign(GRADS[0]), rtol=1e-6)


def test_adamw_decouples_weight_decay():
    b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, 0.01, 0.1
    decoupled, coupled = START.copy(), START.copy()
    state = {"decoupled": (0.0, 0.0), "coupled": (0.0, 0.0)}
    for t, g in enumerate(GRADS, start=1):
        decoupled = decoupled * (1 - lr * wd)
        for name, grad in (("decoupled", g), ("coupled", g + wd * coupled)):
            m, v = state[name]
            m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad**2
            state[name] = (m, v)
            step = lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            if name == "decoupled":
                decoupled = decoupled - step
            else:
                coupled = coupled - step
    np.testing.assert_allclose(run(AdamW, lr=lr, weight_decay=wd), decoupled, rtol=1e-10)
    np.testing.assert_allclose(run(Adam, lr=lr, weight_decay=wd), coupled, rtol=1e-10)
    assert not np.allclose(decoupled, coupled, rtol=1e-6)


def test_rmsprop_textbook():
    alpha, eps, lr, mu = 0.9, 1e-8, 0.01, 0.5
    p, v, b = START.copy(), 0.0, 0.0
    for g in GRADS:
        v = alpha * v + (1 - alpha) * g**2
        b = mu * b + g / (np.sqrt(v) + eps)
        p = p - lr * b
    np.testing.assert_allclose(run(RMSprop, lr=lr, alpha=alpha, momentum=mu), p, rtol=1e-10)
    wd, p, v = 0.1, START.copy(), 0.0  # plain RMSprop, L2 weight decay joining the gradient
    for g in GRADS:
        g = g + wd * p
        v = alpha * v + (1 - alpha) * g**2
        p = p - lr * g / (np.sqrt(v) + eps)
    np.testing.assert_allclose(run(RMSprop, lr=lr, alpha=alpha, weight_decay=wd), p, rtol=1e-10)


def test_param_groups_state_and_memory():
    a, b, unused = Parameter(np.ones(4)), Parameter(np.ones((2, 3))), Parameter(np.ones(5))
    optimizer = Adam([{"params": [a], "lr": 0.5}, {"params": [b, unused]}], lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.1]
    assert optimizer.param_groups[1]["betas"] == (0.9, 0.999)  # defaults fill the rest
    assert optimizer.memory_bytes() == 0  # state appears at the first step
    a.grad, b.grad = Tensor(np.ones(4)), Tensor(-np.ones((2, 3)))
    optimizer.step()
    np.testing.assert_allclose(a.data, 0.5, rtol=1e-6)  # its own lr
    np.testing.assert_allclose(b.data, 1.1, rtol=1e-6)
    assert unused not in optimizer.state and np.all(unused.data == 1.0)  # no gradient: untouched
    assert set(optimizer.state[a]) == {"step", "exp_avg", "exp_avg_sq"} and optimizer.state[a]["step"] == 1
    assert optimizer.memory_bytes() == 2 * (a.data.nbytes + b.data.nbytes)  # m and v per number
    data = a.data
    optimizer.step()
    assert a.data is data  # updated in place
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError):
        SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    momentum = SGD([a], lr=0.1, momentum=0.9)
    a.grad = Tensor(np.ones(4))
    momentum.step()
    assert momentum.memory_bytes() == a.data.nbytes and SGD([a], lr=0.1).memory_bytes() == 0


def test_schedules():
    optimizer = SGD([Parameter(np.zeros(1))], lr=2.0)
    step_lr = StepLR(optimizer, step_size=2, gamma=0.5)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        step_lr.step()
    assert seen == [2.0, 2.0, 1.0, 1.0, 0.5, 0.5]

    optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
    cosine = CosineWithWarmup(optimizer, warmup_steps=4, total_steps=12, min_lr=0.0)
    seen = []
    for _ in range(14):
        seen.append(optimizer.param_groups[0]["lr"])
        cosine.step()
    expected = [0.25, 0.5, 0.75, 1.0] + [(1 + math.cos(math.pi * k / 8)) / 2 for k in range(9)] + [0.0]
    np.testing.assert_allclose(seen, expected, atol=1e-12)
    assert cosine.get_lr() == [0.0]

    optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
    cosine = CosineWithWarmup(optimizer, warmup_steps=4, total_steps=12, min_lr=0.2)  # the cosine ends at min_lr
    for _ in range(8):
        cosine.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.2 + 0.8 * (1 + math.cos(math.pi / 2)) / 2)  # halfway: 0.6
    for _ in range(6):
        cosine.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.2)


def test_clip_grad_norm():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros((1, 2)))
    a.grad, b.grad = Tensor(np.array([6.0, 0.0])), Tensor(np.array([[0.0, 8.0]]))
    assert clip_grad_norm([a, b], max_norm=5.0) == 10.0
    np.testing.assert_allclose(a.grad.data, [3.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.data, [[0.0, 4.0]], rtol=1e-6)
    clipped = math.sqrt(sum(float(np.sum(np.square(p.grad.data, dtype=np.float64))) for p in (a, b)))
    assert clipped <= 5.0, f"the clipped norm {clipped!r} must not exceed max_norm: divide by total + 1e-6"
    assert math.isclose(clip_grad_norm([a, b], max_norm=100.0), 5.0, rel_tol=1e-6)
    np.testing.assert_allclose(a.grad.data, [3.0, 0.0], rtol=1e-6)  # under the limit: unchanged


def fit_line(optimizer_cls, steps, **settings):
    set_seed(0)
    noise = np.random.default_rng(1).standard_normal((64, 1))
    x = np.linspace(-1, 1, 64).reshape(-1, 1).astype(np.float32)
    y = (3 * x - 2 + 0.05 * noise).astype(np.float32)
    model, loss_fn = Dense(1, 1), MeanSquaredError()
    optimizer = optimizer_cls(model.parameters(), **settings)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(x)), y)
        loss.backward()
        optimizer.step()
    return loss.item(), model.weights.data.item(), model.bias.data.item()


@pytest.mark.parametrize(
    "optimizer_cls, settings", [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.1)), (RMSprop, dict(lr=0.03))]
)
def test_converges_on_a_noisy_line(optimizer_cls, settings):
    loss, weight, bias = fit_line(optimizer_cls, 300, **settings)
    assert loss < 0.003  # the noise alone costs 0.0025
    assert abs(weight - 3) < 0.05 and abs(bias + 2) < 0.05


def test_adam_trains_a_small_network_with_a_schedule():
    set_seed(2)
    x = np.linspace(-3, 3, 128, dtype=np.float32).reshape(-1, 1)
    y = np.sin(x)
    first, second, tanh = Dense(1, 32), Dense(32, 1), Tanh()
    params = first.parameters() + second.parameters()
    optimizer = Adam(params, lr=0.1)
    schedule = CosineWithWarmup(optimizer, warmup_steps=20, total_steps=400, min_lr=1e-3)
    loss_fn = MeanSquaredError()
    for _ in range(400):
        optimizer.zero_grad()
        loss = loss_fn(second(tanh(first(Tensor(x)))), y)
        loss.backward()
        clip_grad_norm(params, 5.0)
        optimizer.step()
        schedule.step()
    assert loss.item() < 3e-3  # sin(x) on [-3, 3] starts with a loss near 0.5
