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
# # Module 02 · Tensor: the data structure everything is made of
#
# A tensor is an n-dimensional array of numbers plus what deep learning needs on top: it knows its
# shape and dtype, does arithmetic with broadcasting, multiplies matrices, reduces along axes, and
# **remembers how it was computed** so that Module 09 can run the computation backwards.
#
# ```
#            Tensor
#   ┌──────────────────────────┐
#   │ data  : np.ndarray        │  the numbers (float32 by default), writable
#   │ requires_grad, grad       │  used by autograd (Module 09)
#   │ _node ─► Node             │  "I am add(a, b)" -- the computation graph
#   └──────────────────────────┘
# ```
#
# Our Tensor wraps a NumPy array: NumPy does the arithmetic in C, we add the deep-learning
# semantics. The method names follow PyTorch, so what you learn here transfers.

# %%
#| default_exp core.tensor

# %%
#| export
import threading

import numpy as np

from tinytorch.core.setup import rng

# %%
from tinytorch.core.setup import held_memory, peak_memory, time_it

# %% [markdown]
# ## 1. Creating tensors: data and dtype
#
# Deep learning computes in **float32**: half the memory of float64, twice the numbers per cache
# line and SIMD register, and precise enough for gradients. So Python floats become float32, like
# in PyTorch. Integers stay int64 (class labels, indices), and a NumPy array you pass in keeps its
# dtype -- a float64 array stays float64, which is what we use to check gradients precisely.
#
# `Tensor(array)` does **not** copy a NumPy array: `.data` is the array itself (a view costs
# nothing; copying a 100 MB batch every step would). Lists are converted into a new array.
#
# `t.size` is the number of elements, as in NumPy; called, `t.size()` is the shape and `t.size(0)`
# one axis's length, as in PyTorch (a small `int` subclass serves both habits).
#
# Every result of an operation is made by one function, `Tensor.from_op(data, op, parents, keep=(), **saved)`:
# it wraps the result and, when an input requires a gradient, records which operation made it, from
# which tensors, and anything the backward pass will need (`saved`). Recording is all Module 02 does;
# Module 09 teaches each recorded operation to run backwards. The record is a small `Node` hung on
# the result (`t._node`), and `t._op`, `t._parents`, `t._saved` read it; section 6 says why the
# record is an object of its own and what `keep` is for. Whether anything is recorded is one
# switch, `Tensor.grad_enabled`, kept **per thread** (as in PyTorch): a thread serving predictions
# with recording off must not silently stop a training thread from recording. A small metaclass
# makes that per-thread value read and assign like an ordinary class attribute. A tensor you create
# directly has no record (`_node` None, so `_op` None, `_parents` `()`, `_saved` `{}`) and no gradient yet
# (`grad` None). Every function that records an operation says in its docstring what it records:
# the operation's name, the `_saved` keys it stores, the values it keeps, and the Module 09 rule
# that will run it backwards. `x ** p`, for one, says: *Recorded as "pow", saving `exponent` and
# keeping the input; Module 09's `_pow_backward` runs it backwards.*
#
# Only floating-point tensors can require gradients: a gradient is a small real-valued nudge, which
# integers cannot hold. `Tensor([1, 2], requires_grad=True)` therefore raises `TypeError` (it does
# not quietly turn `requires_grad` off), as PyTorch does.
#
# `.grad` is where Module 09 puts d(loss)/d(tensor). It is always `None` or a Tensor of the tensor's
# own shape: assigning a NumPy array wraps it in a Tensor, anything else (a list, a wrongly shaped
# array) raises at once -- autograd adds into `.grad.data` later, and an error there would point
# far away from the real mistake. (PyTorch refuses arrays outright; we accept them, wrapped.)

# %%
#| export
def _default_dtype(data):
    """float32 for Python floats and lists of them; NumPy arrays and integers keep their dtype."""
    if isinstance(data, np.ndarray) or np.isscalar(data) and isinstance(data, np.generic):
        return None
    array = np.asarray(data)
    return np.float32 if array.dtype.kind == "f" else None


class _GradMode(type):
    """Tensor's metaclass, for one class attribute: `Tensor.grad_enabled`, stored per thread."""

    _local = threading.local()

    @property
    def grad_enabled(cls):
        """Whether operations are recorded in this thread (switched off by `no_grad()`, Module 09)."""
        return getattr(_GradMode._local, "enabled", True)

    @grad_enabled.setter
    def grad_enabled(cls, value):
        _GradMode._local.enabled = bool(value)


_KEEPABLE = {"inputs", "other_inputs", "output"}


class ValuesNotKept(RuntimeError):
    """A backward rule read the values of a result that no operation kept (`Node.data`)."""


