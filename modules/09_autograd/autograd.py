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
# # Module 09 · Autograd: gradients of any computation, automatically
#
# Training means nudging every parameter against the gradient of the loss. A network has millions of
# parameters; we need **all** of their gradients, exactly, for about the price of one forward pass.
# Reverse-mode automatic differentiation (backpropagation) delivers exactly that.
#
# Since Module 02 every Tensor operation has been *recorded*: `out._op` names the operation,
# `out._parents` are its inputs (their records, `Node`s; a leaf is its Tensor), `out._saved` holds
# what the backward pass will need, and the values a rule reads were *kept* (`keep=`, Module 02
# section 6). So `y = x * x + 3 * x` left behind this graph:
#
# ```
#   x ──┐
#   x ──┴─► mul ─► a = x·x ──┐
#                             ├─► add ─► y = a + b     forward: left to right, computing values
#   3 ──┐                     │                        backward: right to left, computing gradients
#   x ──┴─► mul ─► b = 3·x ──┘                        (the three x's are one and the same tensor)
# ```
#
# The **chain rule** says how a gradient travels backwards through one operation: if `y = f(a, b)`
# and we already know `dL/dy`, then `dL/da = dL/dy · ∂y/∂a`. Each operation only needs its own
# local derivative -- a *backward rule*. Walking the graph from the output back to the inputs,
# applying each rule once, gives the gradient of the output with respect to everything:
#
# ```
#   dL/dy = 1 ──► add: passes 1 to a and to b
#                 a = x·x: dL/dx += 1 · x   (twice: x is both operands)  = 2x
#                 b = 3·x: dL/dx += 1 · 3                                 = 3
#   at x = 2:     dL/dx = 2·2 + 3 = 7
# ```
#
# This module builds the engine (`backward`), one backward rule per recorded operation, the tools
# around it (`no_grad`, `Variable`, `gradient_check`) and the losses that training minimises. After
# it, every layer of Modules 04-08 trains, without a line of them changing.

# %%
#| default_exp core.autograd

# %%
#| export
import contextlib
from typing import NamedTuple

import numpy as np

from tinytorch.core.activations import GELU_C, GELU_CUBIC
from tinytorch.core.setup import map_chunks
from tinytorch.core.spatial import batch_chunks, convolve, im2col, window_matrix
from tinytorch.core.tensor import Tensor, ValuesNotKept

# %%
import threading

from tinytorch.core.setup import peak_memory, time_it

# %% [markdown]
# ## 1. The naive way: numerical gradients
#
# The definition of a derivative gives an algorithm right away. Nudge one input by ±ε and watch the
# output: `df/dx_i ≈ (f(x + ε·e_i) - f(x - ε·e_i)) / 2ε` (central differences, error O(ε²)).
# It needs nothing but the forward function -- and **two forward passes per parameter**.

# %%
def numerical_gradient(f, x, eps=1e-6):
    """d f(x) / dx by central differences: f is called 2 * x.size times."""
    grad = np.zeros_like(x, dtype=np.float64)
    for i in range(x.size):
        step = np.zeros_like(x, dtype=np.float64)
        step.flat[i] = eps
        grad.flat[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


assert np.allclose(numerical_gradient(lambda x: (x**2 + 3 * x).sum(), np.array([2.0])), [7.0])

# %% [markdown]
# Good enough to *check* gradients (we will rely on it for exactly that), hopeless for training: a
# model with a million parameters would need two million forward passes per step. Reverse mode
# needs one forward and one backward pass, whatever the number of parameters.
#
# ## 2. The engine: walk the graph backwards
#
# `backward(y)` has three steps:
#
# 1. **Order the graph.** A node's gradient is complete only when every operation that *used* it
#    has passed its share back. So we process nodes in reverse **topological order**: the output
#    first, and each node before its parents. A depth-first search produces that order. We run it
#    with an explicit stack instead of recursion: Python allows about 1,000 nested calls, and a
#    recurrent network or a long loop easily records 10,000 operations in a chain.
# 2. **Apply the rules.** For each node, `BACKWARD_RULES[node._op](node, grad)` returns one
#    gradient per parent. Gradients reaching the same parent along several paths are **added**
#    (the multivariable chain rule: `x` in `x * x` gets `x + x`). The engine checks each answer
#    (`_parent_gradients`): a tuple with one gradient per parent, each of a shape that broadcasting
#    makes from the parent's. A rule that breaks this contract raises an error naming the rule.
#    The other half of the contract is written where each operation is recorded: its docstring
#    names the operation, the `_saved` keys it stores, the values it keeps and the rule
#    (`_pow_backward`) that reads them. A rule reading values its operation did not keep is named too.
# 3. **Store on the leaves.** Leaf tensors (made by you, not by an operation: the parameters) that
#    require grad accumulate into `.grad`. Intermediate gradients live in a dictionary only until
#    their node has been processed, then they are dropped: at any moment only the gradients on the
#    "frontier" of the walk are in memory, not one per node of the graph.
#
# ```
#   topological order: x, a, b, y     the walk, reversed: y → b → a → x (a leaf: store x.grad)
#   (the constant 3 does not require grad, so it is never visited)
# ```
#
# **Broadcasting runs backwards as a sum.** In `h + bias` with `h` (32, 10) and `bias` (10,), the bias
# was stretched to (32, 10): each bias value was used 32 times, so its gradient is the sum of 32
# gradients. `unbroadcast(grad, shape)` sums over the axes broadcasting added (leading ones) or
# stretched (size 1 in `shape`), giving back the parent's shape:
#
# ```
#   grad (32, 10)  ──sum over axis 0──►  (10,)      grad (3, 4) for a (3, 1) ──sum axis 1, keepdims──► (3, 1)
# ```
#
# **Our choices, compared with PyTorch.** `.grad` is a `Tensor`, as in PyTorch -- so code and habits
# carry over (`p.grad.data`, printing a gradient, computing its norm with tensor operations) -- holding
# its own float array of the leaf's shape and dtype; an optimizer updates `p.data -= lr * p.grad.data`. Only
# leaves get `.grad` (PyTorch's default as well). Unlike PyTorch we **keep the graph** after
# `backward`, so calling it twice simply accumulates twice; the graph's memory is released when the
# output tensor is dropped (in a training loop: when `loss` is reassigned). As in PyTorch, the graph
# holds only the values some rule reads: each operation says which when it is recorded (`keep=`),
# and a rule that reads values nobody kept gets an error naming the operation.

# %%
#| export
BACKWARD_RULES = {}


def backward_rule(op):
    """Register the decorated function as the backward rule of the recorded operation `op`.

    A rule is called as rule(out, grad): `out` is the record of the result the operation produced (its
    `_parents` and `_saved` say how; `out.data` and a parent's `.data` are there when the operation
    kept them, Module 02's `keep=`) and `grad` is dL/d(out), an ndarray of out's shape. It returns one gradient
    per parent, dL/d(parent) (an ndarray, or None for a parent that does not require grad). A
    gradient may still have the broadcast shape: the engine sums it back with `unbroadcast`, and
    refuses (naming the rule) any other answer. Rules are the engine's business: their functions are
    private (`_add_backward`), so they stay out of the package's public names.
    Later modules that record new operations register their rules with this decorator.
    """

    def register(rule):
        BACKWARD_RULES[op] = rule
        return rule

    return register


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, so it has `shape` again."""
    ### HINT: sum over the extra leading axes, then with keepdims over the axes where `shape` has size 1 but grad does not
    ### BEGIN SOLUTION
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    if grad.ndim > len(shape):
        grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad
    ### END SOLUTION


# %%
#| export
def topological_order(root):
    """Every tensor requiring grad that `root` depends on, each listed after all of its parents.

    An iterative depth-first search: a node is appended once all its parents are, and an explicit
    stack replaces recursion so that graphs deeper than Python's recursion limit work.
    """
    ### HINT: stack of (node, parents_done); a first visit pushes (node, True) then its unvisited parents; append on (node, True)
    ### BEGIN SOLUTION
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
    return order
    ### END SOLUTION


def _initial_gradient(tensor, gradient):
    """dL/d(tensor) to start from: 1 for a scalar, else the caller's array (same shape)."""
    if gradient is None:
        if tensor.size != 1:
            raise RuntimeError(
                f"backward() of a tensor of shape {tensor.shape} needs a `gradient` of that shape "
                "(only a single-number output, like a loss, defaults to gradient 1)"
            )
        return np.ones_like(tensor.data)
    gradient = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=tensor.dtype)
    if gradient.shape != tensor.shape:
        raise ValueError(f"gradient has shape {gradient.shape}, the tensor has shape {tensor.shape}")
    return gradient


def _accumulate(leaf, grad):
    """Add `grad` into leaf.grad (a Tensor of the leaf's dtype), creating it on first use."""
    if leaf.grad is None:
        leaf.grad = Tensor(np.array(grad, dtype=leaf.dtype))  # a copy: `grad` may be a view of another array
    else:
        leaf.grad.data += grad


def _parent_gradients(node, grad):
    """Run the backward rule of `node` and check its answer: one gradient per parent, each of the
    parent's shape once unbroadcast (None for a parent that needs none).

    A wrong rule is named instead of trusted: a rule returning `-grad` instead of `(-grad,)` would
    otherwise hand each row of a (3, 4) gradient to the parents, silently.
    """
    rule = BACKWARD_RULES.get(node._op)
    if rule is None:
        raise NotImplementedError(
            f"no backward rule for operation '{node._op}': register one with @backward_rule('{node._op}')"
        )
    try:
        grads = rule(node, grad)
    except ValuesNotKept as error:
        raise ValuesNotKept(f"{_rule_name(node, rule)} read values nobody kept ({error}): record '{node._op}' "
                            "with the keep= its rule needs, as Module 02 section 6 explains") from None  # fmt: skip
    if not isinstance(grads, tuple) or len(grads) != len(node._parents):
        got = f"a tuple of {len(grads)}" if isinstance(grads, tuple) else f"a {type(grads).__name__}"
        raise TypeError(f"{_rule_name(node, rule)} returned {got}: it must return a tuple with one gradient "
                        f"per parent ({len(node._parents)})")  # fmt: skip
    return [
        None if parent_grad is None or not parent.requires_grad else _fitted(parent_grad, parent, node, rule, number)
        for number, (parent, parent_grad) in enumerate(zip(node._parents, grads), start=1)
    ]


