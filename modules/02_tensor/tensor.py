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
#   │ _op, _parents, _saved     │  "I am add(a, b)" -- the computation graph
#   └──────────────────────────┘
# ```
#
# Our Tensor wraps a NumPy array: NumPy does the arithmetic in C, we add the deep-learning
# semantics. The method names follow PyTorch, so what you learn here transfers.

# %%
#| default_exp core.tensor

# %%
#| export
import numpy as np

# %%
import time

from tinytorch.core.setup import peak_memory, time_it

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
# Every result of an operation is made by one function, `Tensor.from_op(data, op, parents, **saved)`:
# it wraps the result and, when an input requires a gradient, records which operation made it, from
# which tensors, and anything the backward pass will need (`saved`). Recording is all Module 02 does;
# Module 09 teaches each recorded operation to run backwards. A tensor you create directly has an
# empty record (`_op` None, `_parents` `()`, `_saved` `{}`) and no gradient yet (`grad` None).
#
# Only floating-point tensors can require gradients: a gradient is a small real-valued nudge, which
# integers cannot hold. `Tensor([1, 2], requires_grad=True)` therefore raises `TypeError` (it does
# not quietly turn `requires_grad` off), as PyTorch does.

# %%
#| export
def _default_dtype(data):
    """float32 for Python floats and lists of them; NumPy arrays and integers keep their dtype."""
    if isinstance(data, np.ndarray) or np.isscalar(data) and isinstance(data, np.generic):
        return None
    array = np.asarray(data)
    return np.float32 if array.dtype.kind == "f" else None


