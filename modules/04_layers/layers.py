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
# # Module 04 · Layers: the components every network is made of
#
# A neural network is a function with **parameters**: numbers that training will adjust. A *layer*
# bundles a computation with the parameters it owns; a *model* is a tree of layers. This module
# builds the two pieces every later module stands on:
#
# ```
#   Module                          the container: finds its parameters, saves and loads them,
#    ├── Dense  (x @ W + b)         switches train/eval mode, prints itself
#    ├── Conv2D (Module 06)
#    └── your model ── Dense ── ReLU ── Dense      a tree of Modules
#
#   Parameter = a Tensor with requires_grad=True: "training may change me"
# ```
#
# And the first real layer, `Dense` (PyTorch calls it `Linear`): every input feature connected to
# every output feature through a weight matrix. We also answer a question that decides whether a
# deep network trains at all: **what numbers should the weights start with?**
#
# Everything here is built from the recorded `Tensor` operations of Module 02 (`@`, `+`), so when
# Module 09 teaches those operations to run backwards, these layers train without a single change.

# %%
#| default_exp core.layers

# %%
#| export
import numpy as np

from tinytorch.core.activations import Activation
from tinytorch.core.setup import rng
from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.setup import peak_memory, set_seed, time_it

# %% [markdown]
# ## 1. Parameter: a tensor that training may change
#
# Not every tensor in a model is learnable: the input batch is not, an attention mask is not. We
# mark the learnable ones by their type. `Parameter` is a `Tensor` subclass that always starts with
# `requires_grad=True`, so it *is* a tensor (it works in every operation) and a `Module` can find
# it by asking `isinstance(value, Parameter)`.