def _rule_name(node, rule):
    return f"the backward rule of '{node._op}' ({rule.__name__})"


def _fitted(parent_grad, parent, node, rule, number):
    """`parent_grad` summed back to the parent's shape; an error naming the rule if no broadcast explains it."""
    parent_grad = np.asarray(parent_grad)
    if parent_grad.shape == parent.shape:
        return parent_grad  # the usual case, checked without further work
    try:
        stretched = np.broadcast_shapes(parent.shape, parent_grad.shape) == parent_grad.shape
    except ValueError:
        stretched = False
    if not stretched:
        raise ValueError(f"{_rule_name(node, rule)} gave parent {number} a gradient of shape {parent_grad.shape}; "
                         f"the parent has shape {parent.shape}, which broadcasting cannot turn into that")  # fmt: skip
    return unbroadcast(parent_grad, parent.shape)


def backward(tensor, gradient=None):
    """Accumulate d(tensor)/d(leaf) into `.grad` of every leaf tensor that requires grad.

    gradient: dL/d(tensor) of tensor's shape; may be omitted for a single-number tensor (it is 1).
    Called by `Tensor.backward`.
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward() of a tensor that does not require grad: no input had requires_grad=True, "
            "or it was computed under no_grad()"
        )
    ### HINT: grads = {id(tensor): _initial_gradient(..)}; reversed(topological_order): leaves _accumulate, others add each parent's share from _parent_gradients(node, grad)
    ### BEGIN SOLUTION
    grads = {id(tensor): _initial_gradient(tensor, gradient)}
    for node in reversed(topological_order(tensor)):
        grad = grads.pop(id(node), None)  # complete now: every consumer of `node` came before it
        if grad is None:
            continue
        if node._op is None:
            _accumulate(node, grad)
            continue
        for parent, parent_grad in zip(node._parents, _parent_gradients(node, grad)):
            if parent_grad is None:
                continue
            key = id(parent)
            grads[key] = grads[key] + parent_grad if key in grads else parent_grad
    ### END SOLUTION


# %% [markdown]
# The package's `Tensor.backward()` imports `backward` from `tinytorch.core.autograd` -- the exported
# copy of this file. While we work in this notebook, point it at the engine defined right here:

# %%
Tensor.backward = lambda self, gradient=None: backward(self, gradient)

# %% [markdown]
# ### The first rules: add and mul
#
# `z = a + b`: ∂z/∂a = ∂z/∂b = 1, so both parents receive the upstream gradient unchanged.
# `z = a · b`: ∂z/∂a = b and ∂z/∂b = a -- each parent's gradient is the upstream gradient times the
# *other* operand. We skip the work for a parent that needs no gradient (an input batch, a constant).

# %%
#| export
@backward_rule("add")
def _add_backward(out, grad):
    ### HINT: d(a+b)/da = d(a+b)/db = 1
    ### BEGIN SOLUTION
    return grad, grad
    ### END SOLUTION


@backward_rule("mul")
def _mul_backward(out, grad):
    a, b = out._parents
    ### HINT: each operand's gradient is grad times the other operand's data (None if it does not require grad)
    ### BEGIN SOLUTION
    return (grad * b.data if a.requires_grad else None, grad * a.data if b.requires_grad else None)
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: the engine on x·x + 3·x, broadcasting, accumulation, a deep chain

# %%
x = Tensor([2.0], requires_grad=True)
y = x * x + 3 * x
y.backward()
assert x.grad.data.tolist() == [7.0], "d/dx (x² + 3x) at 2 is 2·2 + 3"
y.backward()
assert x.grad.data.tolist() == [14.0], ".grad accumulates across backward calls"
x.zero_grad()
assert x.grad is None

h = Tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
bias = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
(h + bias).backward(np.arange(12, dtype=np.float32).reshape(4, 3))
assert bias.grad.data.tolist() == [18.0, 22.0, 26.0], "a broadcast bias gets the column sums"
assert bias.grad.dtype == np.float32 and bias.grad.shape == (3,)
assert unbroadcast(np.ones((2, 3, 4)), (3, 1)).tolist() == [[8.0]] * 3

deep = x
for _ in range(10_000):
    deep = deep + 1.0
deep.backward()
assert x.grad.data.tolist() == [1.0], "10,000 chained adds, no RecursionError"
print("d/dx (x² + 3x) at x = 2:", 7.0, "| deep chain of 10,000 adds: ok")

# %% [markdown]
# ### 🧪 Check: a rule that breaks the contract is named, not trusted
#
# A rule for one parent must return `(g,)`, a tuple of one. Returning the bare array `g` is an easy
# slip, and without the engine's check each *row* of `g` would be handed out as a gradient.

# %%
BACKWARD_RULES["bare"] = lambda out, grad: -grad  # the slip: should be (-grad,)
leaf = Tensor(np.ones((3, 4)), requires_grad=True)
try:
    Tensor.from_op(-leaf.data, "bare", (leaf,)).backward(np.ones((3, 4)))
    raise AssertionError("a rule returning an array instead of a tuple must be refused")
except TypeError as error:
    assert "'bare' (<lambda>)" in str(error) and "one gradient per parent (1)" in str(error), error
    assert leaf.grad is None
BACKWARD_RULES["bare"] = lambda out, grad: (np.ones(5),)  # a gradient no broadcast of (3, 4) can give
try:
    Tensor.from_op(-leaf.data, "bare", (leaf,)).backward(np.ones((3, 4)))
    raise AssertionError("a gradient of the wrong shape must be refused")
except ValueError as error:
    assert "gradient of shape (5,)" in str(error) and "(3, 4)" in str(error), error
del BACKWARD_RULES["bare"]

# %% [markdown]
# ## 3. Controlling the recording: `no_grad`, `detach`, `Variable`
#
# Recording costs time and, above all, memory: the graph keeps the intermediate results its rules read
# alive until backward. During evaluation or inference nobody will call backward, so we switch recording off.
# `no_grad()` is a context manager setting the flag `Tensor.grad_enabled` (per thread) that `from_op`
# reads; it restores the previous value on exit -- even when the block raises (a `ZeroDivisionError`
# inside `with no_grad():` must still switch recording back on, and still reach the caller), and
# when blocks nest.
# `detach()` (Module 02) cuts one tensor out of the graph: same numbers, no history.
#
# `Variable(data)` is a Tensor that requires grad by default: the name the original TinyTorch course
# (and PyTorch before 0.4) used for trainable values. Integer data becomes float32, since only
# floating-point numbers have gradients. It is a subclass, so `isinstance(v, Tensor)` holds.

# %%
#| export
@contextlib.contextmanager
def no_grad():
    """Inside `with no_grad():` operations are not recorded (results never require grad)."""
    ### HINT: save Tensor.grad_enabled, set it False, yield, and restore the saved value in `finally`
    ### BEGIN SOLUTION
    previous = Tensor.grad_enabled
    Tensor.grad_enabled = False
    try:
        yield
    finally:
        Tensor.grad_enabled = previous
    ### END SOLUTION


class Variable(Tensor):
    """A Tensor that requires grad unless told otherwise (integer data becomes float32)."""

    def __init__(self, data, dtype=None, requires_grad=True):
        array = data.data if isinstance(data, Tensor) else np.asarray(data)
        if dtype is None and array.dtype.kind != "f":
            dtype = np.float32
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)


# %% [markdown]
# ### 🧪 Check: no_grad nests and survives exceptions; detach cuts the graph

# %%
w = Variable([1, 2])
assert w.requires_grad and w.dtype == np.float32 and isinstance(w, Tensor)
with no_grad():
    assert not (w * 2).requires_grad
    with no_grad():
        pass
    assert not Tensor.grad_enabled, "leaving an inner block keeps the outer one in force"
assert Tensor.grad_enabled and (w * 2).requires_grad
try:
    with no_grad():
        raise KeyError("boom")
except KeyError:
    pass
assert Tensor.grad_enabled, "restored after an exception"
assert not (w.detach() * 2).requires_grad and np.shares_memory(w.detach().data, w.data)
serving, finished = threading.Event(), threading.Event()


def serve():  # a thread answering requests with recording off
    with no_grad():
        serving.set()
        finished.wait(10)


server = threading.Thread(target=serve)
server.start()
serving.wait(10)
assert Tensor.grad_enabled and (w * 2).requires_grad, "no_grad() in another thread leaves this one recording"
finished.set()
server.join()

# %% [markdown]
# ## 4. Trust, but verify: `gradient_check`
#
# Every rule below is a small derivation, and a wrong sign or a missing sum is easy to write and hard
# to see. The numerical gradient of section 1 catches all of them. `gradient_check(fn, *inputs)`:
#
# - turns every floating-point Tensor input into **float64** for the duration of the check (in
#   float32, rounding errors of ~1e-7 divided by ε = 1e-6 would swamp the result), in place -- so it
#   also works for a layer's own parameters passed as inputs, like
#   `gradient_check(lambda x, *params: layer(x), x, *layer.parameters())`;
# - reduces a non-scalar output to the number `L = Σ out · r` with a fixed random `r` (a random
#   projection tests every output element at once: `backward(out, r)`);
# - compares backward's gradients with central differences, element by element, like
#   `np.allclose(analytic, numeric, rtol, atol)`, and returns `(ok, max_error)` where `max_error` is the
#   largest absolute difference. The inputs get their original data, dtype and `.grad` back.

# %%
#| export
class GradientCheck(NamedTuple):
    ok: bool  # every element within atol + rtol * |numerical|
    max_error: float  # largest |analytic - numerical| over all checked elements


def gradient_check(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-5):
    """Compare backward() with central differences for every floating-point Tensor in `inputs`.

    fn(*inputs) must return a Tensor; the check runs in float64 and costs 2 forward passes per
    checked element, so keep inputs small. Returns GradientCheck(ok, max_error).
    """
    tensors = [t for t in inputs if isinstance(t, Tensor) and t.dtype.kind == "f"]
    if any(t._op is not None for t in tensors):
        raise ValueError("gradient_check needs leaf tensors as inputs (made by you, not by an operation)")
    saved = [(t.data, t.requires_grad, t.grad) for t in tensors]
    try:
        for t in tensors:
            t.data, t.requires_grad, t.grad = np.array(t.data, dtype=np.float64), True, None
        out = fn(*inputs)
        projection = np.random.default_rng(0).standard_normal(out.shape)
        backward(out, projection)

        def objective():
            with no_grad():
                return float((fn(*inputs).data * projection).sum())

        ok, max_error = True, 0.0
        for t in tensors:
            analytic = t.grad.data if t.grad is not None else np.zeros_like(t.data)
            numeric = np.empty(t.size)
            flat = t.data.reshape(-1)  # a view of the fresh contiguous copy: writing it perturbs t
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                plus = objective()
                flat[i] = original - eps
                minus = objective()
                flat[i] = original
                numeric[i] = (plus - minus) / (2 * eps)
            numeric = numeric.reshape(t.shape)
            ok &= bool(np.allclose(analytic, numeric, rtol=rtol, atol=atol))
            max_error = max(max_error, float(np.max(np.abs(analytic - numeric), initial=0.0)))
        return GradientCheck(ok, max_error)
    finally:
        for t, (data, requires_grad, grad) in zip(tensors, saved):
            t.data, t.requires_grad, t.grad = data, requires_grad, grad


# %% [markdown]
# ### 🧪 Check: gradient_check agrees with a correct rule and catches a wrong one

# %%
a, b = Tensor(np.random.default_rng(0).standard_normal((3, 4))), Tensor(np.random.default_rng(1).standard_normal(4))
result = gradient_check(lambda a, b: a * b + a, a, b)
assert result.ok and result.max_error < 1e-8, result
assert a.grad is None and a.dtype == np.float64, "inputs are restored"
BACKWARD_RULES["mul"], correct_mul = (lambda out, grad: (grad, grad)), _mul_backward  # a deliberately wrong rule
assert not gradient_check(lambda a, b: a * b, a, b).ok
BACKWARD_RULES["mul"] = correct_mul
print("gradient_check of a*b + a:", result)

# %% [markdown]
# ## 5. Arithmetic rules
#
# | operation | local derivatives | rule |
# |---|---|---|
# | `a - b` | 1, -1 | `grad`, `-grad` |
# | `-a` | -1 | `-grad` |
# | `a / b` | 1/b, -a/b² | `grad / b`, `-grad · out / b` (out = a/b, already computed) |
# | `a ** p` | p·a^(p-1) | `grad · p · a^(p-1)` |
# | `c ** a` (c a number) | c^a · ln c | `grad · out · ln c` |
# | `a.double()` (dtype change) | 1 | `grad` in a's dtype |
# | `exp(a)` | exp(a) | `grad · out` -- the forward result is the derivative |
# | `log(a)` | 1/a | `grad / a` |
#
# Reusing `out` saves recomputing: a backward rule may read its own forward result for free.

# %%
#| export
@backward_rule("sub")
def _sub_backward(out, grad):
    ### HINT: d(a-b)/da = 1, d(a-b)/db = -1
    ### BEGIN SOLUTION
    return grad, -grad
    ### END SOLUTION


@backward_rule("neg")
def _neg_backward(out, grad):
    ### HINT: d(-a)/da = -1
    ### BEGIN SOLUTION
    return (-grad,)
    ### END SOLUTION


@backward_rule("div")
def _div_backward(out, grad):
    a, b = out._parents
    ### HINT: grad / b for a, and -grad * out / b for b (out = a / b); None where not required
    ### BEGIN SOLUTION
    return (grad / b.data if a.requires_grad else None, -grad * out.data / b.data if b.requires_grad else None)
    ### END SOLUTION


@backward_rule("pow")
def _pow_backward(out, grad):
    x, p = out._parents[0], out._saved["exponent"]
    ### HINT: grad * p * x ** (p - 1), with p = out._saved["exponent"]
    ### BEGIN SOLUTION
    return (grad * p * x.data ** (p - 1),)
    ### END SOLUTION


@backward_rule("rpow")
def _rpow_backward(out, grad):
    """d/dx base**x = base**x · ln(base) (Module 02's `2 ** x`)."""
    return (grad * out.data * np.log(out._saved["base"]),)


@backward_rule("astype")
def _astype_backward(out, grad):
    """A dtype conversion (`x.double()`): the gradient goes back in the input's dtype."""
    return (grad.astype(out._parents[0].dtype),)


@backward_rule("exp")
def _exp_backward(out, grad):
    ### HINT: the derivative of exp is exp itself: out.data
    ### BEGIN SOLUTION
    return (grad * out.data,)
    ### END SOLUTION


@backward_rule("log")
def _log_backward(out, grad):
    ### HINT: d log(x)/dx = 1/x
    ### BEGIN SOLUTION
    return (grad / out._parents[0].data,)
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: known values, then finite differences with broadcasting

# %%
x = Tensor([3.0], requires_grad=True)
(x**2 / (x - 1)).backward()  # d/dx x²/(x-1) = (x² - 2x)/(x-1)² = 3/4 at x = 3
assert abs(x.grad.item() - 0.75) < 1e-6
x.zero_grad()
(x.exp() + x.log() - x.sqrt()).backward()  # e³ + 1/3 - 1/(2√3)
assert abs(x.grad.item() - (np.exp(3) + 1 / 3 - 0.5 / np.sqrt(3))) < 1e-4

generator = np.random.default_rng(2)
a = Tensor(generator.uniform(0.5, 2.0, (2, 3, 4)))
b = Tensor(generator.uniform(0.5, 2.0, (3, 1)))  # broadcasts against a
for fn in (lambda a, b: a - b, lambda a, b: -a / b, lambda a, b: (a * b) ** 1.5, lambda a, b: (a / b).exp().log()):
    assert gradient_check(fn, a, b).ok

# %% [markdown]
# ## 6. Matrix multiplication
#
# For `Z = A @ B` with A (n, k) and B (k, m), each `Z[i, j] = Σ_p A[i, p] B[p, j]`. Collecting the
# local derivatives into matrices gives the two most important formulas in deep learning:
#
# ```
#   dL/dA = dL/dZ @ Bᵀ     (n, m) @ (m, k) = (n, k)   -- the shapes leave only one way to write them
#   dL/dB = Aᵀ @ dL/dZ     (k, n) @ (n, m) = (k, m)
# ```
#
# Backward of a matmul is two matmuls of the same size: it costs twice the forward pass. The
# special cases follow NumPy's `matmul`:
# - **batched** `(B, n, k) @ (k, m)`: the batch axis is broadcast, so B's gradient sums over it.
#   Rather than computing B separate (k, m) products and summing them, we fold the batch into the
#   rows -- `A.reshape(-1, k).T @ grad.reshape(-1, m)` -- one large, BLAS-friendly product;
# - a **1-D** operand is a row vector on the left or a column vector on the right: we add that axis,
#   apply the formulas, and remove it;
# - BLAS reads matrices with real strides. A gradient that arrives as a broadcast view (the
#   zero-stride, copy-free result of `sum`'s backward, below) would make NumPy fall back to slower
#   code for *both* products, so we materialise it once first;
# - each formula reads the **other** operand only: the operation keeps A's values only when B needs
#   a gradient and B's only when A does (`keep=("other_inputs",)`, Module 02), and the rule reads
#   exactly those.

# %%
#| export
@backward_rule("matmul")
def _matmul_backward(out, grad):
    a, b = out._parents
    if any(stride == 0 and size > 1 for stride, size in zip(grad.strides, grad.shape)):
        grad = np.ascontiguousarray(grad)  # a broadcast view (from sum/mean): BLAS wants real rows, copy once
    a_shape = (1, *a.shape) if a.ndim == 1 else a.shape  # a vector on the left is a (1, k) row
    b_shape = (*b.shape, 1) if b.ndim == 1 else b.shape  # on the right a (k, 1) column
    if b.ndim == 1:
        grad = grad[..., None]
    if a.ndim == 1:
        grad = grad[..., None, :]
    grad_a = grad_b = None
    ### HINT: only for a parent that requires grad (each reads the *other* one's data, as reshaped above). dA = grad @ Bᵀ,
    ### HINT: unbroadcast to A's shape. dB = Aᵀ @ grad: when B is one (k, m) matrix shared by a batched A, fold the
    ### HINT: batch into the rows as the text shows (one product), otherwise unbroadcast to B's shape. Reshape each
    ### HINT: gradient to its parent's shape (1-D operands).
    ### BEGIN SOLUTION
    if a.requires_grad:
        B = b.data.reshape(b_shape)
        grad_a = unbroadcast(grad @ np.swapaxes(B, -1, -2), a_shape).reshape(a.shape)
    if b.requires_grad:
        A = a.data.reshape(a_shape)
        if len(b_shape) == 2 and len(a_shape) > 2:  # shared weights: fold the batch into the rows, one product
            grad_b = A.reshape(-1, A.shape[-1]).T @ grad.reshape(-1, grad.shape[-1])
        else:
            grad_b = unbroadcast(np.swapaxes(A, -1, -2) @ grad, b_shape)
        grad_b = grad_b.reshape(b.shape)
    ### END SOLUTION
    return grad_a, grad_b


# %% [markdown]
# ### 🧪 Check: a known 2×2 case, then every shape combination

# %%
A = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
B = Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
(A @ B).backward(np.ones((2, 2)))  # dL/dZ = ones: dA = ones @ Bᵀ (row sums of B), dB = Aᵀ @ ones (column sums of A)
assert A.grad.data.tolist() == [[11.0, 15.0], [11.0, 15.0]]
assert B.grad.data.tolist() == [[4.0, 4.0], [6.0, 6.0]]

for shape_a, shape_b in [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((4,), (4, 2)),
                         ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((3, 4), (2, 4, 5))]:  # fmt: skip
    a, b = Tensor(generator.standard_normal(shape_a)), Tensor(generator.standard_normal(shape_b))
    assert gradient_check(lambda a, b: a @ b, a, b).ok, (shape_a, shape_b)

# %% [markdown]
# ## 7. Reductions
#
# - `sum`: every input element contributed with weight 1, so each receives the gradient of the sum
#   it went into. We give the gradient its reduced axes back (size 1) and **broadcast** it to the
#   input's shape -- `np.broadcast_to` makes a read-only view: no copy, however large the input.
# - `mean` over n elements: the same, divided by n.
# - `max`: only the element that *was* the maximum influenced the result, so it takes the whole
#   gradient; the others get 0. When several elements tie for the maximum, the function has no
#   derivative there; we **split the gradient evenly** among them (as PyTorch's `amax` does), so the
#   result does not depend on their order. (PyTorch's `max_pool2d` instead picks one of them; on
#   real-valued data ties are rare.)

# %%
#| export
def _unreduce(grad, saved):
    """Give a reduction's gradient back the axes it removed (as size 1), so it broadcasts to the input."""
    if saved["axis"] is None or saved["keepdims"]:
        return grad  # already broadcastable: a single number, or reduced axes were kept
    return np.expand_dims(grad, saved["axis"])


@backward_rule("sum")
def _sum_backward(out, grad):
    x = out._parents[0]
    ### HINT: broadcast _unreduce(grad, out._saved) to x's shape (np.broadcast_to: a view, no copy)
    ### BEGIN SOLUTION
    return (np.broadcast_to(_unreduce(grad, out._saved), x.shape),)
    ### END SOLUTION


@backward_rule("mean")
def _mean_backward(out, grad):
    x = out._parents[0]
    ### HINT: like sum, divided by the number of elements averaged: x.size / out.size
    ### BEGIN SOLUTION
    return (np.broadcast_to(_unreduce(grad, out._saved) / (x.size / out.size), x.shape),)
    ### END SOLUTION


@backward_rule("max")
def _max_backward(out, grad):
    x, axis = out._parents[0], out._saved["axis"]
    ### HINT: mask = x == the (unreduced) max; grad goes to the mask, divided by the number of ties (mask.sum with keepdims)
    ### BEGIN SOLUTION
    winners = x.data == _unreduce(out.data, out._saved)
    ties = winners.sum(axis=axis, keepdims=True, dtype=grad.dtype)
    return (winners * (_unreduce(grad, out._saved) / ties),)
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: ties split evenly; every axis combination against finite differences

# %%
x = Tensor([[1.0, 5.0, 5.0], [2.0, 0.0, 1.0]], requires_grad=True)
x.max(axis=1).sum().backward()
assert x.grad.data.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
x.zero_grad()
x.mean().backward()
assert np.allclose(x.grad.data, 1 / 6)

x = Tensor(generator.standard_normal((2, 3, 4)))
for axis in (None, 0, -1, (0, 2)):
    for keepdims in (False, True):
        for reduce in (Tensor.sum, Tensor.mean, Tensor.max):
            assert gradient_check(lambda x: reduce(x, axis=axis, keepdims=keepdims), x).ok, (reduce, axis, keepdims)

# %% [markdown]
# ## 8. Shape operations and indexing
#
# Moving numbers around does not change them, so the gradient is moved back the same way:
# - `reshape`: reshape the gradient to the input's shape;
# - `permute(dims)`: apply the **inverse** permutation, `np.argsort(dims)` (if axis 0 went to
#   position 2, position 2 must go back to axis 0);
# - `x[index]`: the gradient of each picked element goes back where it was picked from, zeros
#   elsewhere. A fancy index can pick the **same element twice** (an embedding lookup of a repeated
#   token does): `grad_x[index] += grad` would then keep only one of the two contributions, because
#   NumPy writes buffered results; `np.add.at` adds every one. For basic indices (ints, slices) no
#   element repeats, so a plain assignment does, faster.

# %%
#| export
@backward_rule("reshape")
def _reshape_backward(out, grad):
    ### HINT: reshape grad to the parent's shape
    ### BEGIN SOLUTION
    return (grad.reshape(out._parents[0].shape),)
    ### END SOLUTION


@backward_rule("permute")
def _permute_backward(out, grad):
    ### HINT: np.transpose(grad, np.argsort(dims)) undoes the permutation
    ### BEGIN SOLUTION
    return (np.transpose(grad, np.argsort(out._saved["dims"])),)
    ### END SOLUTION


def _is_basic(index):
    """True for indices made only of ints, slices, None and Ellipsis (never select an element twice)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


@backward_rule("getitem")
def _getitem_backward(out, grad):
    x, index = out._parents[0], out._saved["index"]
    ### HINT: zeros of x's shape; assign grad at index for basic indices, np.add.at for fancy ones (repeats add up)
    ### BEGIN SOLUTION
    grad_x = np.zeros(x.shape, dtype=grad.dtype)
    if _is_basic(index):
        grad_x[index] = grad
    else:
        np.add.at(grad_x, index, grad)
    return (grad_x,)
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: a repeated index accumulates; shape ops against finite differences

# %%
table = Tensor(np.zeros((4, 2)), requires_grad=True)
table[np.array([1, 3, 1])].sum().backward()  # row 1 looked up twice
assert table.grad.data[:, 0].tolist() == [0.0, 2.0, 0.0, 1.0]

x = Tensor(generator.standard_normal((2, 3, 4)))
for fn in (lambda x: x.reshape(4, 6) * 2, lambda x: x.permute(2, 0, 1) @ np.ones((3, 1)), lambda x: x.T * x.T,
           lambda x: x[1, :, ::2] * 3, lambda x: x[:, np.array([0, 2, 0])] ** 2, lambda x: x[x.data > 0],
           lambda x: x[np.array([1, 0]), np.array([2, 2])], lambda x: x[..., None, 1]):  # fmt: skip
    assert gradient_check(fn, x).ok

# %% [markdown]
# ## 9. Activations
#
# Each derivative is written in terms of the forward result when that is cheaper:
#
# | activation | derivative |
# |---|---|
# | ReLU | 1 where x > 0, else 0 (at exactly 0 we use 0, like PyTorch) |
# | sigmoid s | s · (1 - s) |
# | tanh t | 1 - t² |
# | GELU (tanh approx.) `0.5x(1 + tanh u)`, `u = c(x + 0.044715x³)` | `0.5(1 + tanh u) + 0.5x(1 - tanh²u) · c(1 + 3·0.044715x²)` |
# | softmax s (along dim) | `s · (grad - Σ grad·s)` -- the Jacobian `diag(s) - s sᵀ`, never built |
# | log-softmax (along dim) | `grad - softmax · Σ grad`, with softmax = exp(out) |
#
# The softmax rules are worth a second look: the full Jacobian of a softmax over C classes is C×C
# per row, but applying it to a vector needs only one dot product per row -- O(C) instead of O(C²).
#
# GELU's rule is worth a look for **memory**. In a transformer it runs on the widest activation,
# four times the model's width, and written as one expression, `0.5 * (1 + t) + 0.5 * x * ...`,
# NumPy allocates a temporary array for almost every operator: five arrays of x's size alive at the
# peak, the largest spike of the whole backward pass of `make bench`'s TinyGPT. Factored,
# `0.5(1 + t)(1 + (1 - t)·x·c(1 + 3·0.044715x²))` (since 1 - t² = (1 - t)(1 + t)), and computed
# **in place** (`u *= x`, `np.tanh(t, out=t)`), it needs three. The check below measures both.

# %%
#| export
@backward_rule("relu")
def _relu_backward(out, grad):
    ### HINT: gradient passes where the output is positive
    ### BEGIN SOLUTION
    return (grad * (out.data > 0),)
    ### END SOLUTION


@backward_rule("sigmoid")
def _sigmoid_backward(out, grad):
    ### HINT: s * (1 - s) with s = out.data
    ### BEGIN SOLUTION
    s = out.data
    return (grad * s * (1 - s),)
    ### END SOLUTION


@backward_rule("tanh")
def _tanh_backward(out, grad):
    ### HINT: 1 - t² with t = out.data
    ### BEGIN SOLUTION
    return (grad * (1 - out.data * out.data),)
    ### END SOLUTION


@backward_rule("gelu")
def _gelu_backward(out, grad):
    x = out._parents[0].data
    ### HINT: t = tanh(GELU_C·(x + GELU_CUBIC·x³)), u = GELU_C·x·(1 + 3·GELU_CUBIC·x²); the gradient is
    ### HINT: grad · 0.5(1 + t)(1 + (1 - t)·u). In place (`u *= x`, `np.tanh(t, out=t)`): at most three arrays of x's size
    ### BEGIN SOLUTION
    u = x * x
    t = GELU_CUBIC * u  # t = tanh(GELU_C·(x + GELU_CUBIC·x³)), built in its own buffer
    t += 1
    t *= x
    t *= GELU_C
    np.tanh(t, out=t)
    u *= 3 * GELU_CUBIC  # u = GELU_C·x·(1 + 3·GELU_CUBIC·x²)
    u += 1
    u *= x
    u *= GELU_C
    u -= t * u  # then u = 0.5·(1 + t)·(1 + (1 - t)·u)·grad, the gradient, in the same buffer
    u += 1
    t += 1
    u *= t
    u *= grad
    u *= 0.5
    return (u,)
    ### END SOLUTION


@backward_rule("softmax")
def _softmax_backward(out, grad):
    s, dim = out.data, out._saved["dim"]
    ### HINT: s * (grad - (grad * s).sum(axis=dim, keepdims=True))
    ### BEGIN SOLUTION
    return (s * (grad - (grad * s).sum(axis=dim, keepdims=True)),)
    ### END SOLUTION


@backward_rule("log_softmax")
def _log_softmax_backward(out, grad):
    dim = out._saved["dim"]
    ### HINT: grad - exp(out) * grad.sum(axis=dim, keepdims=True)
    ### BEGIN SOLUTION
    return (grad - np.exp(out.data) * grad.sum(axis=dim, keepdims=True),)
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: activations against finite differences, and finite gradients at ±1e4

# %%
from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh

x = Tensor(generator.standard_normal((3, 5)) * 2)
for activation in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), Softmax(dim=0), LogSoftmax(), LogSoftmax(dim=0)):
    assert gradient_check(activation, x).ok, activation

    extreme = Tensor([[-1e4, 0.5, 1e4]], requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        activation(extreme).backward(np.ones((1, 3), dtype=np.float32))
    assert np.all(np.isfinite(extreme.grad.data)), activation

def gelu_slope_one_expression(x):
    t = np.tanh(GELU_C * (x + GELU_CUBIC * x * x * x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * GELU_CUBIC * x * x)


wide_x = Tensor(generator.standard_normal((768, 512)).astype(np.float32), requires_grad=True)
ones = np.ones(wide_x.shape, dtype=np.float32)
gelu_node = GELU()(wide_x * 1.0)._node  # a recorded GELU whose input is an operation's result: kept
expression_bytes, expected = peak_memory(lambda: ones * gelu_slope_one_expression(wide_x.data))
in_place_bytes, (computed,) = peak_memory(_gelu_backward, gelu_node, ones)
assert np.allclose(computed, expected, atol=1e-5) and in_place_bytes <= 3.1 * wide_x.data.nbytes < expression_bytes
print(f"GELU backward on (768, 512): one expression peaks at {expression_bytes / wide_x.data.nbytes:.1f}x the "
      f"activation, in place {in_place_bytes / wide_x.data.nbytes:.1f}x")  # fmt: skip

# %% [markdown]
# ### Normalisation: one rule instead of a chain
#
# Module 08 records x̂ = (x − μ)·r, with r = 1/√(σ² + ε) and the statistics over `axes`, as one
# operation, "normalize", keeping only x̂ and r. Its rule follows from the chain through μ and σ²,
# which both depend on every x of the group of m values averaged:
#
# ```
#   dL/dx = r · (g − mean(g) − x̂ · mean(g · x̂))        g = dL/dx̂, means over `axes`
# ```
#
# The two means remove what the shift (μ) and the scale (σ) of the group absorb: adding a constant
# to every x of a group changes no x̂, so the gradient sums to 0 over the group. Three elementwise
# passes, against about ten for the chain of Tensor operations it replaces.

# %%
#| export
@backward_rule("normalize")
def _normalize_backward(out, grad):
    x_hat, rstd, axes = out.data, out._saved["rstd"], out._saved["axes"]
    ### HINT: rstd * (grad - mean of grad - x_hat * mean of grad * x_hat), the means over `axes` with keepdims
    ### BEGIN SOLUTION
    mean_grad = grad.mean(axis=axes, keepdims=True)
    mean_projection = (grad * x_hat).mean(axis=axes, keepdims=True)
    return (rstd * (grad - mean_grad - x_hat * mean_projection),)
    ### END SOLUTION


# %%
from tinytorch.core.normalization import BatchNorm2D, LayerNorm, normalize

x = Tensor(generator.standard_normal((4, 3, 5)) * 3 + 1)
for axes in ((0,), (2,), (0, 2), (1, 2)):
    assert gradient_check(lambda x: normalize(x, axes, 1e-5)[0], x).ok, axes
group = Tensor(x.data.copy(), requires_grad=True)
(normalize(group, (2,), 1e-5)[0] * Tensor(generator.standard_normal((4, 3, 5)))).sum().backward()
assert np.allclose(group.grad.data.sum(axis=2), 0, atol=1e-9), "a shift of a whole group changes nothing"
layer_norm = LayerNorm(5)
assert gradient_check(lambda x, *params: layer_norm(x), x, *layer_norm.parameters()).ok
assert gradient_check(lambda x: BatchNorm2D(3)(x.reshape(2, 3, 2, 5)), Tensor(generator.standard_normal(60))).ok


# %% [markdown]
# ## 10. Convolution's im2col: col2im
#
# Module 06 turned convolution into a matrix product with `im2col`: the padded input (N, C, Hp, Wp)
# becomes the windows (N, C, OH, OW, KH, KW), where `windows[..., oh, ow, i, j]` is the padded pixel
# at row `oh·stride + i`, column `ow·stride + j`. Windows overlap, so one pixel appears in up to
# KH·KW windows, and its gradient is the **sum** over all of them. Going backwards ("col2im"):
#
# ```
#   grad_padded = zeros (N, C, Hp, Wp)
#   for each kernel offset (i, j):                        # KH·KW iterations, each a whole-array add
#       grad_padded[:, :, i : i + stride·OH : stride,     # the pixels that sat at offset (i, j)
#                         j : j + stride·OW : stride] += grad[:, :, :, :, i, j]
#   grad_x = grad_padded without its padding border
# ```
#
# The loop runs over the 9 offsets of a 3×3 kernel, never over pixels: each step adds a whole
# strided slice at once. (Within one offset the target pixels are distinct, so `+=` is safe here.)
# `col2im` works on any two leading axes -- (N, C) here, (C, N) for the convolution below.
# Pooling is im2col + max/mean, already covered, with one case worth a shortcut: windows that
# **tile** the image (stride = kernel, no padding, nothing left over, as in MaxPool2D(2) on an even
# image) put every pixel in exactly one window, so there is nothing to add: each window offset's
# gradient is written into its pixels, without zeroing the image first and without reading it back
# (about twice as fast on the bench's pooling case).

# %%
#| export
def _tiles_to_image(grad_windows):
    """col2im of windows that tile the image: each offset's gradient is written, not added, once."""
    a, b, oh, ow, kh, kw = grad_windows.shape
    image = np.empty((a, b, oh * kh, ow * kw), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i::kh, j::kw] = grad_windows[:, :, :, :, i, j]
    return image


def col2im(grad_windows, image_size, stride, padding):
    """Add every window's gradient back onto the pixels it was read from.

    grad_windows (A, B, OH, OW, KH, KW) -> the gradient of the (A, B, H, W) input, (H, W) = image_size.
    """
    a, b, oh, ow, kh, kw = grad_windows.shape
    h, w = image_size
    if padding == 0 and stride == kh == kw and (h, w) == (oh * kh, ow * kw):  # the windows tile the image
        return _tiles_to_image(grad_windows)
    ### HINT: zeros (a, b, h + 2·padding, w + 2·padding); for each (i, j) add grad_windows[:, :, :, :, i, j] into the strided slice; crop the padding
    ### BEGIN SOLUTION
    padded = np.zeros((a, b, h + 2 * padding, w + 2 * padding), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += grad_windows[:, :, :, :, i, j]
    return padded[:, :, padding : padding + h, padding : padding + w]
    ### END SOLUTION


@backward_rule("im2col")
def _im2col_backward(out, grad):
    saved = out._saved
    return (col2im(grad, saved["input_shape"][2:], saved["stride"], saved["padding"]),)


# %% [markdown]
# ### 🧪 Check: col2im on a picture you can count, then finite differences

# %%
ones = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
im2col(ones, (2, 2)).sum().backward()  # how many 2×2 windows cover each pixel of a 3×3 image
assert ones.grad.data[0, 0].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
x = Tensor(generator.standard_normal((2, 2, 5, 4)))
for kernel, stride, padding in [((3, 3), 1, 1), ((3, 2), 2, 1), ((2, 2), 2, 0), ((3, 3), 2, 2)]:
    assert gradient_check(lambda x: im2col(x, kernel, stride, padding) ** 2, x).ok
tiles = generator.standard_normal((2, 3, 2, 3, 2, 2))  # 2x2 windows that tile a 4x6 image: the shortcut
assert np.array_equal(col2im(tiles, (4, 6), 2, 0), col2im(tiles, (5, 6), 2, 0)[:, :, :4])  # 5 rows: the loop

# %% [markdown]
# ### Max pooling as one operation
#
# Module 06 records `MaxPool2D` as one operation, "max_pool2d" (the separable maxima), keeping the
# input and the output. Its rule is the max rule of section 7 written for windows: the gradient of
# each window's output goes to the pixels that **won** (equal the maximum; ties share it equally),
# one window offset (i, j) at a time -- the same strided slabs as col2im, added (`+=`) because
# overlapping windows (stride < kernel) can give one pixel gradient from several windows:
#
# ```
#   ties  = Σ over offsets (i, j) of  [slab(i, j) == max]          how many pixels won each window
#   for each offset (i, j):  grad_x[..., i::stride, j::stride] += [slab(i, j) == max] · grad / ties
# ```
#
# **The shortcut for windows that tile the image** (k×k windows, stride k, nothing left over: the
# MaxPool2D(2) of nearly every network). A slab hops k pixels along every row, and NumPy loops over
# such hops several times slower than over neighbouring pixels. But when windows tile the image, a
# window's row i is a piece of image row `oh·k + i`, so `x.reshape(N, C, OH, k, W)` is a free view
# in which every window's rows are whole image rows. Widen the maxima to the image's width (each
# repeated under its window's k columns: `_widen`) and one comparison along whole rows finds every
# winner; count each window's winners (k - 1 row additions, then k - 1 strided column additions on a
# k times smaller array), widen `grad / ties` the same way, and one product along whole rows writes
# the gradient: every pixel belongs to exactly one window, so nothing is added and nothing zeroed.
# The measurement after the checks compares both on the bench's case.

# %%
#| export
def _widen(a, k):
    """(..., n) -> (..., n·k): each value repeated under k neighbouring columns, with k strided writes
    (np.repeat(a, k, axis=-1) gives the same, more slowly)."""
    wide = np.empty(a.shape + (k,), dtype=a.dtype)
    for j in range(k):
        wide[..., j] = a
    return wide.reshape(*a.shape[:-1], a.shape[-1] * k)


def _tiles_max_backward(x, maxima, grad):
    """max_pool2d's input gradient when k×k windows with stride k tile the (N, C, OH·k, OW·k) image x."""
    n, c, oh, ow = maxima.shape
    k = x.shape[2] // oh
    rows = x.reshape(n, c, oh, k, ow * k)  # a view: window row i of every window is image row oh·k + i
    won = rows == _widen(maxima, k)[:, :, :, None]  # (n, c, oh, k, W): compared along whole rows
    column_wins = won[:, :, :, 0].astype(grad.dtype)  # winners in each column of each window
    for i in range(1, k):
        column_wins += won[:, :, :, i]
    ties = column_wins[..., 0::k].copy()  # (n, c, oh, ow): winners in each window
    for j in range(1, k):
        ties += column_wins[..., j::k]
    grad_x = np.empty(x.shape, dtype=grad.dtype)
    np.multiply(won, _widen(grad / ties, k)[:, :, :, None], out=grad_x.reshape(won.shape))
    return grad_x


def _offsets_max_backward(x, maxima, grad, kernel_size, stride):
    """max_pool2d's input gradient for any windows: the winners of one window offset (i, j) at a time."""
    (kh, kw), (oh, ow) = kernel_size, maxima.shape[2:]
    windows = im2col(Tensor(x), kernel_size, stride).data  # (N, C, OH, OW, KH, KW): slab (i, j) is windows[..., i, j]
    grad_x = np.zeros(x.shape, dtype=grad.dtype)
    ### HINT: winners = one boolean slab per offset (i, j), windows[..., i, j] == maxima; ties = their sum; per offset,
    ### HINT: winner * grad / ties added into grad_x[:, :, i : i + stride·oh : stride, j : j + stride·ow : stride]
    ### BEGIN SOLUTION
    offsets = list(np.ndindex(kh, kw))
    winners = [windows[..., i, j] == maxima for i, j in offsets]
    ties = np.zeros(maxima.shape, dtype=grad.dtype)
    for won in winners:
        ties += won
    share = grad / ties
    for (i, j), won in zip(offsets, winners):
        grad_x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += won * share
    ### END SOLUTION
    return grad_x


@backward_rule("max_pool2d")
def _max_pool2d_backward(out, grad):
    x, kernel_size, stride = out._parents[0].data, out._saved["kernel_size"], out._saved["stride"]
    (kh, kw), (oh, ow) = kernel_size, out.shape[2:]
    if stride == kh == kw and x.shape[2:] == (oh * kh, ow * kw):  # the windows tile the image
        return (_tiles_max_backward(x, out.data, grad),)
    return (_offsets_max_backward(x, out.data, grad, kernel_size, stride),)


# %%
from tinytorch.core.spatial import MaxPool2D, max_pool2d

x = Tensor(generator.standard_normal((3, 2, 7, 6)))  # 7 rows: 2x2 windows leave the last one out
for kernel, stride in [((2, 2), 2), ((3, 3), 1), ((3, 2), 2)]:
    assert gradient_check(lambda x: max_pool2d(x, kernel, stride), x).ok, (kernel, stride)
for kernel in (2, 3):  # windows that tile a 6 x 6 image: the shortcut along whole rows
    assert gradient_check(lambda x: max_pool2d(x, (kernel, kernel), kernel), Tensor(x.data[:, :, :6])).ok
tie = Tensor(np.array([[5.0, 5.0], [1.0, 5.0]]).reshape(1, 1, 2, 2), requires_grad=True)
MaxPool2D(2)(tie).sum().backward()
assert tie.grad.data.ravel().tolist() == [1 / 3, 1 / 3, 0.0, 1 / 3]  # three winners share the gradient

# %% [markdown]
# The shortcut against the offset-by-offset rule on the bench's case, with ties (values rounded to
# one decimal: many windows have two or more winners):

# %%
pooled = np.round(generator.standard_normal((32, 16, 32, 32)), 1).astype(np.float32)
maxima = max_pool2d(Tensor(pooled), (2, 2), 2).data
upstream = generator.standard_normal(maxima.shape).astype(np.float32)
offsets_s, by_offsets = time_it(_offsets_max_backward, pooled, maxima, upstream, (2, 2), 2, repeat=10)
tiles_s, by_tiles = time_it(_tiles_max_backward, pooled, maxima, upstream, repeat=10)
assert np.array_equal(by_offsets, by_tiles)  # the same numbers, to the last bit
print(f"MaxPool2D(2)'s input gradient on (32, 16, 32, 32): offset by offset {offsets_s * 1e3:.2f} ms, "
      f"along whole rows {tiles_s * 1e3:.2f} ms")

# %% [markdown]
# ### Convolution as one operation: its backward rule, and why (measured)
#
# Module 06 records a convolution as one operation, `"conv2d"`, computed a chunk of images at a time
# (`batch_chunks`): `out[chunk] = W (OC, C·KH·KW) @ columns`, with `columns` the chunk's window
# matrix (C·KH·KW, n·OH·OW). It keeps the im2col view `windows`, not the window matrices. Its rule
# walks the same chunks, spread over the framework's threads like the forward's (`map_chunks`,
# Module 06 section 3): the matmul rule of section 6 plus col2im, each done in the layout that the
# chunk's product left. Each chunk writes only its own images of dx and returns its own part of dW;
# the parts are added in chunk order, so the sum does not depend on which thread finished first:
#
# ```
#   grad[chunk] (n, OC, OH, OW) ──transpose, one copy──► G (OC, n·OH·OW)    the layout of the product
#   columns  = window_matrix(windows[chunk])       (C·KH·KW, n·OH·OW)    rebuilt: one copy
#   dW_chunk = G @ columnsᵀ                        (OC, C·KH·KW)         dW = the parts' sum
#   dcolumns = Wᵀ @ G                              (C·KH·KW, n·OH·OW) = (C, KH, KW, n, OH, OW)
#   dx[chunk] = col2im over (C, n) -- each window offset adds one contiguous (C, n, OH, OW) slab --
#               written back as (n, C, H, W)
#   dbias    = grad summed over (N, OH, OW)        (OC,)
# ```
#
# Wᵀ is made contiguous before the product: a transposed operand with few rows sends OpenBLAS down
# a slower path, three to four times slower for (27, 16) here. Where did the time of the
# seven-operation chain go? Profiled on the CIFAR-sized case (numbers below): the chain copies the
# gradient between layouts at the reshapes and permutes, multiplies the transposed kernel matrix,
# and adds back the windows' gradient in (N, C) order while it lies in (C, N) order, all on
# whole-batch buffers that do not fit in cache. The single rule does each of those once, a
# cache-sized chunk at a time.

# %%
#| export
def input_grad_by_convolution(grad, weights, padding):
    """The input's gradient of a stride-1 convolution, computed as a convolution itself: the output's
    gradient (N, OC, OH, OW), zero-padded by K - 1 - padding, convolved with the kernels flipped in
    space and with their two channel axes swapped, (C, OC, KH, KW) -> (N, C, H, W)."""
    oc, c, kh, kw = weights.shape
    ### HINT: np.pad the H and W axes of grad by (kh - 1 - padding) and (kw - 1 - padding) on each side; its sliding
    ### HINT: (kh, kw) windows convolved (Module 06's `convolve`) with weights[:, :, ::-1, ::-1] transposed to
    ### HINT: (c, oc, kh, kw) and reshaped to (c, oc·kh·kw)
    ### BEGIN SOLUTION
    ph, pw = kh - 1 - padding, kw - 1 - padding
    padded = np.pad(grad, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    flipped = weights.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, oc * kh * kw)
    return convolve(windows, flipped)
    ### END SOLUTION


def _by_convolution(weights, stride, padding):
    """Whether the input's gradient is cheaper as a convolution (it needs stride 1 and padding < kernel):
    when there are no more output channels than input channels, copying the gradient's windows costs
    less than adding back the input's windows (col2im), which takes several times a copy per number."""
    oc, c, kh, kw = weights.shape
    return stride == 1 and padding < min(kh, kw) and oc <= c


@backward_rule("conv2d")
def _conv2d_backward(out, grad):
    x, weights = out._parents[:2]
    windows, stride, padding = out._saved["windows"], out._saved["stride"], out._saved["padding"]
    oc = weights.shape[0]
    ### HINT: Walk the forward's slices of images (`batch_chunks`) again, one function of a slice run by `map_chunks`.
    ### HINT: In each: the gradient in the product's layout (OC, n·OH·OW); the slice's part of dW is it times the slice's
    ### HINT: window matrix transposed (return it; dW is the sum of the parts, in slice order); dx[slice] takes col2im of
    ### HINT: Wᵀ times it (Wᵀ made contiguous once), unless `_by_convolution` says the whole dx is cheaper from
    ### HINT: `input_grad_by_convolution`; dbias sums the gradient over axes (0, 2, 3)
    ### BEGIN SOLUTION
    kernels_t = np.ascontiguousarray(weights.data.reshape(oc, -1).T)  # (C·KH·KW, OC)
    grad_x, scatter = None, x.requires_grad
    if x.requires_grad and _by_convolution(weights, stride, padding):
        grad_x, scatter = input_grad_by_convolution(grad, weights, padding), False
    elif x.requires_grad:
        grad_x = np.empty(x.shape, dtype=grad.dtype)

    def chunk_gradients(chunk):  # writes only its own images of grad_x; returns its part of grad_w
        images = windows[chunk]
        n, c, oh, ow, kh, kw = images.shape
        grad_out = np.ascontiguousarray(grad[chunk].transpose(1, 0, 2, 3)).reshape(oc, -1)
        if scatter:
            grad_windows = (kernels_t @ grad_out).reshape(c, kh, kw, n, oh, ow).transpose(0, 3, 4, 5, 1, 2)
            grad_x[chunk] = col2im(grad_windows, x.shape[2:], stride, padding).transpose(1, 0, 2, 3)
        return grad_out @ window_matrix(images).T if weights.requires_grad else None

    weight_parts = map_chunks(chunk_gradients, batch_chunks(windows))
    grad_w = sum(weight_parts).reshape(weights.shape) if weights.requires_grad else None  # summed in chunk order
    grad_bias = (grad.sum(axis=(0, 2, 3)),) if len(out._parents) == 3 else ()
    ### END SOLUTION
    return (grad_x, grad_w, *grad_bias)


# %% [markdown]
# ### 🧪 Check: the rule against finite differences, then against the chain it replaces (measured)

# %%
from tinytorch.core.spatial import Conv2D, conv2d

for stride, padding, bias in [(1, 1, True), (2, 1, False), (2, 0, True)]:
    x = Tensor(generator.standard_normal((2, 3, 6, 5)))
    weights = Tensor(generator.standard_normal((4, 3, 3, 2)))
    parameters = (x, weights, Tensor(generator.standard_normal(4))) if bias else (x, weights)
    assert gradient_check(lambda x, w, b=None: conv2d(x, w, b, stride, padding) ** 2, *parameters).ok


def conv2d_chained(conv, x):
    """The same convolution as a chain of seven recorded operations (Module 06's diagram on Tensors)."""
    windows = im2col(x, conv.kernel_size, conv.stride, conv.padding)
    N, C, OH, OW, KH, KW = windows.shape
    columns = windows.permute(1, 4, 5, 0, 2, 3).reshape(C * KH * KW, N * OH * OW)
    out = conv.weights.reshape(conv.out_channels, -1) @ columns + conv.bias.reshape(conv.out_channels, 1)
    return out.reshape(conv.out_channels, N, OH, OW).permute(1, 0, 2, 3)


def forward_backward(forward, conv, x):
    x.zero_grad()
    conv.zero_grad()
    forward(x).sum().backward()
    return x.grad.data, conv.weights.grad.data, conv.bias.grad.data


conv = Conv2D(3, 16, 3, padding=1)
x = Tensor(generator.standard_normal((32, 3, 32, 32)).astype(np.float32), requires_grad=True)
chain_s, chain_grads = time_it(forward_backward, lambda x: conv2d_chained(conv, x), conv, x, repeat=5)
fused_s, fused_grads = time_it(forward_backward, conv, conv, x, repeat=5)
assert all(np.allclose(a, b, rtol=1e-4, atol=1e-3) for a, b in zip(chain_grads, fused_grads))
print(f"Conv2D forward + backward, (32, 3, 32, 32) -> 16 channels, 3x3: chain of 7 operations "
      f"{chain_s * 1e3:.1f} ms, one operation {fused_s * 1e3:.1f} ms ({chain_s / fused_s:.1f}x)")

# %% [markdown]
# Same gradients, computed in the layout the forward product left behind: faster, by 1.2x to 2x on
# the machines we measured (more when fresh whole-batch buffers cost page faults, as they often do),
# and the margin grows with the image size. `make bench` compares both with PyTorch.
#
# ### The input's gradient is a convolution too
#
# `dx[n, c, h, w] = Σ_oc Σ_i Σ_j grad[n, oc, h - i + p, w - j + p] · W[oc, c, i, j]` (stride 1):
# the output's gradient, zero-padded by K - 1 - p, convolved with the same kernels flipped in
# space (i -> K-1-i) and with their channel axes swapped (the gradient's channels OC are now the
# input side). So besides col2im there is a second way to the same numbers:
#
# - **col2im** computes the windows' gradient `Wᵀ @ G`, C·KH·KW rows, then adds every one back
#   where it was read: several times the cost of a copy per number (read, add, write, in short runs);
# - **convolution** copies the *gradient's* windows, OC·KH·KW rows, and multiplies: one copy per
#   number, and a product whose output is the small (C, N·H·W) instead of (C·KH·KW, N·OH·OW).
#
# With no more output channels than input channels, the second copies no more than the first
# scatters, so `_by_convolution` picks it then (at stride 1 and padding < kernel, where the identity
# holds as written). Frameworks make the same kind of choice among several algorithms per shape
# (cuDNN and oneDNN keep a table of them). Checked and measured on the wide case of `make bench`:

# %%
def input_grad_by_col2im(grad, weights, padding):
    """The same input gradient (stride 1) the col2im way, for the whole batch at once."""
    oc, c, kh, kw = weights.shape
    n, _, oh, ow = grad.shape
    grad_out = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(oc, -1)
    grad_windows = (np.ascontiguousarray(weights.data.reshape(oc, -1).T) @ grad_out).reshape(c, kh, kw, n, oh, ow)
    image_size = (oh + kh - 1 - 2 * padding, ow + kw - 1 - 2 * padding)
    return col2im(grad_windows.transpose(0, 3, 4, 5, 1, 2), image_size, 1, padding).transpose(1, 0, 2, 3)


x = Tensor(generator.standard_normal((2, 4, 6, 5)))
weights = Tensor(generator.standard_normal((3, 4, 3, 2)))  # OC = 3 <= C = 4: the rule takes the convolution
assert _by_convolution(weights, 1, 1) and not _by_convolution(weights, 2, 1)
assert gradient_check(lambda x, w: conv2d(x, w, None, 1, 1) ** 2, x, weights).ok
wide = Conv2D(64, 64, 3, padding=1)
grad = generator.standard_normal((16, 64, 16, 16)).astype(np.float32)
scatter_s, scattered = time_it(input_grad_by_col2im, grad, wide.weights, 1, repeat=5)
convolve_s, convolved = time_it(input_grad_by_convolution, grad, wide.weights, 1, repeat=5)
assert np.allclose(scattered, convolved, rtol=1e-4, atol=1e-3)
print(f"dx of Conv2D(64, 64, 3, padding=1) on (16, 64, 16, 16): col2im {scatter_s * 1e3:.1f} ms, "
      f"convolution {convolve_s * 1e3:.1f} ms ({scatter_s / convolve_s:.1f}x)")

# %% [markdown]
# ## 11. What it costs
#
# **Time.** Reverse mode against numerical differentiation for a function of 1,000 parameters,
# `f(w) = mean(tanh(X @ w))` with X (256, 1000): the numerical gradient needs 2,000 forward passes,
# reverse mode one forward and one backward pass.

# %%
X = generator.standard_normal((256, 1000)) / 30


def f_numpy(w):
    return np.tanh(X @ w).mean()


def reverse_mode(w):
    w = Tensor(w, requires_grad=True)
    Tanh()(Tensor(X) @ w).mean().backward()
    return w.grad.data


w0 = generator.standard_normal(1000)
numeric_seconds, numeric_grad = time_it(numerical_gradient, f_numpy, w0, repeat=1, warmup=0)
reverse_seconds, reverse_grad = time_it(reverse_mode, w0)
assert np.allclose(numeric_grad, reverse_grad, atol=1e-8)
print(f"numerical gradient (2,000 forward passes): {numeric_seconds * 1e3:7.1f} ms")
print(f"reverse mode (1 forward + 1 backward):     {reverse_seconds * 1e3:7.2f} ms  -> {numeric_seconds / reverse_seconds:,.0f}x faster")

# %% [markdown]
# The gap grows with the parameter count: numerical differentiation costs O(parameters) forward
# passes, reverse mode about **two** (backward of a matmul is two matmuls). That is why every
# framework is built around reverse mode, and why numerical gradients remain only as a *check*.
#
# **Memory.** The price of reverse mode is the graph: every intermediate result a rule reads must
# stay alive until backward has used it. Eight layers `relu(h @ W + b)` on a batch of 512 × 512
# floats (1 MiB per activation), measured with `peak_memory`, with and without recording:

# %%
weights = [(Tensor(generator.standard_normal((512, 512)).astype(np.float32) / 23, requires_grad=True),
            Tensor(np.zeros(512, dtype=np.float32), requires_grad=True)) for _ in range(8)]  # fmt: skip
batch = Tensor(generator.standard_normal((512, 512)).astype(np.float32))


def deep_forward():
    h = batch
    for W, b in weights:
        h = ReLU()(h @ W + b)
    return h.sum()


def deep_forward_no_grad():
    with no_grad():
        return deep_forward()


graph_bytes, loss = peak_memory(deep_forward)
plain_bytes, _ = peak_memory(deep_forward_no_grad)
del loss  # releases the graph
backward_seconds, _ = time_it(lambda: deep_forward().backward(), repeat=3)
forward_seconds, _ = time_it(deep_forward_no_grad, repeat=3)
print(f"forward peak memory: recorded {graph_bytes / 2**20:5.1f} MiB, under no_grad {plain_bytes / 2**20:5.1f} MiB")
print(f"forward alone {forward_seconds * 1e3:.1f} ms, forward + backward {backward_seconds * 1e3:.1f} ms")
assert 8 * 2**20 < graph_bytes < 12 * 2**20 and plain_bytes < 4 * 2**20

# %% [markdown]
# With recording, each layer's ReLU output stays alive (8 MiB): ReLU's rule reads it, and so does the
# next matmul's rule, for W's gradient. The matmul and bias-add results (16 MiB more) are freed as
# soon as the next operation has read them, because no rule reads them (`keep`, Module 02
# section 6); a graph that held every result would hold all 24. Without recording, each activation
# is freed as soon as the next layer has read it, and the peak stays at a couple of activations. This is why evaluation loops run under `no_grad()`, and why activation memory, not
# parameter memory, limits the batch size when training. Forward + backward takes about three times
# the forward alone: per layer one matmul forward, two backward.
#
# ## 12. Losses
#
# A loss turns predictions and targets into the single number that training minimises. Each is built
# from recorded operations, so `loss.backward()` needs no extra rule -- with two exceptions below.
# They live in `tinytorch.core.losses` and are called like functions: `loss_fn(pred, target)`.
# Each is a `Module` (Module 04) whose `forward` takes the target as well, as in PyTorch: no
# parameters, but a model that keeps its loss as an attribute (TinyGPT will) lists it in its repr
# and passes it `train()`/`eval()` like any other part.
#
# - **MeanSquaredError**: `mean((pred - target)²)`, for regression.
# - **BinaryCrossEntropy**: `-mean(y log p + (1 - y) log(1 - p))` for probabilities p of a binary
#   label. `log(0) = -inf`, so probabilities are **clipped** to [ε, 1 - ε] with ε = 1e-7 (clipping
#   passes the gradient only where it did not clip). Better, pass raw scores (logits) z with
#   `from_logits=True`: with p = sigmoid(z) the loss simplifies to `softplus(z) - y·z` where
#   `softplus(z) = log(1 + e^z)`, computed stably as `np.logaddexp(0, z)`, and its derivative is
#   exactly `sigmoid(z) - y` -- no clipping, no overflow at z = ±1e4.
# - **CrossEntropyLoss**: logits (N, C) -- or (N, T, C) for sequences -- and integer class targets:
#   `-mean(log_softmax(logits)[i, target_i])`. The stable `LogSoftmax` of Module 03 never takes the
#   log of an underflowed probability, and picking the target's entry is an indexing operation whose
#   backward we wrote above. Its gradient w.r.t. the logits is the famous `(softmax - onehot) / N`.
#
# `clip` and `softplus` are two new recorded operations; their rules join the others in
# `core.autograd`, the functions themselves live with the losses.

# %%
#| export
@backward_rule("clip")
def _clip_backward(out, grad):
    """Clipping passes the gradient where low <= x <= high (as PyTorch's clamp), 0 where it clipped."""
    x, low, high = out._parents[0].data, out._saved["low"], out._saved["high"]
    return (grad * ((x >= low) & (x <= high)),)


@backward_rule("softplus")
def _softplus_backward(out, grad):
    """d/dx log(1 + e^x) = sigmoid(x), computed with tanh so it never overflows."""
    return (grad * 0.5 * (1 + np.tanh(0.5 * out._parents[0].data)),)


# %%
#| export core.losses
import numpy as np

from tinytorch.core.activations import LogSoftmax
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor


def clip(x, low, high):
    """x limited to [low, high] elementwise.

    Recorded as "clip", saving `low` and `high` and keeping the input; the rule `_clip_backward` (above) runs
    it backwards.
    """
    return Tensor.from_op(np.clip(x.data, low, high), "clip", (x,), ("inputs",), low=low, high=high)


def softplus(x):
    """log(1 + exp(x)), stable for any x.

    Recorded as "softplus" (nothing saved), keeping the input; the rule `_softplus_backward` (above) runs it backwards.
    """
    return Tensor.from_op(np.logaddexp(0, x.data), "softplus", (x,), ("inputs",))


def _as_target(target, like):
    """Targets as a Tensor; arrays and lists take the prediction's dtype. A Tensor is used as it is."""
    return target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=like.dtype))