def _keep_values(out, parents, keep):
    """Keep, on the recorded nodes, the values a backward rule will read:

    "output"        the result's values (exp: the derivative is the result itself);
    "inputs"        every parent's values (log: 1/x);
    "other_inputs"  a parent's values only when another parent needs a gradient (a·b: the gradient of
                    a is grad·b, so b is read only if a needs one -- `x * 0.5` keeps nothing of x).
    A leaf or a constant parent is a Tensor in the graph, its values always there: nothing to keep.
    """
    if "output" in keep:
        out._node.keep(out.data)
    for i, parent in enumerate(parents):
        read = "inputs" in keep or "other_inputs" in keep and any(
            other.requires_grad for j, other in enumerate(parents) if j != i
        )
        if read and parent._node is not None:
            parent._node.keep(parent.data)


class Node:
    """One recorded operation as the backward pass sees it: the operation `_op`, its `_parents` (their
    own Nodes; a leaf or a constant is its Tensor), the `_saved` values, the result's shape and dtype.

    The result's values (`data`) are kept only when a backward rule reads them (`keep`): the graph
    then holds what backward needs, not every intermediate result of the forward pass.
    """

    requires_grad = True  # only results that need a gradient are recorded

    def __init__(self, op, parents, saved, value):
        self._op, self._parents, self._saved = op, parents, saved
        self.shape, self.dtype = value.shape, value.dtype
        self._kept = None

    def keep(self, value):
        self._kept = value

    @property
    def data(self):
        """The result's values, for a rule that reads them; an error names the op if nobody kept them."""
        if self._kept is None:
            raise ValuesNotKept(f"the values of a '{self._op}' result were not kept")
        return self._kept

    @property
    def size(self):
        return int(np.prod(self.shape))

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"Node({self._op}, shape={self.shape}, dtype={self.dtype})"


