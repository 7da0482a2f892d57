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
# # Module 05 · Dense networks: composing layers into models
#
# One layer draws one straight cut through the data; a stack of layers with nonlinearities between
# them can draw any shape. This module turns layers into **networks**:
#
# ```
#   image (N, 1, 28, 28)
#      │ Flatten          (N, 784)
#      │ Dense 784→128    (N, 128)    100,480 parameters
#      │ ReLU
#      │ Dense 128→10     (N, 10)       1,290 parameters
#      ▼
#   scores for 10 digits
# ```
#
# - `Sequential(*layers)`: run layers one after the other, the output of each the input of the next;
# - `MLP(sizes)`: the multi-layer perceptron above in one line, `MLP([784, 128, 10])`;
# - `Flatten`: images into vectors, keeping the batch axis;
# - `count_parameters(model)` and `summary(model, input_shape)`: what the model costs, layer by layer.
#
# The classic demonstration that depth matters is XOR: no single straight line separates
# `(0,0),(1,1)` from `(0,1),(1,0)`, but two layers can. We build that network by hand at the end.

# %%
#| default_exp core.networks

# %%
#| export
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense, Module
from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.activations import Tanh
from tinytorch.core.setup import peak_memory, set_seed, time_it

# %% [markdown]
# ## 1. Sequential: a pipeline of layers
#
# The naive way to run a network is to write out each step by hand:

# %%
def three_layer_by_hand(x, first, second, third):
    """The network written out: every new architecture means a new function like this one."""
    relu = ReLU()
    return third(relu(second(relu(first(x)))))


# %% [markdown]
# `Sequential` turns that function into data: a list of layers, applied in order. Because the list
# is stored as the attribute `layers`, Module's walk finds every parameter inside (named
# `layers.0.weights`, `layers.0.bias`, ...) and `repr` prints the whole pipeline. It accepts the
# layers as arguments, `Sequential(a, b, c)`, or as one list, `Sequential([a, b, c])`, and behaves
# like a list: `len(model)`, `model[0]`, `model[1:]` (a new Sequential sharing the same layers),
# `for layer in model`. Any callable works as a layer, the activations of Module 03 included.

# %%
#| export
class Sequential(Module):
    """Layers applied one after the other: Sequential(a, b, c) or Sequential([a, b, c])."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = layers[0]
        self.layers = list(layers)

    def forward(self, x):
        ### HINT: Each layer's output is the next layer's input, in order; the last output is the result.
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def append(self, layer):
        """Add a layer at the end (returns self, so calls can be chained)."""
        self.layers.append(layer)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


# %% [markdown]
# ### 🧪 Check: Sequential is the hand-written network

# %%
set_seed(0)
first, second, third = Dense(4, 8), Dense(8, 8), Dense(8, 2)
model = Sequential(first, ReLU(), second, ReLU(), third)
x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
assert np.array_equal(model(x).data, three_layer_by_hand(x, first, second, third).data)
assert len(model) == 5 and model[0] is first and isinstance(model[1], ReLU)
assert np.array_equal(model[:2](x).data, ReLU()(first(x)).data)  # a slice is a smaller network
assert Sequential([first, ReLU()]).layers[0] is first  # a list works too
names = [name for name, _ in model.named_parameters()]
assert names[:3] == ["layers.0.weights", "layers.0.bias", "layers.2.weights"]
print(model)

# %% [markdown]
# ## 2. Flatten and MLP
#
# A dense layer wants vectors; images come as `(N, C, H, W)`. `Flatten` reshapes each sample into
# one vector while keeping the batch axis: `(N, C, H, W) → (N, C·H·W)`. It is a recorded `reshape`,
# so gradients will flow back through it, and it costs nothing: a contiguous array is reshaped
# as a view, not copied.
#
# `MLP(sizes, activation=ReLU)` builds `Dense(sizes[0], sizes[1])`, an activation, `Dense(sizes[1],
# sizes[2])`, ... with **no** activation after the last layer: its raw outputs (logits) go to the
# loss, which applies softmax itself in a numerically stable way (Module 09). The activation is a
# class, instantiated once per hidden layer.

# %%
#| export
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1·d2·...): one vector per sample, the batch axis kept."""

    def forward(self, x):
        ### HINT: Keep the batch axis and merge all the other axes into one; let reshape infer its size.
        ### BEGIN SOLUTION
        return x.reshape(x.shape[0], -1)
        ### END SOLUTION