class Loss(Module):
    """Base class: a Module whose forward takes the target too, loss_fn(pred, target) -> a scalar Tensor."""

    def __call__(self, pred, target):
        return self.forward(pred if isinstance(pred, Tensor) else Tensor(pred), target)


class MeanSquaredError(Loss):
    """mean((pred - target)²) over all elements."""

    def forward(self, pred, target):
        ### HINT: the mean of the squared difference
        ### BEGIN SOLUTION
        diff = pred - _as_target(target, pred)
        return (diff * diff).mean()
        ### END SOLUTION


class BinaryCrossEntropy(Loss):
    """-mean(y log p + (1 - y) log(1 - p)); `from_logits=True` takes scores z with p = sigmoid(z)."""

    def __init__(self, from_logits=False, eps=1e-7):
        super().__init__()
        self.from_logits, self.eps = from_logits, eps

    def forward(self, pred, target):
        y = _as_target(target, pred)
        ### HINT: logits: (softplus(z) - y * z).mean(); probabilities: clip to [eps, 1 - eps], then the formula
        ### BEGIN SOLUTION
        if self.from_logits:
            return (softplus(pred) - y * pred).mean()
        p = clip(pred, self.eps, 1 - self.eps)
        return -(y * p.log() + (1 - y) * (1 - p).log()).mean()
        ### END SOLUTION

    def extra_repr(self):
        return f"from_logits={self.from_logits}"