class Tensor(metaclass=_GradMode):
    """An n-dimensional array that records the operations that produced it.

    Tensor(data, dtype=None, requires_grad=False)
      data          a number, a (nested) list, a NumPy array (shared, not copied) or a Tensor
      dtype         a NumPy dtype; default float32 for Python floats, the array's own otherwise
      requires_grad whether autograd should compute d(result)/d(this tensor)
    """

    __array_ufunc__ = None  # make `np.float32(2) * tensor` call Tensor.__rmul__, not NumPy

    def __init__(self, data, dtype=None, requires_grad=False):
        ### HINT: A tensor wraps one NumPy array in self.data: take a Tensor's own array, let _default_dtype choose
        ### HINT: the dtype when none is given, and never copy an array you are given. Only floating-point tensors can
        ### HINT: require gradients: requires_grad=True on integer data raises TypeError. A new tensor has grad None
        ### HINT: and no graph record: _node None.
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        dtype = dtype if dtype is not None else _default_dtype(data)
        self.data = np.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, not {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None
        ### END SOLUTION

    @staticmethod
    def from_op(data, op, parents, keep=(), **saved):
        """The result of operation `op` on `parents`; records the graph edge when a parent needs grad.

        keep: the values the backward rule of `op` reads besides `saved` (see `_keep_values`).
        """
        if isinstance(keep, str) or not set(keep) <= _KEEPABLE:
            raise ValueError(f"keep= takes a tuple of {sorted(_KEEPABLE)}, not {keep!r}")
        ### HINT: Wrap the result in a new Tensor. Record the graph edge only while recording is on
        ### HINT: (Tensor.grad_enabled) and some parent requires a gradient: then the result requires one too and
        ### HINT: gets a Node (op, the parents' own records as a tuple, saved); `_keep_values` keeps what `keep` names.
        ### BEGIN SOLUTION
        out = Tensor(data)
        if Tensor.grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._node = Node(op, tuple(p._node or p for p in parents), saved, out.data)
            _keep_values(out, parents, keep)
        return out
        ### END SOLUTION

    # --- the graph record (Module 09 walks it) ------------------------------------------------
    @property
    def _op(self):
        return None if self._node is None else self._node._op

    @property
    def _parents(self):
        return () if self._node is None else self._node._parents

    @property
    def _saved(self):
        return {} if self._node is None else self._node._saved

    # --- properties -------------------------------------------------------------------------
    @property
    def grad(self):
        """d(loss)/d(this tensor) after backward(): a Tensor of this tensor's shape, or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = _as_grad(value, self)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return _Size(self.data.size, self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    def __len__(self):
        return len(self.data)

    def item(self):
        """The single number in a one-element tensor, as a Python float or int."""
        return _scalar(self)

    def numpy(self):
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{grad})"

    def detach(self):
        """The same numbers, cut from the graph (shares memory, never requires grad)."""
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    def backward(self, gradient=None):
        """Fill `.grad` of every tensor this one was computed from. The engine arrives in Module 09."""
        try:
            from tinytorch.core.autograd import backward
        except ImportError:
            raise RuntimeError(
                "backward() needs the autograd engine of Module 09: run `tito module complete 09_autograd`"
            ) from None
        backward(self, gradient)


class _Size(int):
    """The number of elements (NumPy's `a.size`), also callable as PyTorch's `t.size()` -> shape, `t.size(0)`."""

    def __new__(cls, count, shape):
        size = super().__new__(cls, count)
        size.shape = shape
        return size

    def __call__(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


def _scalar(self):
    """The one number of a one-element tensor (a clear error for more)."""
    if self.size != 1:
        raise ValueError(f"only a one-element tensor converts to a Python number; this one has shape {self.shape}")
    return self.data.item()


def _as_grad(value, tensor):
    """What may be stored in `.grad`: None, or a Tensor of the tensor's shape (an array is wrapped).

    Autograd adds into `.grad.data` and optimizers read it, so anything else would fail much later,
    far from the assignment that caused it.
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = Tensor(value)
    if not isinstance(value, Tensor):
        raise TypeError(f".grad must be a Tensor, a NumPy array or None, not {type(value).__name__}")
    if value.shape != tensor.shape:
        raise ValueError(f".grad of shape {value.shape} assigned to a tensor of shape {tensor.shape}")
    return value


# %% [markdown]
# ### 🧪 Check: creation and dtypes

# %%
assert Tensor([1.0, 2.0]).dtype == np.float32
assert Tensor([1, 2]).dtype == np.int64
assert Tensor(np.zeros(3)).dtype == np.float64  # an array keeps its dtype
shared = np.zeros(3, dtype=np.float32)
t = Tensor(shared)
t.data[0] = 5.0
assert shared[0] == 5.0, "Tensor(array) shares memory with the array"
assert Tensor(2.5).shape == () and Tensor(2.5).item() == 2.5
assert t.size == 3 and t.size() == (3,) and t.size(0) == 3  # NumPy's number of elements; PyTorch's shape
print(Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True))

# %% [markdown]
# ## 2. Arithmetic and broadcasting
#
# `a + b` works when the shapes **broadcast**: align them from the right; each pair of sizes must
# be equal or one of them 1, and a size-1 axis is stretched without copying:
#
# ```
#   (32, 10)   activations            (3, 1)     (3, 4)
# +     (10,)  bias, one per column  + (1, 4)  =  every row + every column
# = (32, 10)
# ```
#
# Each operation is one line of NumPy wrapped by `from_op`. A Python number on either side is
# converted with the tensor's own dtype, so `x * 2` of a float32 tensor stays float32. The
# reflected methods (`__radd__`, `__rsub__`, ...) make `2 - x` work: Python calls them when the
# left operand does not know about Tensors.

# %%
#| export
def _as_tensor(value, like):
    """A Tensor for an operand; Python numbers take `like`'s dtype so float32 stays float32."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float)) and like.dtype.kind == "f":
        return Tensor(np.asarray(value, dtype=like.dtype))
    return Tensor(value)


def _binary(op, numpy_fn, keep=()):
    """The method `self <op> other` and its reflected twin `other <op> self`, both recorded as `op`
    (nothing saved; `keep` names the values the rule reads). Module 09's rules `_add_backward`,
    `_sub_backward`, `_mul_backward`, `_div_backward` and `_matmul_backward` run them backwards."""

    def forward(self, other):
        ### HINT: Make `other` a Tensor of a matching dtype first (a helper above does it), apply the NumPy function
        ### HINT: to the two arrays, and record the result with from_op: operation `op`, parents self then other, keep.
        ### BEGIN SOLUTION
        other = _as_tensor(other, self)
        return Tensor.from_op(numpy_fn(self.data, other.data), op, (self, other), keep)
        ### END SOLUTION

    def reflected(self, other):
        ### HINT: Python calls this for `other <op> self` when the left operand is not a Tensor (2 - t): the same as
        ### HINT: forward with the operands, and the parents, in the other order.
        ### BEGIN SOLUTION
        other = _as_tensor(other, self)
        return Tensor.from_op(numpy_fn(other.data, self.data), op, (other, self), keep)
        ### END SOLUTION

    return forward, reflected


Tensor.__add__, Tensor.__radd__ = _binary("add", np.add)  # d/da = d/db = 1: no values needed
Tensor.__sub__, Tensor.__rsub__ = _binary("sub", np.subtract)
Tensor.__mul__, Tensor.__rmul__ = _binary("mul", np.multiply, keep=("other_inputs",))  # d(ab)/da = b
Tensor.__truediv__, Tensor.__rtruediv__ = _binary("div", np.divide, keep=("inputs", "output"))
Tensor.__matmul__, Tensor.__rmatmul__ = _binary("matmul", np.matmul, keep=("other_inputs",))


def _neg(self):
    """-x. Recorded as "neg" (nothing saved); Module 09's `_neg_backward` runs it backwards."""
    return Tensor.from_op(-self.data, "neg", (self,))


def _pow(self, exponent):
    """x ** p for a number p (a tensor exponent is not supported).

    Recorded as "pow", saving `exponent` and keeping the input; Module 09's `_pow_backward` runs it backwards.
    """
    if isinstance(exponent, Tensor):
        raise TypeError("a tensor exponent is not supported: use exp(p * log(x))")
    return Tensor.from_op(self.data**exponent, "pow", (self,), ("inputs",), exponent=exponent)


def _exp(self):
    """e ** x. Recorded as "exp" (nothing saved), keeping the output (the result is its own derivative);
    Module 09's `_exp_backward` runs it backwards."""
    return Tensor.from_op(np.exp(self.data), "exp", (self,), ("output",))


def _log(self):
    """The natural logarithm. Recorded as "log" (nothing saved), keeping the input; Module 09's `_log_backward`
    runs it backwards."""
    return Tensor.from_op(np.log(self.data), "log", (self,), ("inputs",))


def _sqrt(self):
    return self**0.5


def _matmul(self, other):
    return self @ other


def _rpow(self, base):
    """base ** x for a number base: d/dx = base**x · ln(base).

    Recorded as "rpow", saving `base` and keeping the output; Module 09's `_rpow_backward` runs it backwards.
    """
    powers = np.power(np.asarray(base, dtype=self.dtype), self.data)
    return Tensor.from_op(powers, "rpow", (self,), ("output",), base=base)


Tensor.__neg__, Tensor.__pow__, Tensor.__rpow__, Tensor.exp, Tensor.log = _neg, _pow, _rpow, _exp, _log
Tensor.sqrt, Tensor.matmul = _sqrt, _matmul

# %% [markdown]
# ### Comparisons, and handing the numbers to NumPy and Python
#
# `pred == target` compares **element by element** and gives a boolean Tensor, as every other
# operator does -- so `(pred == target).float().mean()` is an accuracy. (Python's default `==`
# would compare identities and answer one `False`: a silently wrong accuracy.) Comparisons have no
# gradient, so they are not recorded. Defining `__eq__` makes Python drop the default hash; we
# restore hashing **by identity**, as PyTorch does, so tensors still work as dictionary keys
# (optimizers keep their per-parameter state that way). `if tensor:` works for one element and
# raises for several, like NumPy.
#
# `__array__` tells NumPy how to see a Tensor as an array: `np.asarray(t)`, `np.allclose(t, ...)`
# use the numbers. `float(t)` and `int(t)` work for one-element tensors; `t.float()`/`t.long()`
# convert the dtype (recorded as "astype", so gradients flow through a float conversion).

# %%
#| export
def _compare(numpy_fn):
    """An elementwise comparison returning a boolean Tensor (never recorded: it has no gradient)."""

    def compare(self, other):
        if other is None:
            return NotImplemented  # `t == None` falls back to identity: False
        return Tensor(numpy_fn(self.data, _as_tensor(other, self).data))

    return compare


Tensor.__eq__, Tensor.__ne__ = _compare(np.equal), _compare(np.not_equal)
Tensor.__lt__, Tensor.__le__ = _compare(np.less), _compare(np.less_equal)
Tensor.__gt__, Tensor.__ge__ = _compare(np.greater), _compare(np.greater_equal)
Tensor.__hash__ = object.__hash__  # identity, as in PyTorch: tensors stay usable as dict keys


def _array(self, dtype=None, copy=None):
    """The numbers as a NumPy array (NumPy calls this for np.asarray(t), np.allclose(t, ...))."""
    return np.array(self.data, dtype=dtype, copy=copy)


def _bool(self):
    return bool(self.data)  # NumPy raises "ambiguous" for more than one element, as PyTorch does


def _astype(self, dtype):
    """This tensor's numbers in another dtype (a float-to-float conversion passes gradients).

    Recorded as "astype" (nothing saved: the parent knows its dtype); Module 09's `_astype_backward`
    runs it backwards.
    """
    if self.dtype == dtype:
        return self
    return Tensor.from_op(self.data.astype(dtype), "astype", (self,))


Tensor.__array__, Tensor.__bool__ = _array, _bool
Tensor.__float__ = lambda self: float(_scalar(self))
Tensor.__int__ = lambda self: int(_scalar(self))
Tensor.float = lambda self: _astype(self, np.float32)
Tensor.double = lambda self: _astype(self, np.float64)
Tensor.long = lambda self: _astype(self, np.int64)
Tensor.tolist = lambda self: self.data.tolist()

# %% [markdown]
# ### 🧪 Check: arithmetic against NumPy

# %%
a_np = np.arange(6, dtype=np.float32).reshape(2, 3)
b_np = np.array([10.0, 20.0, 30.0], dtype=np.float32)
a, b = Tensor(a_np), Tensor(b_np)
assert np.array_equal((a + b).data, a_np + b_np)  # broadcasting (2,3) + (3,)
assert np.array_equal((2 - a).data, 2 - a_np)  # reflected
assert np.array_equal((a / 2).data, a_np / 2) and (a / 2).dtype == np.float32
assert np.array_equal((a**2).data, a_np**2) and np.array_equal((-a).data, -a_np)
assert np.allclose((a @ a.data.T).data, a_np @ a_np.T)
assert np.allclose((2**a).data, 2**a_np) and (2**a).dtype == np.float32
assert (a == a).data.all() and (a > 2).data.tolist() == [[False, False, False], [True, True, True]]
assert (a > 2).float().dtype == np.float32 and (a > 2).float().data.mean() == 0.5  # an accuracy
assert {a: "state"}[a] == "state" and (a != b).data.all()  # hashable by identity; != elementwise
assert np.array_equal(np.asarray(a), a_np) and np.allclose(b, [10, 20, 30])  # NumPy sees the numbers
assert float(Tensor([3.5])) == 3.5 and int(Tensor(7)) == 7 and a.tolist() == a_np.tolist()

# %% [markdown]
# ## 3. Matrix multiplication: naive loops against NumPy
#
# `(m, k) @ (k, n)` computes m·n dot products of length k: 2·m·k·n floating-point operations.
# The naive triple loop is the definition; `np.matmul` calls BLAS, which blocks the matrices to stay
# in cache and uses SIMD instructions on every core. Let's measure the gap.

# %%
def naive_matmul(a, b):
    """The definition: out[i, j] = sum over k of a[i, k] * b[k, j]. Correct, and very slow."""
    m, k = a.shape
    _, n = b.shape
    out = np.zeros((m, n), dtype=a.dtype)
    for i in range(m):
        for j in range(n):
            total = 0.0
            for p in range(k):
                total += a[i, p] * b[p, j]
            out[i, j] = total
    return out


rng_ = np.random.default_rng(0)
x64 = rng_.standard_normal((64, 64)).astype(np.float32)
naive_seconds, naive_out = time_it(naive_matmul, x64, x64, repeat=1, warmup=0)
fast_seconds, fast_out = time_it(lambda: (Tensor(x64) @ Tensor(x64)).data)
assert np.allclose(naive_out, fast_out, atol=1e-3)
flops = 2 * 64**3
print(f"naive loops: {naive_seconds * 1e3:.0f} ms ({flops / naive_seconds / 1e6:.1f} MFLOP/s)")
print(f"Tensor @ (BLAS): {fast_seconds * 1e6:.0f} µs ({flops / fast_seconds / 1e9:.1f} GFLOP/s)")
print(f"speed-up: {naive_seconds / fast_seconds:,.0f}x")

# %% [markdown]
# Typical figures on a laptop core: the loops manage a few MFLOP/s (each multiply is an interpreted
# Python step), BLAS tens of GFLOP/s -- thousands of times faster. **Never loop over elements in
# Python**; express the computation as whole-array operations.
#
# ## 4. Reductions: sum, mean, max along axes
#
# A reduction collapses an axis. `axis=None` reduces everything; `keepdims=True` keeps the
# reduced axis with size 1, so the result still broadcasts against the input -- exactly what
# softmax and normalisation need (`x - x.max(axis=-1, keepdims=True)`).
#
# ```
#   x (2, 3)           x.sum(axis=0) (3,)     x.sum(axis=1, keepdims=True) (2, 1)
#   [[1, 2, 3],   ->   [5, 7, 9]              [[ 6],
#    [4, 5, 6]]                                [15]]
# ```
#
# PyTorch spells these `dim` and `keepdim` (`x.sum(dim=1, keepdim=True)`); both spellings work here.
# One difference in meaning follows PyTorch too: `x.max(1)` or `x.max(dim=1)` (and `min`) return a
# pair `(values, indices)`, while the NumPy spelling `x.max(axis=1)` returns the values alone.

# %%
#| export
def _axis(axis, keepdims, dim, keepdim):
    """(axis, keepdims) from NumPy's or PyTorch's spelling (`dim`, `keepdim`), never both at once."""
    if dim is not None and axis is not None:
        raise TypeError("give `axis` or `dim`, not both")
    if keepdim is not None and keepdims:
        raise TypeError("give `keepdims` or `keepdim`, not both")
    axis = axis if dim is None else dim
    return (tuple(axis) if isinstance(axis, list) else axis), bool(keepdims or keepdim)


def _reduction(op, numpy_fn, keep=()):
    """A method reducing over `axis` (None = everything) with NumPy's `numpy_fn`, recorded as `op`,
    saving `axis` and `keepdims` (and keeping the values named by `keep`). Module 09's rules
    `_sum_backward`, `_mean_backward` and `_max_backward` run them backwards."""

    def reduce(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _axis(axis, keepdims, dim, keepdim)
        ### HINT: Let NumPy reduce the array with the same axis and keepdims; a full reduction gives a NumPy scalar,
        ### HINT: so make it an array; record axis and keepdims, which the backward pass needs to spread the gradient
        ### HINT: back, and pass `keep` on.
        ### BEGIN SOLUTION
        data = numpy_fn(self.data, axis=axis, keepdims=keepdims)
        return Tensor.from_op(np.asarray(data), op, (self,), keep, axis=axis, keepdims=keepdims)
        ### END SOLUTION

    reduce.__name__ = op
    return reduce


Tensor.sum = _reduction("sum", np.sum)
Tensor.mean = _reduction("mean", np.mean)
_max_values = _reduction("max", np.max, keep=("inputs", "output"))  # the winners: input == max


def _argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the largest value (an integer tensor; not differentiable)."""
    axis, keepdims = _axis(axis, keepdims, dim, keepdim)
    return Tensor(np.argmax(self.data, axis=axis, keepdims=keepdims))


def _argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return (-self).argmax(axis, keepdims, dim=dim, keepdim=keepdim)


class ValuesIndices(tuple):
    """What `max(dim=...)` and `min(dim=...)` return, as in PyTorch: (values, indices), also by name."""

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _max(self, dim=None, keepdim=None, *, axis=None, keepdims=False):
    """The largest values; given PyTorch's `dim` (by position or name), the pair (values, indices)."""
    values = _max_values(self, axis, keepdims, dim=dim, keepdim=keepdim)
    if dim is None:
        return values
    return ValuesIndices((values, self.argmax(dim=dim, keepdim=keepdim)))


def _min(self, dim=None, keepdim=None, *, axis=None, keepdims=False):
    """The smallest values, as -max(-x) (so its gradient is max's); `dim=` gives (values, indices)."""
    values = -_max_values(-self, axis, keepdims, dim=dim, keepdim=keepdim)
    if dim is None:
        return values
    return ValuesIndices((values, self.argmin(dim=dim, keepdim=keepdim)))


Tensor.max, Tensor.min, Tensor.argmax, Tensor.argmin = _max, _min, _argmax, _argmin

# %% [markdown]
# ### 🧪 Check: reductions

# %%
x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert x.sum().item() == 21.0
assert np.array_equal(x.sum(axis=0).data, [5.0, 7.0, 9.0])
assert x.sum(axis=1, keepdims=True).shape == (2, 1)
assert np.allclose(x.mean(axis=-1).data, [2.0, 5.0])
assert np.array_equal(x.max(axis=1).data, [3.0, 6.0]) and x.argmax(axis=1).data.tolist() == [2, 2]
assert x.sum(dim=1, keepdim=True).shape == (2, 1) and x.mean(dim=(0, 1)).item() == 3.5  # PyTorch's spelling
values, indices = x.max(dim=1)
assert values.tolist() == [3.0, 6.0] and indices.tolist() == [2, 2] and x.min(dim=0).indices.tolist() == [0, 0, 0]
assert x.min().item() == 1.0 and x.argmin().item() == 0

# %% [markdown]
# ## 5. Shapes: reshape, transpose, permute, indexing -- and what they cost
#
# A NumPy array is a block of memory plus **strides**: how many bytes to step along each axis.
# `reshape` of a contiguous array and `transpose` only change the strides -- they are *views*, free
# in time and memory. But reshaping a transposed (non-contiguous) array must copy. We follow
# PyTorch: `transpose(dim0, dim1)` swaps two axes (by default the last two, a matrix transpose) and
# `permute(*dims)` reorders all of them.

# %%
#| export
def _reshape(self, *shape):
    """The same numbers in another shape. Recorded as "reshape" (nothing saved: the parent has the old
    shape); Module 09's `_reshape_backward` runs it backwards."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor.from_op(self.data.reshape(shape), "reshape", (self,))


def _permute(self, *dims):
    """The axes in the order `dims`. Recorded as "permute", saving `dims`; Module 09's `_permute_backward`
    runs it backwards."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    ### HINT: Reorder the axes without copying and record the order: its inverse undoes the permutation in the
    ### HINT: backward pass. The operation is named 'permute'.
    ### BEGIN SOLUTION
    return Tensor.from_op(np.transpose(self.data, dims), "permute", (self,), dims=dims)
    ### END SOLUTION


def _transpose(self, dim0=-2, dim1=-1):
    dims = list(range(self.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return self.permute(*dims)


def _getitem(self, index):
    """`x[index]`. Recorded as "getitem", saving `index`; Module 09's `_getitem_backward` runs it backwards."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return Tensor.from_op(self.data[index], "getitem", (self,), index=index)


def _setitem(self, index, value):
    """Write into the data in place (not recorded: do this before building a graph, not inside one)."""
    self.data[index] = value.data if isinstance(value, Tensor) else value


Tensor.reshape, Tensor.permute, Tensor.transpose = _reshape, _permute, _transpose
Tensor.__getitem__, Tensor.__setitem__ = _getitem, _setitem
Tensor.T = property(lambda self: self.transpose())

# %% [markdown]
# PyTorch code also reshapes with a few shorthands, all built on `reshape` (so they are views when
# `reshape` is, and Module 09 needs no new rule):
#
# - `view(*shape)`: a reshape that **must** be a view -- it raises instead of copying, so writing
#   into the result always writes into the original, as in PyTorch;
# - `unsqueeze(dim)` adds a size-1 axis, `squeeze(dim=None)` removes size-1 axes;
# - `flatten(start_dim=0, end_dim=-1)` merges a range of axes into one.
#
# And a few tensor methods PyTorch users reach for: `clamp(min, max)` (recorded as "clip": the
# gradient passes where the value was not clipped), `clone()` (a copy that stays in the graph),
# `tolist()`, `numel()`, `dim()` (= `ndim`) and `requires_grad_()`.

# %%
#| export
def _view(self, *shape):
    out = self.reshape(*shape)
    if out.size and not np.shares_memory(out.data, self.data):
        raise RuntimeError(f"view{shape} of a non-contiguous tensor of shape {self.shape} would copy: use reshape()")
    return out


def _unsqueeze(self, dim):
    dim = dim if dim >= 0 else dim + self.ndim + 1
    return self.reshape(*self.shape[:dim], 1, *self.shape[dim:])


def _squeeze(self, dim=None):
    dims = range(self.ndim) if dim is None else [d % self.ndim for d in np.atleast_1d(dim)]
    return self.reshape(*(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))


def _flatten(self, start_dim=0, end_dim=-1):
    if self.ndim == 0:
        return self.reshape(1)
    start, end = start_dim % self.ndim, end_dim % self.ndim
    return self.reshape(*self.shape[:start], -1, *self.shape[end + 1 :])


def _clamp(self, min=None, max=None):
    """Values limited to [min, max] (either may be None).

    Recorded as "clip", saving `low` and `high` and keeping the input; Module 09's `_clip_backward` runs it
    backwards.
    """
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    low = -np.inf if min is None else min
    high = np.inf if max is None else max
    clipped = np.clip(self.data, low, high).astype(self.dtype)
    return Tensor.from_op(clipped, "clip", (self,), ("inputs",), low=low, high=high)


def _clone(self):
    """A copy of the numbers that stays in the graph (its gradient passes through unchanged).

    Recorded as "reshape" to the same shape (nothing saved); Module 09's `_reshape_backward` runs it backwards.
    """
    return Tensor.from_op(self.data.copy(), "reshape", (self,))  # a same-shape reshape: identity gradient


def _requires_grad_(self, requires_grad=True):
    if requires_grad and self.dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, not {self.dtype}")
    self.requires_grad = bool(requires_grad)
    return self


Tensor.view, Tensor.unsqueeze, Tensor.squeeze, Tensor.flatten = _view, _unsqueeze, _squeeze, _flatten
Tensor.clamp, Tensor.clone, Tensor.requires_grad_ = _clamp, _clone, _requires_grad_
Tensor.numel = lambda self: self.size
Tensor.dim = lambda self: self.ndim

# %% [markdown]
# ### 🧪 Check: shapes, and views against copies (measured)

# %%
x = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
assert x.transpose().shape == (2, 4, 3) and x.permute(2, 0, 1).shape == (4, 2, 3)
assert np.array_equal(x.T.data, np.swapaxes(x.data, -1, -2))
assert x[1, 2].data.tolist() == [20.0, 21.0, 22.0, 23.0] and x[:, 0, 0].shape == (2,)
assert x[Tensor([1, 0])].shape == (2, 3, 4)
assert x.view(6, 4).shape == (6, 4) and np.shares_memory(x.view(-1).data, x.data)
try:
    x.transpose().view(-1)
    raise AssertionError("a view that would have to copy must be refused")
except RuntimeError as error:
    assert "use reshape()" in str(error)
assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
assert x[:1].squeeze().shape == (3, 4) and x[:1].squeeze(1).shape == (1, 3, 4)
assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
assert x.clamp(min=3, max=5).data.min() == 3 and x.clamp(max=5).data.max() == 5
copy = x.clone()
copy.data[0] = -1.0
assert x.data[0, 0, 0] == 0.0 and x.numel() == 24 and x.dim() == 3

big = Tensor(np.ones((1000, 1000), dtype=np.float32))  # 4 MB
view_bytes, view = peak_memory(lambda: big.reshape(1_000_000))
copy_bytes, copied = peak_memory(lambda: big.T.reshape(1_000_000))
assert np.shares_memory(view.data, big.data) and not np.shares_memory(copied.data, big.data)
print(f"reshape of a contiguous tensor: {view_bytes:,} bytes; of its transpose: {copy_bytes:,} bytes (a copy)")

# %% [markdown]
# ## 6. Putting it together
#
# A linear layer is `x @ W + b`; a mean-squared error is `((pred - target) ** 2).mean()`. Both are
# already expressible. The recorded graph of the second one is what autograd will walk backwards:

# %%
pred = Tensor([[0.5], [2.0]], requires_grad=True)
target = Tensor([[1.0], [1.0]])
loss = ((pred - target) ** 2).mean()
assert abs(loss.item() - (0.25 + 1.0) / 2) < 1e-7
node, chain = loss, []
while node._parents:
    chain.append(node._op)
    node = node._parents[0]
assert chain == ["mean", "pow", "sub"]
print("loss =", loss.item(), " recorded graph, last op first:", " <- ".join(chain))

# %% [markdown]
# ### What the graph keeps alive
#
# Why is the record a `Node` of its own, and not simply the parent tensors? Memory. If results
# linked to the tensors they came from, the loss of a training step would keep **every**
# intermediate result of the forward pass alive until it is dropped -- every activation of every
# layer, whether the backward pass needs it or not. Backward rules need far less: `a + b` passes
# its gradient on untouched (no values at all), `a * b` needs both operands, `exp` only its own
# result, and `a * b` reads `b` only to give `a` its gradient (so `x * 0.5` needs nothing of `x`).
# So each operation tells `from_op` what its rule will read -- `keep=("inputs",)`,
# `("other_inputs",)` or `("output",)` (`_keep_values` says exactly what each keeps) -- and a Node
# holds values only when asked to. A result nobody reads is freed as soon as your code drops the
# tensor -- PyTorch's "saved tensors" work the same way.
#
# The measurement: ten operations in a row on a 4 MB tensor, only the last result held by us.

# %%
def ten_times(step):
    def build():
        y = Tensor(np.ones((1000, 1000), dtype=np.float32), requires_grad=True)
        for _ in range(10):
            y = step(y)
        return y

    return build


adds_bytes, _ = held_memory(ten_times(lambda y: y + 1.0))  # add keeps nothing
exps_bytes, _ = held_memory(ten_times(lambda y: (y * 1e-3).exp()))  # mul keeps its input, exp its output
one_array = 4_000_000
assert adds_bytes < 3 * one_array, "the graph of additions must not keep their results"
assert exps_bytes > 10 * one_array, "exp's rule reads its result (and mul its inputs, the exps): those are kept"
print(f"10 additions: {adds_bytes / 1e6:.1f} MB held; 10 times mul then exp: {exps_bytes / 1e6:.1f} MB held")

# %% [markdown]
# ## 7. Making tensors the PyTorch way
#
# PyTorch code creates tensors with factory functions rather than from NumPy arrays: `zeros(2, 3)`,
# `ones`, `full`, `arange`, `eye`, `rand` (uniform in [0, 1)), `randn` (standard normal), and
# `zeros_like(t)` / `ones_like(t)`. `tensor(data)` copies its data, as `torch.tensor` does, while
# `from_numpy(array)` shares the array's memory like `Tensor(array)`. The factories take the shape as
# several numbers or one tuple, and `dtype=` and `requires_grad=` by name. Floats are float32, as
# everywhere in the course. The random ones draw from Module 01's seeded generator (`set_seed`),
# so runs repeat -- though the numbers differ from PyTorch's for the same seed.

# %%
#| export
def _shape(shape):
    """zeros(2, 3) and zeros((2, 3)) both mean the shape (2, 3)."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a **copy** of `data`, as PyTorch's torch.tensor (Tensor(array) shares)."""
    data = data.data if isinstance(data, Tensor) else data
    return Tensor(data.copy() if isinstance(data, np.ndarray) else data, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array):
    """A tensor sharing the array's memory, as PyTorch's torch.from_numpy."""
    return Tensor(array)


def zeros(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=np.float32, requires_grad=False):
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros(np.shape(t), dtype=dtype if dtype is not None else t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones(np.shape(t), dtype=dtype if dtype is not None else t.dtype), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """start, start + step, ... below end (integers stay int64, as in PyTorch)."""
    values = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None:
        dtype = np.float32 if values.dtype.kind == "f" else np.int64
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


def eye(n, m=None, dtype=np.float32, requires_grad=False):
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(rng().random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def randn(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(rng().standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


# %% [markdown]
# ### 🧪 Check: factories

# %%
assert zeros(2, 3).shape == (2, 3) and zeros((2, 3)).dtype == np.float32 and ones(4).data.sum() == 4
assert full((2, 2), 7.0).data.tolist() == [[7.0, 7.0], [7.0, 7.0]] and eye(3).data.trace() == 3
assert arange(5).dtype == np.int64 and arange(0.0, 1.0, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
assert zeros_like(x).shape == x.shape and randn(3, 4, requires_grad=True).requires_grad
assert 0 <= rand(100).data.min() and rand(100).data.max() < 1 and tensor([1, 2]).dtype == np.int64
source = np.zeros(2)
copied, shared = tensor(source), from_numpy(source)
source[0] = 1.0
assert copied.data[0] == 0.0 and shared.data[0] == 1.0

# %% [markdown]
# ## What you built
#
# `Tensor` with dtype handling, broadcasting arithmetic (reflected too), `@`, reductions with
# `axis`/`keepdims`, `reshape`/`transpose`/`permute`, indexing, and a recorded computation graph.
# Run `tito module complete 02_tensor` to unlock checkpoint 01. Next: **Module 03 · Activations**.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint Tensor.__init__ --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `Tensor.__init__` 2: np.asarray(data, dtype=dtype) shares an array's memory when no conversion is needed; a dtype whose .kind is 'f' is floating point; store requires_grad as a bool.
# - `Tensor.from_op` 2: any(...) over the parents' requires_grad; out._node = Node(op, tuple(p._node or p for p in parents), saved, out.data); then _keep_values(out, parents, keep).
# - `_binary.forward` 2: _as_tensor(other, self), then numpy_fn on self.data and other.data.
# - `_binary.reflected` 2: numpy_fn(other.data, self.data); the parents are (other, self).
# - `_reduction.reduce` 2: numpy_fn(self.data, axis=..., keepdims=...) then np.asarray; pass axis= and keepdims= to from_op as saved values.
# - `_permute` 2: np.transpose takes the full order of the axes; from_op(..., 'permute', (self,), dims=dims).