class MLP(Sequential):
    """Dense layers of the given sizes with `activation` between them (none after the last).

    MLP([784, 128, 10]) = Sequential(Dense(784, 128), ReLU(), Dense(128, 10)).
    """

    def __init__(self, sizes, activation=ReLU):
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
        ### HINT: One Dense per pair of consecutive sizes, with a fresh activation between two Dense layers but none
        ### HINT: after the last one (the output stays raw scores). Store the list in `layers`.
        ### BEGIN SOLUTION
        layers = []
        for i, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Dense(inputs, outputs))
            if i < len(sizes) - 2:
                layers.append(activation())
        ### END SOLUTION
        super().__init__(layers)
        self.sizes = list(sizes)


# %% [markdown]
# ### 🧪 Check: shapes through an image classifier

# %%
classifier = Sequential(Flatten(), MLP([3 * 8 * 8, 32, 16, 10], activation=Tanh))
images = Tensor(np.random.default_rng(1).standard_normal((6, 3, 8, 8)).astype(np.float32))
assert Flatten()(images).shape == (6, 192) and classifier(images).shape == (6, 10)
mlp = classifier[1]
assert [type(layer).__name__ for layer in mlp] == ["Dense", "Tanh", "Dense", "Tanh", "Dense"]
assert np.shares_memory(Flatten()(images).data, images.data)  # a view, no copy
print(classifier)

# %% [markdown]
# ## 3. What a model costs: parameters and a summary
#
# A dense layer from `a` to `b` features owns `a·b` weights and `b` biases. MNIST's classic
# `784 → 128 → 10` network therefore has `784·128 + 128 + 128·10 + 10 = 101,770` parameters: 407 kB
# in float32. Counting is the first thing to do with any model -- it decides memory, and roughly the
# compute per sample (one multiply-add per weight).
#
# `summary(model, input_shape)` runs one batch of zeros through the layers of a `Sequential` (nested
# ones, like an MLP inside, opened up; any other model as a whole) and reports, per layer, the
# output shape and the number of parameters. It returns the rows and prints them as a table.
# Nothing here needs gradients, so it switches graph recording off (`Tensor.grad_enabled`) while it
# runs -- Module 09 packages that switch as `no_grad()`.

# %%
#| export
def count_parameters(model):
    """Total number of learnable numbers in the model."""
    ### HINT: Add up the number of values in every parameter of the model, as a Python int.
    ### BEGIN SOLUTION
    return int(sum(p.size for p in model.parameters()))
    ### END SOLUTION


def summary(model, input_shape, show=True):
    """Run zeros of `input_shape` through the model; return (and print, if `show`) one row per layer:
    (layer, output shape, parameters), plus a final ("total", output shape, all parameters) row."""
    x = Tensor(np.zeros(input_shape, dtype=np.float32))
    recording, Tensor.grad_enabled = Tensor.grad_enabled, False  # shapes only: record no graph
    try:
        rows = []
        for layer in _leaf_layers(model):
            x = layer(x)
            rows.append((repr(layer).splitlines()[0], x.shape, int(sum(p.size for p in layer.parameters()))))
    finally:
        Tensor.grad_enabled = recording
    rows.append(("total", x.shape, count_parameters(model)))
    if show:
        print(format_table(rows))
    return rows


def _leaf_layers(model):
    """The layers of a Sequential, nested Sequentials (an MLP) opened up; any other model whole."""
    if not isinstance(model, Sequential):
        return [model]
    return [leaf for layer in model.layers for leaf in _leaf_layers(layer)]


def format_table(rows, header=("layer", "output shape", "parameters")):
    """Rows as an aligned plain-text table (the last row, a total, under a rule)."""
    cells = [header] + [(name, str(shape), f"{count:,}") for name, shape, count in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]

    def line(row):
        return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"

    rule = "-" * (sum(widths) + 4)
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:-1]), rule, line(cells[-1])])


# %% [markdown]
# ### 🧪 Check: the MNIST network has 101,770 parameters

# %%
mnist = Sequential(Flatten(), MLP([784, 128, 10]))
assert count_parameters(mnist) == 784 * 128 + 128 + 128 * 10 + 10 == 101_770
rows = summary(mnist, (1, 1, 28, 28))
assert rows[-1] == ("total", (1, 10), 101_770)
assert [shape for _, shape, _ in rows[:-1]] == [(1, 784), (1, 128), (1, 128), (1, 10)]
assert [params for _, _, params in rows[:-1]] == [0, 100_480, 0, 1_290]
recorded = mnist(Tensor(np.zeros((1, 1, 28, 28), dtype=np.float32)))
assert recorded.requires_grad and Tensor.grad_enabled  # summary switched recording back on