class CrossEntropyLoss(Loss):
    """-mean over samples of log softmax(logits)[target]: logits (N, C) or (N, T, C), integer targets (N,) or (N, T)."""

    def forward(self, logits, target):
        labels = np.asarray(target.data if isinstance(target, Tensor) else target)
        classes = logits.shape[-1]
        if labels.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss needs integer class targets, got dtype {labels.dtype}")
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"targets of shape {labels.shape} do not match logits of shape {logits.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"targets must be class indices in [0, {classes}), got {labels.min()}..{labels.max()}")
        ### HINT: LogSoftmax over the last axis, reshape to (-1, C), pick [np.arange(M), labels.ravel()], negate the mean
        ### BEGIN SOLUTION
        log_probs = LogSoftmax(dim=-1)(logits).reshape(-1, classes)
        picked = log_probs[np.arange(labels.size), labels.reshape(-1)]
        return -picked.mean()
        ### END SOLUTION


class BCEWithLogitsLoss(BinaryCrossEntropy):
    """PyTorch's name for BinaryCrossEntropy(from_logits=True): scores in, not probabilities."""

    def __init__(self):
        super().__init__(from_logits=True)


MSELoss = MeanSquaredError  # PyTorch's names for the same losses
BCELoss = BinaryCrossEntropy