class Tensor:
    """An n-dimensional array that records the operations that produced it.

    Tensor(data, dtype=None, requires_grad=False)
      data          a number, a (nested) list, a NumPy array (shared, not copied) or a Tensor
      dtype         a NumPy dtype; default float32 for Python floats, the array's own otherwise
      requires_grad whether autograd should compute d(result)/d(this tensor)
    """

    grad_enabled = True  # switched off inside autograd's `no_grad()` (Module 09)
    __array_ufunc__ = None  # make `np.float32(2) * tensor` call Tensor.__rmul__, not NumPy

    def __init__(self, data, dtype=None, requires_grad=False):
        ### HINT: A tensor wraps one NumPy array in self.data: take a Tensor's own array, let _default_dtype choose
        ### HINT: the dtype when none is given, and never copy an array you are given. Only floating-point tensors can
        ### HINT: require gradients: requires_grad=True on integer data raises TypeError. A new tensor has grad None
        ### HINT: and an empty graph record: _op None, _parents () and _saved {}.
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        dtype = dtype if dtype is not None else _default_dtype(data)
        self.data = np.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, not {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._op, self._parents, self._saved = None, (), {}
        ### END SOLUTION

    @staticmethod
    def from_op(data, op, parents, **saved):
        """The result of operation `op` on `parents`; records the graph edge when a parent needs grad."""
        ### HINT: Wrap the result in a new Tensor. Record the graph edge only while recording is on
        ### HINT: (Tensor.grad_enabled) and some parent requires a gradient: then the result requires one too and
        ### HINT: keeps op, the parents (as a tuple) and the saved values.
        ### BEGIN SOLUTION
        out = Tensor(data)
        if Tensor.grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._op, out._parents, out._saved = op, tuple(parents), saved
        return out
        ### END SOLUTION

    # --- properties -------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def ndim(self):
        return self.data.ndim

    def __len__(self):
        return len(self.data)

    def item(self):
        """The single number in a one-element tensor, as a Python float or int."""
        return self.data.item()

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


def _binary(op, numpy_fn):
    """The method `self <op> other` and its reflected twin `other <op> self`, both recorded as `op`."""

    def forward(self, other):
        ### HINT: Make `other` a Tensor of a matching dtype first (a helper above does it), apply the NumPy function
        ### HINT: to the two arrays, and record the result with from_op: operation `op`, parents self then other.
        ### BEGIN SOLUTION
        other = _as_tensor(other, self)
        return Tensor.from_op(numpy_fn(self.data, other.data), op, (self, other))
        ### END SOLUTION

    def reflected(self, other):
        ### HINT: Python calls this for `other <op> self` when the left operand is not a Tensor (2 - t): the same as
        ### HINT: forward with the operands, and the parents, in the other order.
        ### BEGIN SOLUTION
        other = _as_tensor(other, self)
        return Tensor.from_op(numpy_fn(other.data, self.data), op, (other, self))
        ### END SOLUTION

    return forward, reflected


Tensor.__add__, Tensor.__radd__ = _binary("add", np.add)
Tensor.__sub__, Tensor.__rsub__ = _binary("sub", np.subtract)
Tensor.__mul__, Tensor.__rmul__ = _binary("mul", np.multiply)
Tensor.__truediv__, Tensor.__rtruediv__ = _binary("div", np.divide)
Tensor.__matmul__, Tensor.__rmatmul__ = _binary("matmul", np.matmul)


def _neg(self):
    return Tensor.from_op(-self.data, "neg", (self,))


def _pow(self, exponent):
    """x ** p for a number p (a tensor exponent is not supported)."""
    if isinstance(exponent, Tensor):
        raise TypeError("a tensor exponent is not supported: use exp(p * log(x))")
    return Tensor.from_op(self.data**exponent, "pow", (self,), exponent=exponent)


def _exp(self):
    return Tensor.from_op(np.exp(self.data), "exp", (self,))


def _log(self):
    return Tensor.from_op(np.log(self.data), "log", (self,))


def _sqrt(self):
    return self**0.5


def _matmul(self, other):
    return self @ other


Tensor.__neg__, Tensor.__pow__, Tensor.exp, Tensor.log = _neg, _pow, _exp, _log
Tensor.sqrt, Tensor.matmul = _sqrt, _matmul

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

# %%
#| export
def _reduction(op, numpy_fn):
    """A method reducing over `axis` (None = everything) with NumPy's `numpy_fn`, recorded as `op`."""

    def reduce(self, axis=None, keepdims=False):
        ### HINT: Let NumPy reduce the array with the same axis and keepdims; a full reduction gives a NumPy scalar,
        ### HINT: so make it an array; record axis and keepdims, which the backward pass needs to spread the gradient
        ### HINT: back.
        ### BEGIN SOLUTION
        data = numpy_fn(self.data, axis=axis, keepdims=keepdims)
        return Tensor.from_op(np.asarray(data), op, (self,), axis=axis, keepdims=keepdims)
        ### END SOLUTION

    reduce.__name__ = op
    return reduce


Tensor.sum = _reduction("sum", np.sum)
Tensor.mean = _reduction("mean", np.mean)
Tensor.max = _reduction("max", np.max)


def _argmax(self, axis=None):
    """Index of the largest value (an integer tensor; not differentiable)."""
    return Tensor(np.argmax(self.data, axis=axis))


Tensor.argmax = _argmax

# %% [markdown]
# ### 🧪 Check: reductions

# %%
x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert x.sum().item() == 21.0
assert np.array_equal(x.sum(axis=0).data, [5.0, 7.0, 9.0])
assert x.sum(axis=1, keepdims=True).shape == (2, 1)
assert np.allclose(x.mean(axis=-1).data, [2.0, 5.0])
assert np.array_equal(x.max(axis=1).data, [3.0, 6.0]) and x.argmax(axis=1).data.tolist() == [2, 2]

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
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor.from_op(self.data.reshape(shape), "reshape", (self,))


def _permute(self, *dims):
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
# ### 🧪 Check: shapes, and views against copies (measured)

# %%
x = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
assert x.transpose().shape == (2, 4, 3) and x.permute(2, 0, 1).shape == (4, 2, 3)
assert np.array_equal(x.T.data, np.swapaxes(x.data, -1, -2))
assert x[1, 2].data.tolist() == [20.0, 21.0, 22.0, 23.0] and x[:, 0, 0].shape == (2,)
assert x[Tensor([1, 0])].shape == (2, 3, 4)

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
# - `Tensor.from_op` 2: any(...) over the parents' requires_grad; set _op, _parents and _saved on the new tensor.
# - `_binary.forward` 2: _as_tensor(other, self), then numpy_fn on self.data and other.data.
# - `_binary.reflected` 2: numpy_fn(other.data, self.data); the parents are (other, self).
# - `_reduction.reduce` 2: numpy_fn(self.data, axis=..., keepdims=...) then np.asarray; pass axis= and keepdims= to from_op as saved values.
# - `_permute` 2: np.transpose takes the full order of the axes; from_op(..., 'permute', (self,), dims=dims).