# %% [markdown]
# ### Measured: wide against deep at the same parameter count
#
# Time and memory per forward pass grow with the parameters (each weight is one multiply-add per
# sample) and with the activations stored. Two networks with about the same number of parameters,
# on a batch of 256 MNIST images: one wide hidden layer, or four narrower ones.

# %%
set_seed(2)
batch = Tensor(np.random.default_rng(2).standard_normal((256, 784)).astype(np.float32))
candidates = {"wide 784-512-10": MLP([784, 512, 10]), "deep 784-400-256-128-64-10": MLP([784, 400, 256, 128, 64, 10])}
for name, net in candidates.items():
    seconds, _ = time_it(net, batch)
    memory, _ = peak_memory(net, batch)
    flops = 2 * batch.shape[0] * sum(layer.weights.size for layer in net if isinstance(layer, Dense))
    print(f"{name:28} {count_parameters(net):>9,} params  {seconds * 1e3:6.2f} ms  "
          f"{flops / seconds / 1e9:5.1f} GFLOP/s  peak {memory / 1e6:.2f} MB")  # fmt: skip

# %% [markdown]
# Similar parameter counts give similar compute, but the deep network makes more, smaller matrix
# products (lower GFLOP/s: less work per call) and keeps more intermediate activations alive.
#
# ## 4. Depth matters: XOR by hand
#
# With weights we choose ourselves, a 2-2-1 network computes XOR: hidden unit 1 fires for
# "x1 OR x2", hidden unit 2 for "x1 AND x2", and the output is "OR and not AND".
#
# ```
#   x1 ─┬─► h1 = relu(x1 + x2)       y = h1 - 2·h2
#       ╳                             (0,0)→0  (0,1)→1  (1,0)→1  (1,1)→2-2=0
#   x2 ─┴─► h2 = relu(x1 + x2 - 1)
# ```

# %%
xor = MLP([2, 2, 1])
xor[0].weights.data[:] = [[1.0, 1.0], [1.0, 1.0]]
xor[0].bias.data[:] = [0.0, -1.0]
xor[2].weights.data[:] = [[1.0], [-2.0]]
xor[2].bias.data[:] = [0.0]
inputs = Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
assert xor(inputs).data.ravel().tolist() == [0.0, 1.0, 1.0, 0.0]
print("XOR:", xor(inputs).data.ravel().tolist())

# %% [markdown]
# Without the hidden layer it is impossible, whatever the weights: a single dense layer computes
# z = w1·x1 + w2·x2 + b, and z(0,0) + z(1,1) = z(0,1) + z(1,0) always. XOR wants the right-hand
# pair above a threshold and the left-hand pair below it -- but then the left sum would be smaller
# than the right one. A monotonic activation after it (sigmoid) cannot change which side wins.

# %%
for seed in range(3):
    set_seed(seed)
    z = Dense(2, 1)(inputs).data.ravel()
    assert abs((z[0] + z[3]) - (z[1] + z[2])) < 1e-6
    print("one layer, random weights: z =", [round(float(v), 3) for v in z], " z00 + z11 = z01 + z10")

# %% [markdown]
# Module 09 will find such weights automatically, by gradient descent.
#
# ## 5. Trading weights with PyTorch
#
# A model trained in PyTorch can run here, and the other way round, if the numbers go to the right
# places. Two things differ between the two state dicts of the same network:
#
# | | ours | PyTorch |
# |---|---|---|
# | a Dense / Linear weight | `weights`, shape `(in, out)` (`x @ W`) | `weight`, shape `(out, in)` (`x @ W.T`) |
# | layers of a Sequential | `layers.0.…`, `layers.2.…` | `0.…`, `2.…` |
# | other parameter names | the course's (`gamma`, `beta`) | the layer's `aliases` give PyTorch's (`weight`, `bias`) |
#
# `torch_state_dict(model)` writes our model's state in PyTorch's names and layout (NumPy arrays:
# `torch.from_numpy` each one, or load them as they are), and `load_torch_state_dict(model, d)`
# reads PyTorch's (`torch_model.state_dict()` itself works: a CPU tensor converts with
# `np.asarray`). Only the Dense weights are transposed -- a convolution's `(out, in, KH, KW)` is
# already PyTorch's layout. The model must have the same architecture: names and shapes are checked
# by our `load_state_dict`, so a mismatch is an error naming the entry, never a silent misload.
# (`tests/parity/test_interchange.py` runs both directions against PyTorch itself.)

