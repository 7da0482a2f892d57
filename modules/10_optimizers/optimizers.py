# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 10 · Optimizers: turning gradients into better parameters
#
# Module 09 computes `.grad`, the direction in which the loss grows fastest. An **optimizer** decides
# how far to move each parameter against it. The simplest rule -- step by `lr` times the gradient --
# already trains, but badly: it crawls along shallow valleys and zig-zags across steep ones. The
# optimizers in every framework add two ideas to it: **momentum** (remember the direction you were
# going) and **per-parameter step sizes** (take smaller steps where gradients are large).
#
# ```
#   loss surface seen from above: a long narrow valley, minimum at ×
#
#   plain SGD                       SGD + momentum                   Adam
#   ╲╱╲╱╲╱╲╱╲→ × (slow zig-zag)     ───────────────→ × (speeds up)   ─────────→ × (rescaled axes)
# ```
#
# This module writes `SGD` (with momentum, Nesterov momentum and weight decay), `Adam`, `AdamW` and
# `RMSprop` with PyTorch's exact update formulas, parameter groups, per-parameter `.state`, the
# memory that state costs, learning-rate schedules and gradient clipping.

# %%
#| default_exp core.optimizers

# %%
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.layers import Dense, Parameter
from tinytorch.core.losses import MeanSquaredError
from tinytorch.core.setup import peak_memory, set_seed, time_it

# %% [markdown]
# ## 1. The Optimizer: parameters, groups and state
#
# Every optimizer shares the same skeleton, PyTorch's:
#
# ```
#   optimizer = Adam(model.parameters(), lr=1e-3)
#   for x, y in loader:
#       optimizer.zero_grad()          forget last step's gradients (.grad = None)
#       loss_fn(model(x), y).backward()  fill .grad
#       optimizer.step()               update every parameter in place, using .grad and .state
# ```
#
# - **Parameter groups.** `params` is a list of parameters, or a list of dicts each holding its own
#   `"params"` and any hyper-parameter to override: `[{"params": body, "lr": 1e-4}, {"params":
#   head}]` trains a pretrained body slowly and a new head fast. Missing settings come from the
#   optimizer's defaults. `optimizer.param_groups` is that list (a scheduler changes `"lr"` there).
# - **State.** Momentum and Adam remember something *per parameter* between steps. `optimizer.state`
#   is a dict keyed by the parameter object itself (a Tensor hashes by identity, as in PyTorch -- its
#   `==` compares numbers, but a dict looks a key up by identity first -- so the same parameter
#   always finds its entry), each value a dict such as
#   `{"step": 3, "exp_avg": array, "exp_avg_sq": array}`. The state is created at the first `step()`.
# - **In place.** `step()` changes `p.data` in place and never replaces the array: the model, the
#   optimizer and anything else holding the parameter keep seeing the same numbers.
#
# A parameter whose `.grad` is `None` (it took no part in the loss) is skipped, as in PyTorch.
# - **Saving and resuming.** `state_dict()` returns the settings and a copy of the state, in
#   PyTorch's format: parameters are numbered 0, 1, ... in group order (a parameter object cannot be
#   saved to a file, its position can). `load_state_dict(d)` puts them back into an optimizer built
#   over the same parameters -- with the model's own `state_dict`, training resumes **exactly** where
#   it stopped (section 7 checks it bit for bit). Without the optimizer's state, Adam would restart
#   its step count and moving averages and take different steps.

# %%
#| export
def _grad(parameter):
    """The gradient array of a parameter (autograd stores `.grad` as a Tensor; an array also works)."""
    grad = parameter.grad
    return grad.data if isinstance(grad, Tensor) else np.asarray(grad)


def _copy(value):
    """A private copy of an array (state must not share memory with what was saved); others as they are."""
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