# %% [markdown]
# **Coming from PyTorch**: `MSELoss`, `BCELoss` (probabilities in) and `BCEWithLogitsLoss` (scores
# in) are these same losses under PyTorch's names, averaging over every element as PyTorch's
# default `reduction="mean"` does; other reductions are not offered. Targets may be arrays or
# lists as well as Tensors.

# %% [markdown]
# ### 🧪 Check: known values, the textbook gradients, stability at ±1e4

# %%
mse = MeanSquaredError()
pred = Tensor([[0.5], [2.0]], requires_grad=True)
loss = mse(pred, [[1.0], [1.0]])
loss.backward()
assert abs(loss.item() - 0.625) < 1e-7 and pred.grad.data.ravel().tolist() == [-0.5, 1.0]  # 2(p - t)/N

probs = Tensor([0.9, 0.2, 0.0], requires_grad=True)
labels = np.array([1.0, 0.0, 0.0])
bce = BinaryCrossEntropy()(probs, labels)
assert abs(bce.item() - (-np.log(0.9) - np.log(0.8) - np.log(1 - 1e-7)) / 3) < 1e-6
bce.backward()
assert np.isfinite(probs.grad.data).all() and probs.grad.data[2] == 0.0, "clipped: no gradient"

z = Tensor([-1e4, -2.0, 0.0, 3.0, 1e4], requires_grad=True)
y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
with np.errstate(over="raise", invalid="raise", divide="raise"):
    loss = BinaryCrossEntropy(from_logits=True)(z, y)
    loss.backward()
