"""Optimizer steps, schedules and gradient clipping against torch.optim, in float64 (1e-5 relative)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.layers import Parameter  # noqa: E402
from tinytorch.core.optimizers import (  # noqa: E402
    SGD,
    Adam,
    AdamW,
    CosineWithWarmup,
    RMSprop,
    StepLR,
    clip_grad_norm,
)
from tinytorch.core.tensor import Tensor  # noqa: E402

SHAPES = [(5, 3), (3,), (2, 2, 2)]
STEPS = 6


def run_both(ours_cls, theirs_cls, settings, torch_settings=None, steps=STEPS, seed=0):
    """The same start and the same gradient sequence through both optimizers; return both parameter lists."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    ours = [Parameter(a.copy()) for a in start]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in start]
    ours_opt = ours_cls(ours, **settings)
    theirs_opt = theirs_cls(theirs, **(torch_settings or settings))
    for _ in range(steps):
        for p, q in zip(ours, theirs):
            grad = rng.standard_normal(p.shape) * rng.choice([1e-3, 1.0, 30.0])  # varied scales
            p.grad, q.grad = Tensor(grad.copy()), torch.tensor(grad.copy())
        ours_opt.step()
        theirs_opt.step()
    return ours, theirs, ours_opt


def assert_same(ours, theirs):
    for p, q in zip(ours, theirs):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize(
    "settings",
    [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.8, nesterov=True),
        dict(lr=0.1, weight_decay=0.01),
        dict(lr=0.02, momentum=0.9, weight_decay=0.1, nesterov=True),
    ],
)
def test_sgd(settings):
    ours, theirs, _ = run_both(SGD, torch.optim.SGD, settings)
    assert_same(ours, theirs)


@pytest.mark.parametrize(
    "settings",
    [dict(lr=1e-3), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)],
)
def test_adam(settings):
    ours, theirs, optimizer = run_both(Adam, torch.optim.Adam, settings)
    assert_same(ours, theirs)
    assert optimizer.memory_bytes() == 2 * sum(p.data.nbytes for p in ours)


@pytest.mark.parametrize("settings", [dict(lr=1e-2), dict(lr=0.05, weight_decay=0.5, betas=(0.85, 0.95))])
def test_adamw(settings):
    ours, theirs, _ = run_both(AdamW, torch.optim.AdamW, settings)
    assert_same(ours, theirs)


@pytest.mark.parametrize(
    "settings",
    [dict(lr=0.01), dict(lr=0.01, alpha=0.9, eps=1e-6), dict(lr=0.005, momentum=0.9, weight_decay=0.05)],
)
def test_rmsprop(settings):
    ours, theirs, _ = run_both(RMSprop, torch.optim.RMSprop, settings)
    assert_same(ours, theirs)


def test_param_groups():
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    ours = [Parameter(a.copy()) for a in start]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in start]
    ours_opt = SGD([{"params": ours[:1], "lr": 0.5}, {"params": ours[1:], "momentum": 0.9}], lr=0.1)
    theirs_opt = torch.optim.SGD([{"params": theirs[:1], "lr": 0.5}, {"params": theirs[1:], "momentum": 0.9}], lr=0.1)
    for _ in range(STEPS):
        for p, q in zip(ours, theirs):
            grad = rng.standard_normal(p.shape)
            p.grad, q.grad = Tensor(grad.copy()), torch.tensor(grad.copy())
        ours_opt.step()
        theirs_opt.step()
    assert_same(ours, theirs)


def learning_rates(ours, theirs, steps):
    got, expected = [], []
    for _ in range(steps):
        got.append(ours.get_lr()[0])
        expected.append(theirs.get_last_lr()[0])
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
    return got, expected


def test_step_lr():
    ours = StepLR(SGD([Parameter(np.zeros(1))], lr=0.3), step_size=4, gamma=0.5)
    theirs = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3), 4, 0.5)
    got, expected = learning_rates(ours, theirs, 15)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_cosine_with_warmup_matches_linear_warmup_then_cosine_annealing():
    warmup, total, base, low = 5, 30, 0.2, 0.01
    ours = CosineWithWarmup(SGD([Parameter(np.zeros(1))], lr=base), warmup_steps=warmup, total_steps=total, min_lr=low)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = torch.optim.lr_scheduler
    theirs = sched.SequentialLR(
        optimizer,
        [sched.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup - 1),
         sched.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=low)],
        milestones=[warmup],
    )  # fmt: skip
    got, expected = learning_rates(ours, theirs, total)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_clip_grad_norm():
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(shape) * 3 for shape in SHAPES]
    for max_norm in (0.5, 1e3):
        ours = [Parameter(np.zeros(shape)) for shape in SHAPES]
        theirs = [torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64)) for shape in SHAPES]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = Tensor(g.copy()), torch.tensor(g.copy())
        total = clip_grad_norm(ours, max_norm)
        expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        np.testing.assert_allclose(total, expected.item(), rtol=1e-12)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-9)