class Optimizer:
    """Base class: holds `param_groups` (dicts with "params" and hyper-parameters) and `state`.

    Subclasses implement `update(parameter, grad, state, group)`, the rule for one parameter.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # parameter -> dict of that parameter's running quantities
        params = list(params)
        if not params:
            raise ValueError("the optimizer got an empty parameter list")
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add {"params": [...], optional settings}; unspecified settings take the defaults."""
        group = {**self.defaults, **group, "params": list(group["params"])}
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("a parameter appears in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self):
        """Forget every parameter's gradient (set it to None, as PyTorch does by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place."""
        ### HINT: for each group and each of its params with a grad: self.update(p, _grad(p), self.state.setdefault(p, {}), group)
        ### BEGIN SOLUTION
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, _grad(p), self.state.setdefault(p, {}), group)
        ### END SOLUTION

    def update(self, p, grad, state, group):
        raise NotImplementedError

    def state_dict(self):
        """Everything needed to resume: {"state": {index: {name: copy}}, "param_groups": [settings]},
        parameters numbered 0, 1, ... in group order (PyTorch's format)."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {index[id(p)]: {k: _copy(v) for k, v in s.items()} for p, s in self.state.items()}
        groups = [{**{k: _copy(v) for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]  # fmt: skip
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore settings and running state saved by state_dict() (copies: the saved dict stays intact)."""
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"load_state_dict: saved groups hold {[len(g['params']) for g in groups]} parameters, "
                f"this optimizer's {[len(g['params']) for g in self.param_groups]}"
            )
        params = self._all_params()
        for group, saved in zip(self.param_groups, groups):
            group.update({k: _copy(v) for k, v in saved.items() if k != "params"})
        self.state = {params[int(i)]: {k: _copy(v) for k, v in s.items()} for i, s in state_dict["state"].items()}

    def _all_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def memory_bytes(self):
        """Bytes held by the optimizer's state arrays (0 before the first step)."""
        return sum(v.nbytes for s in self.state.values() for v in s.values() if isinstance(v, np.ndarray))

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({sum(len(g['params']) for g in self.param_groups)} parameters, {settings})"


# %% [markdown]
# ## 2. SGD, with momentum, Nesterov momentum and weight decay
#
# With `g` the gradient, PyTorch's `SGD` does (every operation elementwise):
#
# ```
#   g ← g + weight_decay · p                    L2 penalty ½·wd·‖p‖² added to the loss
#   if momentum:
#       b ← g                  at the first step, afterwards   b ← momentum · b + g
#       g ← g + momentum · b   if nesterov (look ahead along the velocity)   else   g ← b
#   p ← p - lr · g
# ```
#
# The momentum buffer `b` is a running sum of past gradients, each older one discounted by
# `momentum` (0.9: about the last 10 steps count). Where gradients keep pointing the same way, `b`
# grows up to 1/(1 - 0.9) = 10 times one gradient; where they flip sign every step (the zig-zag
# across a valley), they cancel out.
#
# First the naive version: correct, one element at a time.

# %%
def sgd_step_naive(params, lr):
    """p ← p - lr · grad for every element of every parameter, in a Python loop."""
    for p in params:
        flat, grad = p.data.reshape(-1), _grad(p).reshape(-1)
        for i in range(flat.size):
            flat[i] -= lr * grad[i]