sig = 0.5 * (1 + np.tanh(0.5 * np.array([-1e4, -2.0, 0.0, 3.0, 1e4])))
assert np.allclose(z.grad.data, (sig - y) / 5, atol=1e-7), "gradient = (sigmoid(z) - y) / N"
assert np.isclose(loss.item(), (0 + np.logaddexp(0, 2) + np.log(2) + np.logaddexp(0, 3) + 0) / 5, rtol=1e-6)

logits = Tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], requires_grad=True)
targets = np.array([0, 1])
loss = CrossEntropyLoss()(logits, targets)
softmax = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
assert np.isclose(loss.item(), -np.log(softmax[[0, 1], targets]).mean(), rtol=1e-6)
loss.backward()
assert np.allclose(logits.grad.data, (softmax - np.eye(3)[targets]) / 2, atol=1e-6), "(softmax - onehot) / N"

huge = Tensor([[1e4, -1e4, 0.0]], requires_grad=True)
with np.errstate(over="raise", invalid="raise", divide="raise"):
    loss = CrossEntropyLoss()(huge, [1])
    loss.backward()
assert loss.item() == 2e4 and np.allclose(huge.grad.data, [[1.0, -1.0, 0.0]])

sequence = Tensor(generator.standard_normal((2, 3, 4)))
tokens = np.array([[0, 3, 1], [2, 2, 0]])
for loss_fn, target in [(CrossEntropyLoss(), tokens), (mse, generator.standard_normal((2, 3, 4))),
                        (BinaryCrossEntropy(from_logits=True), generator.integers(0, 2, (2, 3, 4)))]:  # fmt: skip
    assert gradient_check(loss_fn, sequence, target).ok, loss_fn