# %%
#| export
def _pytorch_name(model, name):
    """PyTorch's dotted name for our parameter or buffer `name`, and whether it is a Dense weight."""
    module, parts, segments = model, [], name.split(".")
    while len(segments) > 1:
        attribute, segments = segments[0], segments[1:]
        value = getattr(module, attribute)
        if isinstance(value, (list, tuple)):  # an item of a list of layers: "layers.0"
            index, segments = segments[0], segments[1:]
            parts.append(index if isinstance(module, Sequential) else f"{attribute}.{index}")
            value = value[int(index)]
        else:
            parts.append(attribute)
        module = value
    own = segments[0]
    pytorch = {ours: theirs for theirs, ours in type(module).aliases.items()}
    return ".".join([*parts, pytorch.get(own, own)]), isinstance(module, Dense) and own == "weights"


def torch_state_dict(model):
    """The model's state_dict() in PyTorch's names and layout (Dense weights transposed to (out, in))."""
    state = {}
    for name, value in model.state_dict().items():
        theirs, transposed = _pytorch_name(model, name)
        state[theirs] = np.ascontiguousarray(value.T) if transposed else value
    return state


def load_torch_state_dict(model, state_dict):
    """Load a PyTorch state dict (arrays, or CPU tensors) into the same architecture built here."""
    ours = {}
    for name in model.state_dict():
        theirs, transposed = _pytorch_name(model, name)
        if theirs not in state_dict:
            raise KeyError(f"load_torch_state_dict: PyTorch's state has no {theirs!r} (our {name!r})")
        value = np.asarray(state_dict[theirs])
        ours[name] = value.T if transposed else value
    unexpected = set(state_dict) - {_pytorch_name(model, name)[0] for name in ours}
    if unexpected:
        raise KeyError(f"load_torch_state_dict: entries this model does not have: {sorted(unexpected)}")
    model.load_state_dict(ours)


# %% [markdown]
# ### 🧪 Check: the same network in both layouts gives the same numbers

# %%
set_seed(3)
ours = Sequential(Flatten(), MLP([6, 4, 3]))
theirs = torch_state_dict(ours)
assert list(theirs) == ["1.0.weight", "1.0.bias", "1.2.weight", "1.2.bias"] and theirs["1.0.weight"].shape == (4, 6)
x = np.random.default_rng(4).standard_normal((5, 2, 3)).astype(np.float32)
hidden = np.maximum(x.reshape(5, 6) @ theirs["1.0.weight"].T + theirs["1.0.bias"], 0)  # PyTorch's x @ W.T + b
assert np.allclose(hidden @ theirs["1.2.weight"].T + theirs["1.2.bias"], ours(Tensor(x)).data, atol=1e-6)
copy = Sequential(Flatten(), MLP([6, 4, 3]))
load_torch_state_dict(copy, theirs)
assert np.array_equal(copy(Tensor(x)).data, ours(Tensor(x)).data)
try:
    load_torch_state_dict(MLP([6, 4, 3]), theirs)  # a different nesting: names do not match
    raise AssertionError("a state dict of another architecture must be refused")
except KeyError as error:
    assert "'0.weight'" in str(error)

# %% [markdown]
# ## What you built
#
# `Sequential` (varargs or a list; indexable, sliceable, iterable), `Flatten`, `MLP(sizes,
# activation)`, `count_parameters` and `summary`, and `torch_state_dict` / `load_torch_state_dict`
# to trade weights with PyTorch. Run `tito module complete 05_dense` to unlock
# checkpoint 04. Next: **Module 06 · Spatial**, layers that understand images.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint Sequential.forward --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `Sequential.forward` 2: A loop over self.layers that reassigns x.
# - `Flatten.forward` 2: x.reshape with the batch size and -1.
# - `MLP.__init__` 2: zip(sizes[:-1], sizes[1:]) gives the pairs; `activation` is a class: call it to get a new instance.
# - `count_parameters` 2: sum over model.parameters() of each parameter's .size.