# %%
#| export
class SGD(Optimizer):
    """Stochastic gradient descent: SGD(params, lr, momentum=0, weight_decay=0, nesterov=False)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    def update(self, p, grad, state, group):
        ### HINT: add weight_decay * p.data to grad; with momentum keep state["momentum_buffer"] (a copy of g at the first step); p.data -= lr * g
        ### BEGIN SOLUTION
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(grad, dtype=p.dtype)  # a copy, never the .grad array
            else:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                buffer += grad
            buffer = state["momentum_buffer"]
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * grad
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: SGD against the formulas, by hand, and naive against vectorised (measured)

# %%
w = Parameter(np.array([1.0, -2.0], dtype=np.float32))
opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.5)
w.grad = Tensor(np.array([1.0, 1.0], dtype=np.float32))
opt.step()  # g = 1 + 0.5·w = [1.5, 0]; b = g; w -= 0.1·b
assert np.allclose(w.data, [0.85, -2.0]) and np.allclose(opt.state[w]["momentum_buffer"], [1.5, 0.0])
opt.step()  # g = 1 + 0.5·w = [1.425, 0]; b = 0.9·b + g = [2.775, 0]
assert np.allclose(w.data, [0.85 - 0.2775, -2.0])
nesterov = Parameter(np.array([0.0], dtype=np.float32))
opt = SGD([nesterov], lr=1.0, momentum=0.5, nesterov=True)
for _ in range(2):
    nesterov.grad = Tensor(np.array([1.0], dtype=np.float32))
    opt.step()  # step 1: b = 1, g = 1 + 0.5 = 1.5;  step 2: b = 1.5, g = 1 + 0.75 = 1.75
assert np.allclose(nesterov.data, [-3.25])

set_seed(0)
big = [Parameter(np.random.default_rng(0).standard_normal(20_000).astype(np.float32))]
big[0].grad = Tensor(np.ones(20_000, dtype=np.float32))
naive_s, _ = time_it(sgd_step_naive, big, 1e-3, repeat=1, warmup=0)
fast_s, _ = time_it(SGD(big, lr=1e-3).step)
print(f"SGD step on 20,000 numbers: element loop {naive_s * 1e3:.1f} ms, vectorised {fast_s * 1e6:.0f} µs "
      f"({naive_s / fast_s:.0f}x)")  # fmt: skip

# %% [markdown]
# ### What momentum buys, measured on a narrow valley
#
# `f(x, y) = x² / 2 + 50 · y²`: curvature 1 along x, 100 along y. Plain gradient descent must keep
# `lr < 2 / 100` or it diverges along y, and with such a step it needs hundreds of steps along x.
# Momentum accumulates speed along x while the oscillations along y cancel. (Momentum also lowers
# the largest stable step -- Nesterov's more so -- so we compare all three at lr = 0.01.)

# %%
def steps_to_converge(optimizer_cls, tol=1e-3, **settings):
    point = Parameter(np.array([10.0, 1.0]))
    optimizer = optimizer_cls([point], **settings)
    for step in range(1, 5001):
        point.grad = Tensor(np.array([1.0, 100.0]) * point.data)  # the gradient of f
        optimizer.step()
        if np.abs(point.data).max() < tol:
            return step
    return None


valley = {
    "SGD": steps_to_converge(SGD, lr=0.01),
    "SGD momentum=0.9": steps_to_converge(SGD, lr=0.01, momentum=0.9),
    "SGD nesterov momentum=0.9": steps_to_converge(SGD, lr=0.01, momentum=0.9, nesterov=True),
}
for name, steps in valley.items():
    print(f"lr=0.01 {name:26} {steps} steps to reach |x|, |y| < 1e-3")
assert valley["SGD momentum=0.9"] < valley["SGD"] / 5 and valley["SGD nesterov momentum=0.9"] < valley["SGD"] / 5

# %% [markdown]
# ## 3. Adam, AdamW and RMSprop: a step size per number
#
# **RMSprop** (Hinton, 2012) divides each gradient by a running root-mean-square of that number's
# recent gradients: large, noisy gradients get small steps, tiny consistent ones get large steps.
# **Adam** (Kingma & Ba, 2015) adds momentum on top -- both running averages, with a correction for
# their start at zero:
#
# ```
#   Adam, step t = 1, 2, …                         RMSprop
#   g ← g + weight_decay · p                       g ← g + weight_decay · p
#   m ← β1 · m + (1 - β1) · g       (momentum)     v ← α · v + (1 - α) · g²
#   v ← β2 · v + (1 - β2) · g²      (scale)        u ← g / (√v + eps)
#   m̂ = m / (1 - β1ᵗ),  v̂ = v / (1 - β2ᵗ)          if momentum:  b ← momentum · b + u ;  u ← b
#   p ← p - lr · m̂ / (√v̂ + eps)                    p ← p - lr · u
# ```
#
# Without the correction, `m` after the first step is only `(1 - β1)·g = 0.1·g`; dividing by
# `1 - β1ᵗ` (0.1 at t = 1, → 1 later) undoes that start-up bias.
#
# **AdamW** (Loshchilov & Hutter, 2019) fixes how Adam treats weight decay. In Adam the decay term
# `wd · p` joins the gradient and is then divided by √v̂ -- parameters with large gradients are
# barely decayed. AdamW *decouples* it: shrink the weights directly, `p ← p - lr · wd · p`, then
# take the Adam step on the plain gradient. That is what "weight decay" means in modern training.
#
# The state arrays are updated in place (`m *= β1; m += (1 - β1) · g`): a step allocates only a few
# temporaries instead of new state arrays.

# %%
#| export
class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0): L2 decay added to the gradient."""

    decoupled = False  # AdamW sets True: decay the weights directly instead

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        ### HINT: decay (decoupled: p.data *= 1 - lr*wd; else grad = grad + wd*p), create state step/exp_avg/exp_avg_sq (zeros) once, update m and v in place, p.data -= lr * m_hat / (sqrt(v_hat) + eps)
        ### BEGIN SOLUTION
        if wd and self.decoupled:
            p.data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        # lr · m̂ / (√v̂ + eps), arranged as PyTorch does: fewer passes over the arrays
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
        p.data -= (lr / (1 - beta1**t)) * m / denom
        ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (p ← p - lr·wd·p before the Adam step); default wd=0.01."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0), as PyTorch."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum))

    def update(self, p, grad, state, group):
        ### HINT: grad += wd*p; v = alpha*v + (1-alpha)*g² in state["square_avg"]; u = g / (sqrt(v) + eps); with momentum b = momentum*b + u, u = b; p.data -= lr * u
        ### BEGIN SOLUTION
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if not state:
            state["square_avg"] = np.zeros_like(p.data)
            if group["momentum"]:
                state["momentum_buffer"] = np.zeros_like(p.data)
        v, alpha = state["square_avg"], group["alpha"]
        v *= alpha
        v += (1 - alpha) * grad * grad
        step = grad / (np.sqrt(v) + group["eps"])
        if group["momentum"]:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += step
            step = buffer
        p.data -= group["lr"] * step
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: Adam, AdamW and RMSprop against the formulas, by hand
#
# At Adam's first step `m̂ = g` and `v̂ = g²`, so every number moves by `lr · g / (|g| + eps)` --
# almost exactly `lr`, whatever the size of its gradient. That is the "per-number step size".

