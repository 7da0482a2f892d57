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
# # Module 03 · Activations: the spark of intelligence
#
# Stack two linear layers and you get... one linear layer: `(x @ W1) @ W2 = x @ (W1 @ W2)`. Without
# something nonlinear between them, depth buys nothing. Activation functions are that something:
# cheap elementwise bends that let a network approximate any function.
#
# ```
#   ReLU            Sigmoid            Tanh              GELU
#     │   /          1 ┤    ____        1 ┤   ___           │   /
#     │  /             │  /               │  /              │  /
#  ───┼─/───      0.5 ┤ /             ──┼─/──          ───┼_/───
#     │                │/               -1┤_/               │
# ```
#
# Two rules for this module: **vectorise** (never loop over elements) and **stay finite** (inputs of
# ±10,000 happen in practice, e.g. attention scores; an overflow to `inf` or `nan` poisons training).
#
# Each activation is a small class: build it once, call it like a function (`relu(x)`), just like
# PyTorch's `nn.ReLU()`. Each records its own operation name (`"relu"`, `"softmax"`, ...) through
# `Tensor.from_op`, so Module 09 can give it a backward rule, and tells it what that rule will read
# (`keep=("output",)` or `("inputs",)`, Module 02 section 6): the graph keeps those values alive.
#
# That shape -- an object built once and called, whose `__call__` runs `forward` -- is the one every
# later part shares. Module 04's `Module` (layers and models) adds parameters, sub-layers and
# train/eval modes; Module 09's losses are Modules whose `forward` takes the target too. PyTorch
# makes activations Modules as well; ours come first, before there is a Module, so `Activation` is
# the protocol at its smallest (no parameters, no state) and Module 04 treats one as a child that
# owns no parameters.

# %%
#| default_exp core.activations

# %%
#| export
import numpy as np

from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.setup import time_it

# %% [markdown]
# ## 1. ReLU: max(0, x) -- naive against vectorised
#
# ReLU is the workhorse of deep learning: free to compute, and its gradient (0 or 1) does not
# shrink as it flows back through many layers. First the obvious loop, then one NumPy call.

# %%
def relu_naive(values):
    """ReLU one element at a time: correct, and slow."""
    out = np.empty_like(values)
    flat_in, flat_out = values.ravel(), out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = flat_in[i] if flat_in[i] > 0 else 0.0
    return out


# %%
#| export
class Activation:
    """Base class: an activation is called like a function and computes `forward`."""

    def __call__(self, x):
        return self.forward(x if isinstance(x, Tensor) else Tensor(x))

    def forward(self, x):
        raise NotImplementedError

    def parameters(self):
        return []  # activations have nothing to learn

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """max(0, x), elementwise."""

    def forward(self, x):
        """Recorded as "relu" (nothing saved), keeping the output (it shows where x > 0); Module 09's
        `_relu_backward` runs it backwards."""
        ### HINT: max(0, x) for every element, with one vectorised NumPy call on x.data (no loop), recorded with
        ### HINT: Tensor.from_op under the name 'relu' with x as the parent, keeping the output.
        ### BEGIN SOLUTION
        return Tensor.from_op(np.maximum(x.data, 0), "relu", (x,), ("output",))
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: ReLU values, and the loop measured against the vectorised call

# %%
relu = ReLU()
assert relu(Tensor([-2.0, -0.5, 0.0, 0.5, 2.0])).data.tolist() == [0.0, 0.0, 0.0, 0.5, 2.0]
activations = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
loop_s, loop_out = time_it(relu_naive, activations, repeat=1)
fast_s, fast_out = time_it(lambda: relu(Tensor(activations)).data)
assert np.array_equal(loop_out, fast_out)
print(f"ReLU on 65,536 values: loop {loop_s * 1e3:.1f} ms, vectorised {fast_s * 1e6:.0f} µs ({loop_s / fast_s:.0f}x)")

# %% [markdown]
# ## 2. Sigmoid and Tanh: squashing, without overflow
#
# `sigmoid(x) = 1 / (1 + exp(-x))` squashes to (0, 1), a probability. The textbook formula
# overflows: `exp(10000)` is `inf` in float32 (the largest float32 is about 3.4e38 = e^88). The
# result happens to come out right (1 / inf = 0) but NumPy warns, and its gradient would be `nan`.
# The identity `sigmoid(x) = (1 + tanh(x / 2)) / 2` never overflows: tanh saturates at ±1.