# %%
#| export
class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires_grad=True by default)."""

    def __init__(self, data, dtype=None, requires_grad=True):
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Parameter(")
        return f"Parameter({body}, dtype={self.dtype})"


# %% [markdown]
# ### 🧪 Check: a Parameter is a Tensor

# %%
p = Parameter(np.ones((2, 3), dtype=np.float32))
assert isinstance(p, Tensor) and p.requires_grad and p.shape == (2, 3)
assert type(p * 2) is Tensor  # results of operations are plain tensors, not parameters
print(p)

# %% [markdown]
# ## 2. Module: a tree of layers that knows its parameters
#
# A model like `Sequential(Dense(784, 128), ReLU(), Dense(128, 10))` holds layers that hold
# parameters. An optimizer needs the flat list of every parameter; saving a model needs each one
# with a stable **name**. Rather than making every layer list its parameters by hand, `Module`
# finds them by walking its own attributes, in the order they were assigned:
#
# ```
#   model                         named_parameters()
#    ├── hidden: Dense             ("hidden.weights", Parameter (784, 128))
#    │     ├── weights ─────────►  ("hidden.bias",    Parameter (128,))
#    │     └── bias    ─────────►  ("out.weights",    Parameter (128, 10))
#    └── out: Dense                ("out.bias",       Parameter (10,))
# ```
#
# The rules of the walk, for each attribute `name` of a module (`vars(self)` keeps assignment
# order, so the order is deterministic):
#
# - a `Parameter` is yielded as `prefix + name`;
# - a `Module` is walked recursively with the prefix `prefix + name + "."`;
# - a list or tuple is walked item by item, item `i` being named `name.i` (a list of layers);
# - anything else (numbers, masks, activations, which own no parameters) is skipped.
#
# (A Module is Module 03's `Activation` protocol -- build once, call, `forward` does the work --
# grown up: parameters, sub-layers, modes, saved state. Activations stay their own small class
# because they came first; `named_children` lists them beside the sub-Modules, so a model's repr
# shows them, while the parameter walk skips them. Module 09's losses are Modules.)
#
# A parameter reachable twice (the same weight shared by two layers, as TinyGPT's embedding and
# output layer will be) is reported **once**, under its first name: otherwise an optimizer would
# update it twice per step.
#
# On top of that walk the rest is short:
#
# | method | what it does |
# |---|---|
# | `parameters()` | the list of parameters (what an optimizer takes) |
# | `zero_grad()` | forget every parameter's gradient before the next backward pass |
# | `train()` / `eval()` | set `.training` on the whole tree (dropout and batch norm behave differently) and return the module, so `model.eval()` chains |
# | `state_dict()` | `{name: copy of the array}`: everything needed to save the model |
# | `load_state_dict(d)` | copy arrays back in, checking every name and shape (an error names the offending key, quoted) |
# | `__call__(x)` | runs `forward(x)`: `model(x)` like in PyTorch |
#
# Some arrays belong to the saved state without being learnable: batch norm's running mean
# (Module 08) is updated by the forward pass, never by the optimizer. `register_buffer(name, value)`
# stores such an array so that `state_dict()` includes it while `parameters()` does not.
#
# **PyTorch's attribute names.** A layer may list PyTorch's names for its attributes in the class
# dictionary `aliases` -- Dense says `{"weight": "weights"}` -- so `layer.weight` *is*
# `layer.weights` (the same Parameter), and assigning either name replaces that one parameter. And
# as in PyTorch, a parameter can only be replaced by a `Parameter` (or `None`): assigning a plain
# Tensor or array to it raises a `TypeError` instead of quietly leaving an attribute that no
# optimizer and no `state_dict` would ever see. To change the numbers, write into them:
# `layer.weight.data[...] = values`.

# %%
#| export
class Module:
    """Base class of every layer and model: subclasses assign Parameters and sub-Modules as
    attributes in `__init__` and implement `forward`; calling the module runs `forward`."""

    training = True  # a class default, so a subclass that forgets super().__init__() still works
    aliases = {}  # PyTorch's attribute name -> this class's own name, e.g. {"weight": "weights"}

    def __init__(self):
        self.training = True

    def __getattr__(self, name):  # only called when normal lookup fails
        own = type(self).aliases.get(name)
        if own is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self, own)

    def __setattr__(self, name, value):
        name = type(self).aliases.get(name, name)
        if isinstance(self.__dict__.get(name), Parameter) and not isinstance(value, (Parameter, type(None))):
            raise TypeError(
                f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__}: "
                f"assign a Parameter (or None), or write into it with .{name}.data[...] = values"
            )
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _attributes(self):
        """(name, value) for every attribute, list and tuple items as (name.i, item), in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    yield f"{name}.{i}", item
            else:
                yield name, value

    def named_children(self):
        """[(name, layer)] for the direct sub-modules (and activations) of this module."""
        return [(name, value) for name, value in self._attributes() if isinstance(value, (Module, Activation))]

    def named_parameters(self, prefix=""):
        """[(dotted name, Parameter)] for every parameter in the tree, each parameter once."""
        ### HINT: Walk this module's attributes as the list above says: a Parameter is reported as prefix + name, a
        ### HINT: sub-Module is walked with the prefix extended by its name and a dot. A parameter reached twice is
        ### HINT: reported once, under its first name.
        ### BEGIN SOLUTION
        found = {}  # id(parameter) -> (name, parameter); a dict keeps insertion order
        for name, value in self._attributes():
            if isinstance(value, Parameter):
                found.setdefault(id(value), (prefix + name, value))
            elif isinstance(value, Module):
                for sub_name, parameter in value.named_parameters(prefix + name + "."):
                    found.setdefault(id(parameter), (sub_name, parameter))
        return list(found.values())
        ### END SOLUTION

    def parameters(self):
        """Every Parameter of the tree, in a deterministic order (what an optimizer takes)."""
        return [parameter for _, parameter in self.named_parameters()]

    def register_buffer(self, name, value):
        """Store `value` as attribute `name`: saved by state_dict(), but not a parameter."""
        setattr(self, name, value)
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)

    def named_buffers(self, prefix=""):
        """[(dotted name, array or Tensor)] for every registered buffer in the tree."""
        buffers = [(prefix + name, getattr(self, name)) for name in vars(self).get("_buffer_names", [])]
        for name, child in self.named_children():
            if isinstance(child, Module):
                buffers += child.named_buffers(prefix + name + ".")
        return buffers

    def zero_grad(self):
        """Forget the gradients of every parameter (set them to None, as PyTorch does)."""
        for parameter in self.parameters():
            parameter.grad = None

    def train(self, mode=True):
        """Put this module and every sub-module in training mode (or evaluation mode if mode=False)."""
        ### HINT: Set this module's `training` flag and pass the same mode down to every child that is a Module.
        ### HINT: Return the module itself, so that `model.eval()` can be chained as in PyTorch.
        ### BEGIN SOLUTION
        self.training = mode
        for _, child in self.named_children():
            if isinstance(child, Module):
                child.train(mode)
        return self
        ### END SOLUTION

    def eval(self):
        """Evaluation mode: `train(False)`."""
        return self.train(False)

    def state_dict(self):
        """{dotted name: a copy of the array} for every parameter and buffer."""
        ### HINT: One entry per parameter and per buffer, keyed by dotted name, each value a copy of the array, so
        ### HINT: that later training cannot change what was saved.
        ### BEGIN SOLUTION
        entries = self.named_parameters() + self.named_buffers()
        return {name: np.array(_array(value), copy=True) for name, value in entries}
        ### END SOLUTION

    def load_state_dict(self, state_dict):
        """Copy saved arrays into the parameters and buffers, in place, after checking names and shapes."""
        targets = dict(self.named_parameters() + self.named_buffers())
        missing = [name for name in targets if name not in state_dict]
        unexpected = [name for name in state_dict if name not in targets]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        ### HINT: The names were checked above. For each name compare the shapes: a mismatch raises ValueError whose
        ### HINT: message quotes the name (e.g. 'hidden.bias'); otherwise copy the values into the existing array in
        ### HINT: place, so that optimizers keep pointing at the same parameters.
        ### BEGIN SOLUTION
        for name, target in targets.items():
            value = _array(state_dict[name])
            if np.shape(value) != np.shape(_array(target)):
                expected = np.shape(_array(target))
                raise ValueError(f"load_state_dict: '{name}' has shape {np.shape(value)}, the model expects {expected}")
            np.copyto(_array(target), value)  # in place: optimizers keep pointing at the same parameters
        ### END SOLUTION

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (sizes, options)."""
        return ""

    def __repr__(self):
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [self.extra_repr()] if self.extra_repr() else []
        lines += [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _array(value):
    """The ndarray behind a Tensor, Parameter or array."""
    return value.data if isinstance(value, Tensor) else value


# %% [markdown]
# ### 🧪 Check: the walk, on a small hand-made tree
#
# A module with a direct parameter, a sub-module, a list of sub-modules, an activation, a shared
# parameter and a buffer. We check names, order, the shared parameter counted once, train/eval
# reaching the leaves, and a state_dict round trip.

# %%
class Scale(Module):
    def __init__(self, size):
        super().__init__()
        self.gain = Parameter(np.full(size, 2.0, dtype=np.float32))

    def forward(self, x):
        return x * self.gain


class Toy(Module):
    def __init__(self):
        super().__init__()
        self.offset = Parameter(np.zeros(3, dtype=np.float32))
        self.first = Scale(3)
        self.blocks = [Scale(3), ReLU(), Scale(3)]
        self.tied = self.first.gain  # the same parameter again: must not be counted twice
        self.register_buffer("steps", np.zeros(1))

    def forward(self, x):
        x = self.first(x) + self.offset
        for block in self.blocks:
            x = block(x)
        return x


toy = Toy()
names = [name for name, _ in toy.named_parameters()]
assert names == ["offset", "first.gain", "blocks.0.gain", "blocks.2.gain"], names
assert len(toy.parameters()) == 4 and all(p.requires_grad for p in toy.parameters())
assert toy(Tensor([[1.0, -1.0, 0.5]])).data.tolist() == [[8.0, 0.0, 4.0]]
assert toy.eval() is toy and not toy.blocks[2].training and toy.train().blocks[0].training

saved = toy.state_dict()
assert list(saved) == names + ["steps"]
toy.first.gain.data[:] = 5.0  # "training" changes the weights; the saved copy must not change
assert saved["first.gain"].tolist() == [2.0, 2.0, 2.0]
toy.load_state_dict(saved)
assert toy.first.gain.data.tolist() == [2.0, 2.0, 2.0] and toy.tied is toy.first.gain
try:
    toy.load_state_dict({**saved, "offset": np.zeros(4)})
    raise AssertionError("a wrong shape must be refused")
except ValueError as error:
    assert "'offset'" in str(error)
print(toy)

# %% [markdown]
# ## 3. Dense: every input connected to every output
#
# A dense (fully connected) layer maps `input_size` features to `output_size` features:
#
# ```
#   x (batch, in) @ W (in, out) + b (out,) = y (batch, out)
#
#   x0 ──┬──w00──► y0      y_j = Σ_i x_i · W[i, j] + b_j
#        ╲ w01               one weight per (input, output) pair: in·out weights + out biases
#   x1 ──┼──w10──► y1
#        ╲ w11
# ```
#
# We store `W` as `(in, out)` so that a batch of row vectors multiplies it directly (`x @ W`);
# PyTorch stores the transpose `(out, in)` and computes `x @ W.T` -- the same numbers. The bias is
# broadcast over the batch (Module 02's broadcasting: `(batch, out) + (out,)`).
#
# **Coming from PyTorch**: `Dense` is also called `Linear` and takes PyTorch's keywords,
# `Linear(in_features=784, out_features=10)`; `layer.weight` is the same parameter as
# `layer.weights` -- in *our* layout `(in, out)`, the transpose of PyTorch's. Module 05 converts
# whole state dicts between the two layouts. An input whose last axis is not `input_size` is
# refused with a `ValueError` naming both shapes (NumPy's own message would only say that some
# matrix product does not fit).
#
# First the definition, with loops: one multiply-add per (sample, input, output) triple.

# %%
def dense_naive(x, weights, bias):
    """y[n, j] = sum_i x[n, i] * weights[i, j] + bias[j], one multiply-add at a time."""
    batch, inputs = x.shape
    outputs = weights.shape[1]
    y = np.zeros((batch, outputs), dtype=x.dtype)
    for n in range(batch):
        for j in range(outputs):
            total = bias[j]
            for i in range(inputs):
                total += x[n, i] * weights[i, j]
            y[n, j] = total
    return y


def dense_per_sample(x, weights, bias):
    """One vector-matrix product per sample: vectorised inside, a Python loop over the batch."""
    return np.stack([sample @ weights + bias for sample in x])


# %% [markdown]
# Now the layer. Its forward pass is the whole batch in one matrix product, so NumPy hands the work
# to BLAS once. An input with more axes -- `(batch, seq, in)`, a sequence of token vectors in
# Module 07 -- is flattened to `(batch·seq, in)` first: one large 2-D product is faster than many
# small ones, and `reshape` of a contiguous array is free.

# %%
#| export
class Dense(Module):
    """y = x @ weights + bias, with weights (input_size, output_size) and bias (output_size,).

    Works on (batch, input_size) and on (..., input_size): leading axes are kept.
    init: "xavier" (Glorot uniform, the default) or "kaiming" (He uniform, for ReLU networks).
    """

    aliases = {"weight": "weights", "in_features": "input_size", "out_features": "output_size"}

    def __init__(self, input_size=None, output_size=None, bias=True, init="xavier", *, in_features=None,
                 out_features=None):  # fmt: skip
        super().__init__()
        input_size = either_name(input_size, "input_size", in_features, "in_features")
        output_size = either_name(output_size, "output_size", out_features, "out_features")
        self.input_size, self.output_size = input_size, output_size
        self.weights = Parameter(init_weights((input_size, output_size), input_size, output_size, init))
        self.bias = Parameter(np.zeros(output_size, dtype=np.float32)) if bias else None

    def forward(self, x):
        check_shape(self, x, f"(..., {self.input_size})", x.ndim >= 1 and x.shape[-1] == self.input_size)
        ### HINT: y = x W + b, with W of shape (input_size, output_size) and the bias optional (None). An input with
        ### HINT: more than two axes (a batch of sequences) is flattened into rows first and gets its leading axes
        ### HINT: back after.
        ### BEGIN SOLUTION
        flat = x if x.ndim == 2 else x.reshape(-1, self.input_size)  # one 2-D product: BLAS's best case
        out = flat @ self.weights
        if self.bias is not None:
            out = out + self.bias
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.output_size)
        ### END SOLUTION

    def extra_repr(self):
        return f"input_size={self.input_size}, output_size={self.output_size}, bias={self.bias is not None}"


Linear = Dense  # PyTorch's name for the same layer


def either_name(ours, our_name, theirs, their_name):
    """The value of a parameter that has a course name and a PyTorch name (given once, by either)."""
    if (ours is None) == (theirs is None):
        raise TypeError(f"give exactly one of {our_name} and {their_name}")
    return ours if theirs is None else theirs


def check_shape(layer, x, expected, fits):
    """Refuse an input that does not fit `layer`, naming the shape expected and the shape given."""
    if not fits:
        raise ValueError(f"{type(layer).__name__} expects input of shape {expected}, got {tuple(x.shape)}")

# %% [markdown]
# Initialisation comes in the next section; `Dense` already calls `init_weights`, defined there.
#
# ## 4. Initialisation: why the starting numbers matter
#
# Each output of a dense layer sums `fan_in` products. If inputs and weights are independent with
# mean 0, the variance adds up: `Var(y) = fan_in · Var(w) · Var(x)`. Through many layers that factor
# multiplies: pick `Var(w)` too large and activations explode, too small and they vanish (and so
# do the gradients flowing back). The cure is to make the factor 1:
#
# | scheme | Var(w) | uniform(-a, a) with a = | for |
# |---|---|---|---|
# | Xavier / Glorot (2010) | 2 / (fan_in + fan_out) | √(6 / (fan_in + fan_out)) | tanh, sigmoid, linear |
# | Kaiming / He (2015) | 2 / fan_in | √(6 / fan_in) | ReLU |
#
# Xavier balances the forward pass (fan_in) against the backward pass (fan_out). ReLU zeroes half
# of its inputs, halving the variance at every layer; Kaiming doubles Var(w) to win it back.
#
# (A uniform distribution on (-a, a) has variance a²/3, hence the √6.) Xavier is our default, as
# in Keras; choose `init="kaiming"` for deep ReLU stacks -- Conv2D (Module 06) always uses it.
# Biases start at zero: they do not multiply anything, so they cannot make variance grow.
#
# The numbers come from the framework generator `rng()`, so `set_seed` makes them reproducible.

# %%
#| export
def xavier_uniform(shape, fan_in, fan_out):
    """Glorot uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), as float32."""
    ### HINT: Uniform values in [-limit, limit] with limit = sqrt(6 / (fan_in + fan_out)), drawn from the course
    ### HINT: generator rng() so that set_seed reproduces them, as float32.
    ### BEGIN SOLUTION
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng().uniform(-limit, limit, shape).astype(np.float32)
    ### END SOLUTION


def kaiming_uniform(shape, fan_in):
    """He uniform for ReLU: U(-a, a) with a = sqrt(6 / fan_in), as float32."""
    ### HINT: Like xavier_uniform, with limit = sqrt(6 / fan_in): the variance that ReLU layers need.
    ### BEGIN SOLUTION
    limit = np.sqrt(6.0 / fan_in)
    return rng().uniform(-limit, limit, shape).astype(np.float32)
    ### END SOLUTION


def init_weights(shape, fan_in, fan_out, init="xavier"):
    """Initial weights of the given shape by scheme name: "xavier" or "kaiming"."""
    if init == "xavier":
        return xavier_uniform(shape, fan_in, fan_out)
    if init == "kaiming":
        return kaiming_uniform(shape, fan_in)
    raise ValueError(f"unknown init {init!r}: use 'xavier' or 'kaiming'")


# %% [markdown]
# ### 🧪 Check: Dense against hand-computed numbers, and against the loops

# %%
layer = Dense(2, 3)
layer.weights.data[:] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
layer.bias.data[:] = [0.5, 0.0, -1.0]
x = Tensor([[1.0, 1.0], [0.0, 2.0]])
# row 0: [1+4, 2+5, 3+6] + b = [5.5, 7, 8];   row 1: [8, 10, 12] + b = [8.5, 10, 11]
assert layer(x).data.tolist() == [[5.5, 7.0, 8.0], [8.5, 10.0, 11.0]]
assert layer(Tensor(np.ones((4, 5, 2), dtype=np.float32))).shape == (4, 5, 3)  # (batch, seq, in)
assert Dense(2, 3, bias=False).parameters()[0].shape == (2, 3) and len(Dense(2, 3, bias=False).parameters()) == 1
assert Linear is Dense and Linear(in_features=2, out_features=3).weights.shape == (2, 3)
assert layer.weight is layer.weights and layer.in_features == 2  # PyTorch's names, the same objects
layer.weight = Parameter(np.eye(2, 3, dtype=np.float32))  # replacing through either name replaces it
assert layer.weights is layer.weight and layer.parameters()[0] is layer.weight
for wrong in [np.ones((2, 3)), Tensor(np.ones((2, 3)))]:
    try:
        layer.weight = wrong
        raise AssertionError("a parameter must only be replaced by a Parameter")
    except TypeError as error:
        assert "'weights'" in str(error)
try:
    layer(Tensor(np.ones((4, 5), dtype=np.float32)))
    raise AssertionError("an input of the wrong width must be refused")
except ValueError as error:
    assert "(..., 2)" in str(error) and "(4, 5)" in str(error)
print(layer)

set_seed(0)
batch = rng().standard_normal((16, 64)).astype(np.float32)
dense = Dense(64, 32)
expected = dense_naive(batch, dense.weights.data, dense.bias.data)
assert np.allclose(dense(Tensor(batch)).data, expected, atol=1e-5)
assert np.allclose(dense_per_sample(batch, dense.weights.data, dense.bias.data), expected, atol=1e-5)

# %% [markdown]
# ### What batching buys: loops, a loop over samples, one matrix product (measured)
#
# On MNIST-sized data, 256 images of 784 pixels into 128 units. The triple loop runs on 16 samples
# only (it needs about a second even so), and we scale its time per sample.

# %%
images = rng().standard_normal((256, 784)).astype(np.float32)
hidden = Dense(784, 128)
w, b = hidden.weights.data, hidden.bias.data
loop_s, _ = time_it(dense_naive, images[:16], w, b, repeat=1, warmup=0)
sample_s, per_sample = time_it(dense_per_sample, images, w, b)
batch_s, batched = time_it(lambda: hidden(Tensor(images)).data)
assert np.allclose(per_sample, batched, atol=1e-4)
print(f"triple loop      {loop_s / 16 * 256 * 1e3:9.1f} ms for 256 samples (measured on 16)")
print(f"loop over batch  {sample_s * 1e3:9.2f} ms")
print(f"one matmul       {batch_s * 1e3:9.2f} ms  ({sample_s / batch_s:.1f}x faster than the per-sample loop)")
memory, _ = peak_memory(lambda: hidden(Tensor(images)))
print(f"parameters: {w.size + b.size:,} numbers = {w.nbytes + b.nbytes:,} bytes")
print(f"forward pass allocates {memory:,} bytes")

# %% [markdown]
# The batch product wins twice: Python's per-call overhead is paid once instead of 256 times, and
# BLAS reuses each weight loaded into cache for many samples. The forward pass allocates about one
# output matrix (256 × 128 × 4 bytes = 131 kB) and a temporary for the bias addition.
#
# ### 🧪 Check: initialisation keeps a deep ReLU network's activations alive (measured)
#
# Push a batch through 20 layers of 256 units with ReLU and look at the spread of the output.

# %%
def final_std(make_layer, depth=20, width=256):
    x = Tensor(rng().standard_normal((512, width)).astype(np.float32))
    relu = ReLU()
    for _ in range(depth):
        x = relu(make_layer(width)(x))
    return float(x.data.astype(np.float64).std())  # float64: squaring 1e21 overflows float32


def fixed_std(std):
    def make(width):
        layer = Dense(width, width)
        layer.weights.data[:] = rng().normal(0, std, (width, width))
        return layer

    return make


set_seed(1)
spreads = {
    "normal std=1": final_std(fixed_std(1.0)),
    "normal std=0.01": final_std(fixed_std(0.01)),
    "xavier": final_std(lambda width: Dense(width, width, init="xavier")),
    "kaiming": final_std(lambda width: Dense(width, width, init="kaiming")),
}
for scheme, spread in spreads.items():
    print(f"{scheme:16} std of the 20th layer's output: {spread:.3g}")
assert spreads["normal std=1"] > 1e10 and spreads["normal std=0.01"] < 1e-10
assert 0.3 < spreads["kaiming"] < 3 and spreads["xavier"] < spreads["kaiming"]

# %% [markdown]
# Standard normal weights multiply the spread by about √(256/2) ≈ 11 per layer: 11²⁰ ≈ 10²¹.
# Weights of std 0.01 divide it by about 9 per layer. Xavier, designed for activations that keep
# the whole signal, loses a factor √2 per ReLU layer (2⁻¹⁰ ≈ 0.001 after 20 layers); Kaiming
# compensates exactly and the spread stays near 1. Those are the networks that can train.
#
# ## What you built
#
# `Parameter`, `Module` (parameters found by walking the tree, `zero_grad`, `train`/`eval`,
# `state_dict`/`load_state_dict`, a nested `repr`), `Dense` (alias `Linear`) with Xavier and Kaiming
# initialisation. Run `tito module complete 04_layers` to unlock checkpoint 03.
# Next: **Module 05 · Dense networks**, which stacks these layers into complete models.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint Module.named_parameters --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `Module.named_parameters` 2: self._attributes() gives (name, value) pairs, list items already named `name.i`; remember parameters by id() in an insertion-ordered dict.
# - `Module.train` 2: named_children() gives the children; call train(mode) on each Module among them.
# - `Module.state_dict` 2: named_parameters() + named_buffers(); _array(value) is the array of a Tensor or of an array; np.array(..., copy=True).
# - `Module.load_state_dict` 2: np.shape on both sides; np.copyto(_array(target), value) writes in place.
# - `Dense.forward` 2: reshape(-1, self.input_size) before the product, reshape(*x.shape[:-1], self.output_size) after it.
# - `xavier_uniform` 2: rng().uniform(low, high, shape), then .astype(np.float32).
# - `kaiming_uniform` 2: Only the limit changes.