# %%
p = Parameter(np.array([1.0, 1.0, 1.0]))
adam = Adam([p], lr=0.1)
p.grad = Tensor(np.array([1e-3, 1.0, -1e3]))
adam.step()
assert np.allclose(p.data, [0.9, 0.9, 1.1], atol=1e-5)
p.grad = Tensor(np.array([1e-3, 1.0, -1e3]))
adam.step()  # the same gradient again: m̂ = g, v̂ = g², the same step
assert np.allclose(p.data, [0.8, 0.8, 1.2], atol=1e-5) and adam.state[p]["step"] == 2

decayed, coupled = Parameter(np.array([2.0])), Parameter(np.array([2.0]))
AdamW([decayed], lr=0.1, weight_decay=0.5).step()  # no gradient: skipped entirely
decayed.grad, coupled.grad = Tensor(np.array([0.0])), Tensor(np.array([0.0]))
AdamW([decayed], lr=0.1, weight_decay=0.5).step()  # p ← 2·(1 - 0.05) = 1.9, then Adam on g = 0 moves nothing
Adam([coupled], lr=0.1, weight_decay=0.5).step()  # g = 0 + 0.5·2 = 1, the normalised step moves by lr
assert np.allclose(decayed.data, [1.9]) and np.allclose(coupled.data, [1.9], atol=1e-6)

r = Parameter(np.array([1.0]))
rms = RMSprop([r], lr=0.01, alpha=0.9)
r.grad = Tensor(np.array([2.0]))
rms.step()  # v = 0.1·4 = 0.4; step = 2 / sqrt(0.4)
assert np.allclose(r.data, [1.0 - 0.01 * 2 / np.sqrt(0.4)])