assert gradient_check(BinaryCrossEntropy(), Tensor(generator.uniform(0.1, 0.9, (4, 2))), np.array([[0, 1]] * 4)).ok
print("losses: MSE, BCE (probabilities and logits), cross-entropy -- values, gradients and stability verified")

# %% [markdown]
# ## 13. Training, at last
#
# Everything is in place for gradient descent: forward, loss, backward, step against the gradient,
# reset the gradients. A two-layer network learns XOR -- the function that no single linear layer can
# represent -- with plain gradient steps (Module 10 brings proper optimizers).

# %%
xor_x = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
xor_y = np.array([[0], [1], [1], [0]], dtype=np.float32)
init = np.random.default_rng(3)
params = [Variable(init.standard_normal((2, 8)).astype(np.float32)), Variable(np.zeros(8, dtype=np.float32)),
          Variable(init.standard_normal((8, 1)).astype(np.float32)), Variable(np.zeros(1, dtype=np.float32))]  # fmt: skip
W1, b1, W2, b2 = params
loss_fn = BinaryCrossEntropy(from_logits=True)
for step in range(500):
    loss = loss_fn(Tanh()(xor_x @ W1 + b1) @ W2 + b2, xor_y)
    loss.backward()
    for p in params:
        p.data -= 0.5 * p.grad.data
        p.zero_grad()