# %%
with np.errstate(over="raise"):
    try:
        1 / (1 + np.exp(-np.float32(-10000)))
        raise AssertionError("expected an overflow")
    except FloatingPointError:
        print("naive sigmoid(-10000) overflows: exp(10000) is too large for float32")

# %%
#| export
class Sigmoid(Activation):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so that it never overflows."""

    def forward(self, x):
        """Recorded as "sigmoid" (nothing saved), keeping the output (the derivative is made of it); Module 09's
        `_sigmoid_backward` runs it backwards."""
        ### HINT: Use the identity from the text, which goes through tanh and never overflows, on x.data; record it as
        ### HINT: 'sigmoid', keeping the output.
        ### BEGIN SOLUTION
        return Tensor.from_op(0.5 * (1 + np.tanh(0.5 * x.data)), "sigmoid", (x,), ("output",))
        ### END SOLUTION


class Tanh(Activation):
    """tanh(x): like sigmoid but centred on zero, range (-1, 1)."""

    def forward(self, x):
        """Recorded as "tanh" (nothing saved), keeping the output (the derivative is made of it); Module 09's
        `_tanh_backward` runs it backwards."""
        ### HINT: NumPy has it: one call on x.data, recorded as 'tanh', keeping the output.
        ### BEGIN SOLUTION
        return Tensor.from_op(np.tanh(x.data), "tanh", (x,), ("output",))
        ### END SOLUTION


# %% [markdown]
# ## 3. GELU: the smooth ReLU of transformers
#
# GPT and BERT use GELU, `x · Φ(x)` where Φ is the standard normal CDF: inputs are weighted by how
# likely they are to be positive. We use the tanh approximation from the GELU paper (also GPT-2's):
#
# `gelu(x) = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`
#
# For x = ±1e4 the cube is 1e12, fine in float32 (max 3.4e38), and tanh saturates, so it is stable.

# %%
#| export
GELU_C = float(np.sqrt(2.0 / np.pi))  # Python floats, so float32 inputs stay float32
GELU_CUBIC = 0.044715  # the cubic term's coefficient; autograd's gelu rule imports both constants


class GELU(Activation):
    """Gaussian error linear unit (tanh approximation, as in GPT-2)."""

    def forward(self, x):
        """Recorded as "gelu" (nothing saved), keeping the input (the rule recomputes from it); Module 09's
        `_gelu_backward` runs it backwards."""
        ### HINT: The tanh approximation from the text, computed on the array x.data (not on the Tensor x), with the
        ### HINT: constants GELU_C = sqrt(2/pi) and GELU_CUBIC = 0.044715 defined above; record the result as 'gelu',
        ### HINT: keeping the input.
        ### BEGIN SOLUTION
        inner = GELU_C * (x.data + GELU_CUBIC * (x.data * x.data * x.data))
        return Tensor.from_op(0.5 * x.data * (1 + np.tanh(inner)), "gelu", (x,), ("inputs",))
        ### END SOLUTION


# %% [markdown]
# ## 4. Softmax and LogSoftmax: scores into probabilities
#
# `softmax(x)_i = exp(x_i) / Σ_j exp(x_j)` turns a row of scores into probabilities. Subtracting the
# row's maximum first changes nothing mathematically (it cancels between numerator and
# denominator) but makes the largest exponent exp(0) = 1: no overflow, ever.
#
# ```
#   scores  [1000, 1001, 1002]  -- naive: exp(1000) = inf, inf/inf = nan
#   - max   [  -2,   -1,    0]  -- stable: [0.090, 0.245, 0.665]
# ```
#
# `LogSoftmax` is `x - max - log(Σ exp(x - max))`: computing `log(softmax(x))` instead would take
# the log of a probability that underflowed to 0, giving -inf. The loss of Module 09 uses it.
# Both take `dim`, the axis that sums to one (default: the last).

# %%
#| export
def _shifted(x, dim):
    return x.data - x.data.max(axis=dim, keepdims=True)


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `dim`, shifted by the maximum for stability."""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        """Recorded as "softmax", saving `dim` and keeping the output; Module 09's `_softmax_backward` runs it
        backwards."""
        ### HINT: Shift the scores by their maximum along dim (the helper _shifted does it), exponentiate, divide by
        ### HINT: the sum along the same dim kept as an axis so that it broadcasts; record 'softmax' with dim=self.dim
        ### HINT: for the backward pass, keeping the output.
        ### BEGIN SOLUTION
        exps = np.exp(_shifted(x, self.dim))
        return Tensor.from_op(exps / exps.sum(axis=self.dim, keepdims=True), "softmax", (x,), ("output",), dim=self.dim)
        ### END SOLUTION

    def __repr__(self):
        return f"Softmax(dim={self.dim})"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, computed without ever taking the log of an underflowed 0."""

    def forward(self, x):
        """Recorded as "log_softmax", saving `dim` and keeping the output; Module 09's `_log_softmax_backward`
        runs it backwards."""
        ### HINT: Stay in log space: the shifted scores minus the log of the sum of their exponentials along dim (kept
        ### HINT: as an axis). Never take the log of a softmax. Record 'log_softmax' with dim=self.dim,
        ### HINT: keeping the output.
        ### BEGIN SOLUTION
        shifted = _shifted(x, self.dim)
        log_sum = np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        return Tensor.from_op(shifted - log_sum, "log_softmax", (x,), ("output",), dim=self.dim)
        ### END SOLUTION

    def __repr__(self):
        return f"LogSoftmax(dim={self.dim})"


# %% [markdown]
# ### 🧪 Check: known values and stability at ±1e4

# %%
extreme = Tensor([[-1e4, 0.0, 1e4]])
for activation in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), LogSoftmax()):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = activation(extreme)
    assert np.all(np.isfinite(out.data)) and out.dtype == np.float32, activation
assert np.allclose(Sigmoid()(Tensor([0.0, 2.0])).data, [0.5, 1 / (1 + np.exp(-2))])
assert np.allclose(Tanh()(Tensor([0.5])).data, np.tanh(0.5))
assert np.allclose(GELU()(Tensor([1.0])).data, 0.8411920)  # known value of the tanh approximation
probs = Softmax()(Tensor([[1000.0, 1001.0, 1002.0]]))
assert np.allclose(probs.data, [[0.09003057, 0.24472847, 0.66524096]])
assert np.allclose(probs.data.sum(axis=-1), 1.0)
assert np.allclose(LogSoftmax()(extreme).data, [[-2e4, -1e4, 0.0]])
print("softmax([1000, 1001, 1002]) =", probs.data.round(4))

# %% [markdown]
# ## What it costs
#
# Each activation is one pass over memory: reading and writing 4 bytes per float32 value dominates,
# not the arithmetic (an elementwise op does ~1 flop per 8 bytes moved: it is memory bound). Softmax
# makes three passes (max, exp-sum, divide). Measured on a (256, 1024) batch:

# %%
batch = Tensor(np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32))
for activation in (ReLU(), Sigmoid(), GELU(), Softmax()):
    seconds, _ = time_it(activation, batch)
    print(f"{activation!r:14} {seconds * 1e3:6.2f} ms  {2 * batch.data.nbytes / seconds / 1e9:5.1f} GB/s moved")

# %% [markdown]
# ## What you built
#
# `ReLU`, `Sigmoid`, `Tanh`, `GELU`, `Softmax` and `LogSoftmax`, vectorised and finite at ±1e4.
# Run `tito module complete 03_activations` to unlock checkpoint 02 and finish the Foundation stage.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint ReLU.forward --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `ReLU.forward` 2: np.maximum compares an array with a number element by element.
# - `Sigmoid.forward` 2: sigmoid(x) = (1 + tanh(x / 2)) / 2.
# - `Tanh.forward` 2: np.tanh.
# - `GELU.forward` 2: inner = GELU_C * (x.data + GELU_CUBIC * x.data**3); the result is 0.5 * x.data * (1 + np.tanh(inner)).
# - `Softmax.forward` 2: np.exp of the shifted scores; .sum(axis=self.dim, keepdims=True).
# - `LogSoftmax.forward` 2: shifted = _shifted(x, self.dim); subtract np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True)).