# %% [markdown]
# ## 4. What the state costs (measured)
#
# SGD keeps nothing (or one momentum buffer per parameter); Adam keeps **two** arrays the size of
# every parameter, `m` and `v`. For a model with P float32 numbers: parameters 4P bytes, gradients
# 4P, Adam state 8P -- the optimizer alone doubles the memory of the model, which is why large
# models use 8-bit or sharded optimizer states. Measured on the MLP of the benchmarks
# (784-256-128-10):

# %%
set_seed(1)
layers = [Dense(784, 256), Dense(256, 128), Dense(128, 10)]
params = [q for layer in layers for q in layer.parameters()]
param_bytes = sum(q.data.nbytes for q in params)
for q in params:
    q.grad = Tensor(np.ones_like(q.data))
for name, optimizer in [("SGD", SGD(params, lr=0.1)), ("SGD momentum", SGD(params, lr=0.1, momentum=0.9)),
                        ("RMSprop", RMSprop(params)), ("Adam", Adam(params))]:  # fmt: skip
    step_bytes, _ = peak_memory(optimizer.step)
    print(f"{name:13} state {optimizer.memory_bytes():>9,} bytes = {optimizer.memory_bytes() / param_bytes:.0f}x "
          f"the {param_bytes:,} parameter bytes; first step allocated {step_bytes:,} bytes at peak")  # fmt: skip
adam = Adam(params)
adam.step()
assert adam.memory_bytes() == 2 * param_bytes
step_s, _ = time_it(adam.step)
print(f"one Adam step on {sum(q.size for q in params):,} parameters: {step_s * 1e3:.2f} ms")

# %% [markdown]
# The first step allocates the state, plus a few parameter-sized temporaries (`(1 - β2)·g·g`,
# the square root, the quotient): NumPy evaluates each operation into a new array. A fused kernel
# (what PyTorch's `foreach`/`fused` Adam does) would make one pass instead of about ten.
#
# ## 5. Learning-rate schedules
#
# A large learning rate makes fast progress early and bounces around the minimum late; a small one
# is the opposite. Schedules change `lr` as training goes. A scheduler holds the optimizer, and
# each `scheduler.step()` (once per epoch, or once per batch) sets every group's `"lr"` from its
# initial value `base_lr` and the number of steps taken so far, `t`:
#
# ```
#   StepLR(step_size=3, gamma=0.1)           CosineWithWarmup(warmup_steps=2, total_steps=10)
#   lr                                        lr
#   1.0 ┤━━━━━━━┓                             1.0 ┤   ╭──╮
#   0.1 ┤       ┗━━━━━━━┓                         │  ╱    ╲
#   .01 ┤               ┗━━━━━━                   │ ╱       ╲
#       └──────────────────── t                   │╱          ╲___ min_lr
#                                                 └──────────────── t
#   base_lr · gamma ** (t // step_size)       warm-up: base_lr · (t + 1) / warmup_steps
#                                             then: min_lr + (base_lr - min_lr) · (1 + cos(π·progress)) / 2
#                                             progress = (t - warmup) / (total - warmup), at most 1
# ```
#
# Warm-up matters for Adam: its first steps use a variance estimate made from a handful of
# gradients, and a few small steps while it settles avoid an early blow-up. The cosine then
# anneals smoothly to `min_lr`. `get_lr()` returns the list of learning rates for the current `t`.

# %%
#| export
class LRScheduler:
    """Base class: sets each param group's "lr" to get_lr() after every step()."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0  # scheduler steps taken so far
        self._apply()

    def get_lr(self):
        """The learning rate of each param group at step `self.last_epoch`."""
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self._apply()

    def _apply(self):
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr


class StepLR(LRScheduler):
    """Multiply the learning rate by gamma every step_size steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def get_lr(self):
        ### HINT: base_lr * gamma ** (last_epoch // step_size) for every base_lr
        ### BEGIN SOLUTION
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]
        ### END SOLUTION