with no_grad():
    predictions = (Tanh()(xor_x @ W1 + b1) @ W2 + b2).data > 0
assert predictions.ravel().tolist() == [False, True, True, False] and loss.item() < 0.05
print(f"XOR learned: final loss {loss.item():.4f}, predictions {predictions.ravel().astype(int).tolist()}")

# %% [markdown]
# ## 14. Every layer you wrote now trains
#
# Dense, convolution, pooling, attention and normalisation were written in Modules 04-08 forward
# only, but entirely from recorded operations -- so they need nothing more. `gradient_check` confirms
# it for each layer, inputs and parameters alike (the parameters are passed in so that the check
# perturbs them too):

# %%
from tinytorch.core.attention import MultiHeadAttention, causal_mask
from tinytorch.core.layers import Dense
from tinytorch.core.networks import MLP
from tinytorch.core.normalization import BatchNorm2D, LayerNorm
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D

mha = MultiHeadAttention(6, 2)
layers = [
    ("Dense(4, 3)", Dense(4, 3), (5, 4), None),
    ("MLP([4, 5, 3], Tanh)", MLP([4, 5, 3], activation=Tanh), (5, 4), None),
    ("Conv2D(2, 3, 3, stride=2, padding=1)", Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 5, 5), None),
    ("MaxPool2D(2)", MaxPool2D(2), (2, 2, 4, 4), None),
    ("AvgPool2D(3, stride=2)", AvgPool2D(3, stride=2), (2, 2, 5, 5), None),
    ("MultiHeadAttention(6, 2), causal", mha, (2, 4, 6), lambda x: mha(x, x, x, mask=causal_mask(4))),
    ("BatchNorm2D(2)", BatchNorm2D(2), (3, 2, 3, 3), None),
    ("LayerNorm(6)", LayerNorm(6), (2, 3, 6), None),
]
for name, layer, shape, forward in layers:
    x = Tensor(generator.standard_normal(shape))
    result = gradient_check(lambda x, *params: (forward or layer)(x), x, *layer.parameters())
    print(f"{name:38} {sum(p.size for p in layer.parameters()):4} parameters  max error {result.max_error:.1e}")
    assert result.ok, name

# %% [markdown]
# ## What you built
#
# - `backward(tensor, gradient)`: iterative topological sort, one rule per recorded operation,
#   broadcasting undone by `unbroadcast`, `.grad` accumulated on leaves, intermediates freed early,
#   and every rule's answer checked (one gradient per parent, of a shape the parent broadcasts to);
# - backward rules for arithmetic, matmul (batched, 1-D), reductions (ties split evenly), shape
#   operations, indexing (repeats add up), every activation, im2col (col2im) and the one-operation
#   conv2d -- so Dense, Conv2D, pooling, attention and normalisation from earlier modules now train
#   unchanged;
# - `no_grad()`, `Variable`, `gradient_check()`, and the losses `MeanSquaredError`,
#   `BinaryCrossEntropy` and `CrossEntropyLoss`.
#
# Run `tito module complete 09_autograd` to unlock checkpoint 08. Next: **Module 10 · Optimizers**.