class CosineWithWarmup(LRScheduler):
    """Linear warm-up to base_lr over warmup_steps, then a cosine down to min_lr at total_steps."""

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0):
        if total_steps <= warmup_steps:
            raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def get_lr(self):
        t = self.last_epoch
        ### HINT: t < warmup: base * (t + 1) / warmup; else progress = min(1, (t - warmup) / (total - warmup)) and min + (base - min) * (1 + cos(pi * progress)) / 2
        ### BEGIN SOLUTION
        if t < self.warmup_steps:
            return [base * (t + 1) / self.warmup_steps for base in self.base_lrs]
        progress = min(1.0, (t - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        cosine = (1 + math.cos(math.pi * progress)) / 2
        return [self.min_lr + (base - self.min_lr) * cosine for base in self.base_lrs]
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: schedules, by hand

# %%
opt = SGD([Parameter(np.zeros(1))], lr=1.0)
step_lr = StepLR(opt, step_size=3, gamma=0.1)
lrs = []
for _ in range(7):
    lrs.append(opt.param_groups[0]["lr"])
    step_lr.step()
assert np.allclose(lrs, [1, 1, 1, 0.1, 0.1, 0.1, 0.01])

opt = SGD([{"params": [Parameter(np.zeros(1))], "lr": 1.0}, {"params": [Parameter(np.zeros(1))], "lr": 0.5}])
cosine = CosineWithWarmup(opt, warmup_steps=2, total_steps=6, min_lr=0.1)
lrs = []
for _ in range(8):
    lrs.append(cosine.get_lr())
    cosine.step()
expected = [0.5, 1.0, 1.0, 0.1 + 0.9 * (1 + np.cos(np.pi / 4)) / 2, 0.55, 0.1 + 0.9 * (1 + np.cos(3 * np.pi / 4)) / 2, 0.1, 0.1]
assert np.allclose([lr[0] for lr in lrs], expected) and np.isclose(lrs[1][1], 0.5)
print("cosine with warm-up:", [round(lr[0], 3) for lr in lrs])

# %% [markdown]
# ## 6. Gradient clipping
#
# One bad batch can produce a gradient a thousand times larger than usual and throw the
# parameters far away. `clip_grad_norm(params, max_norm)` measures the **total** norm of all
# gradients together, `‖g‖ = sqrt(Σ over every number of g²)`, and if it exceeds `max_norm` scales
# every gradient by `max_norm / ‖g‖` -- the direction is kept, only the length is capped. It returns
# the norm before clipping (worth logging: spikes reveal instabilities). Recurrent networks and
# transformers clip routinely.

# %%
#| export
def clip_grad_norm(params, max_norm):
    """Scale all gradients together so their total L2 norm is at most max_norm; return the norm before."""
    params = [p for p in params if p.grad is not None]
    ### HINT: total = sqrt(sum of (grad ** 2).sum() over params); if total > max_norm multiply each grad array in place by max_norm / (total + 1e-6)
    ### BEGIN SOLUTION
    total = math.sqrt(sum(float(np.sum(np.square(_grad(p), dtype=np.float64))) for p in params))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            _grad(p)[...] *= scale
    ### END SOLUTION
    return total


clip_grad_norm_ = clip_grad_norm  # PyTorch's name (its trailing _ says "in place")

# %% [markdown]
# ### 🧪 Check: clipping keeps the direction

# %%
a, b = Parameter(np.array([3.0])), Parameter(np.array([[4.0, 0.0]]))
a.grad, b.grad = Tensor(np.array([3.0])), Tensor(np.array([[4.0, 0.0]]))
assert clip_grad_norm([a, b], max_norm=1.0) == 5.0
assert np.allclose(a.grad.data, [0.6], atol=1e-6) and np.allclose(b.grad.data, [[0.8, 0.0]], atol=1e-6)
assert np.isclose(clip_grad_norm([a, b], max_norm=10.0), 1.0) and np.allclose(a.grad.data, [0.6], atol=1e-6)

# %% [markdown]
# ## 7. Putting it together: fitting a line
#
# `y = 3x - 2` plus noise, one `Dense(1, 1)` layer, mean squared error. The full training loop --
# zero the gradients, forward, loss, backward, step -- with each optimizer, from the same start:

# %%
def fit_line(make_optimizer, steps=200):
    """Train Dense(1, 1) on y = 3x - 2 + noise; return the loss after every step and the final (w, b)."""
    set_seed(0)
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
    y = 3 * x - 2 + 0.05 * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    model, loss_fn = Dense(1, 1), MeanSquaredError()
    optimizer = make_optimizer(model.parameters())
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(x)), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, model.weights.data.item(), model.bias.data.item()


results = {
    "SGD lr=0.1": fit_line(lambda ps: SGD(ps, lr=0.1)),
    "SGD lr=0.1 momentum=0.9": fit_line(lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
    "Adam lr=0.1": fit_line(lambda ps: Adam(ps, lr=0.1)),
    "RMSprop lr=0.01": fit_line(lambda ps: RMSprop(ps, lr=0.01)),
}
print(f"{'':26} loss after 10, 50, 200 steps   fitted line")
for name, (losses, weight, bias) in results.items():
    print(f"{name:26} {losses[9]:8.4f} {losses[49]:8.4f} {losses[-1]:8.5f}   y = {weight:.3f}·x {bias:+.3f}")
losses, weight, bias = results["SGD lr=0.1 momentum=0.9"]
assert losses[-1] < 0.003 and abs(weight - 3) < 0.05 and abs(bias + 2) < 0.05

# %% [markdown]
# ### 🧪 Check: save after 20 Adam steps, resume in a fresh model and optimizer, match bit for bit


# %%
def adam_steps(model, optimizer, steps):
    x = Tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(-1, 1))
    for _ in range(steps):
        optimizer.zero_grad()
        MeanSquaredError()(model(x), 3 * x.data - 2).backward()
        optimizer.step()


set_seed(0)
model = Dense(1, 1)
optimizer = Adam(model.parameters(), lr=0.05)
adam_steps(model, optimizer, 20)
saved_model, saved_optimizer = model.state_dict(), optimizer.state_dict()
assert saved_optimizer["state"][0]["step"] == 20 and saved_optimizer["param_groups"][0]["params"] == [0, 1]
adam_steps(model, optimizer, 20)
resumed = Dense(1, 1)
resumed.load_state_dict(saved_model)
resumed_optimizer = Adam(resumed.parameters(), lr=1.0)  # the saved lr (0.05) replaces this one
resumed_optimizer.load_state_dict(saved_optimizer)
adam_steps(resumed, resumed_optimizer, 20)
assert resumed.weights.data.item() == model.weights.data.item() and resumed.bias.data.item() == model.bias.data.item()
assert saved_optimizer["state"][0]["step"] == 20  # loading copied the arrays: the saved dict is intact

# %% [markdown]
# The noise has variance 0.05² = 0.0025, so a loss near 0.0018-0.0025 is as good as any line can
# do. RMSprop with lr = 0.01 moves each number by at most about 0.1 per step (lr / √(1 - α) at the
# first step, less once v has grown), whatever its gradient: it is still on its way -- a reminder that "adaptive" optimizers still need a learning
# rate that suits the problem.

# %% [markdown]
# ## What you built
#
# `SGD` (momentum, Nesterov, weight decay), `Adam`, `AdamW` (decoupled decay), `RMSprop` -- the
# formulas of PyTorch, checked by hand here and against PyTorch in `tests/parity/` -- with parameter
# groups, per-parameter `.state` and `memory_bytes()`; `StepLR` and `CosineWithWarmup`;
# `clip_grad_norm` (also spelled `clip_grad_norm_`, PyTorch's name); `state_dict()` and
# `load_state_dict()` for exact resumes. Run `tito module complete 10_optimizers` to unlock checkpoint 09.
# Next: **Module 11 · Training**, which wraps this loop into a `Trainer`.
