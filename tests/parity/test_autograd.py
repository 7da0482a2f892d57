"""Parity with PyTorch: forward values AND gradients of every op, layer and loss, in float64.

Each case builds the same computation in tinytorch and in PyTorch from the same float64 arrays,
backpropagates the same random upstream gradient, and compares outputs and the gradients of every
input and parameter to 1e-5 relative.
"""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask
from tinytorch.core.autograd import backward
from tinytorch.core.layers import Dense
from tinytorch.core.losses import BinaryCrossEntropy, CrossEntropyLoss, MeanSquaredError
from tinytorch.core.normalization import BatchNorm1D, BatchNorm2D, LayerNorm
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-10


def rand(*shape, low=None, high=None, seed=0):
    generator = np.random.default_rng(seed + sum(shape) * 7 + len(shape))
    if low is not None:
        return generator.uniform(low, high, shape)
    return generator.standard_normal(shape)


def assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def check(ours_fn, torch_fn, *arrays, params=()):
    """Run both, compare the forward result, backpropagate one random gradient, compare all gradients.

    arrays: float64 inputs (each becomes a grad-requiring tensor on both sides);
    params: pairs (tinytorch tensor, torch tensor) of parameters held by the layers themselves.
    """
    ours_inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_out, torch_out = ours_fn(*ours_inputs), torch_fn(*torch_inputs)
    assert_close(ours_out.data, torch_out, "forward")
    upstream = np.random.default_rng(99).standard_normal(ours_out.shape)
    backward(ours_out, upstream)
    torch_out.backward(torch.tensor(upstream))
    for i, (ours, theirs) in enumerate(zip(ours_inputs, torch_inputs)):
        assert ours.grad is not None, f"input {i} got no gradient"
        assert_close(ours.grad.data, theirs.grad, f"gradient of input {i}")
    for i, (ours, theirs) in enumerate(params):
        assert_close(ours.grad.data, theirs.grad, f"gradient of parameter {i}")


def float64_params(layer):
    """Switch a layer's parameters to float64 and return (ours, torch copy) pairs."""
    pairs = []
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
        pairs.append((p, torch.tensor(p.data, requires_grad=True)))
    return pairs


def randomize(layer, seed):
    """Give every parameter random values (zero biases and unit gammas would hide mistakes)."""
    generator = np.random.default_rng(seed)
    for p in layer.parameters():
        p.data = (p.data + 0.5 * generator.standard_normal(p.shape)).astype(np.float32)


# --- elementwise arithmetic, with broadcasting ----------------------------------------------------
SHAPE_PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3))]


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize(
    "op", ["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv"]
)
def test_binary_ops_with_broadcasting(op, shapes):
    fns = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b, "radd": lambda a, b: 2.5 + a * b, "rsub": lambda a, b: 2.5 - a * b,
        "rmul": lambda a, b: 2.5 * (a + b), "rdiv": lambda a, b: 2.5 / (a * b),
    }  # fmt: skip
    a, b = rand(*shapes[0], low=0.5, high=2.0), rand(*shapes[1], low=0.5, high=2.0, seed=1)
    check(fns[op], fns[op], a, b)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5, 1])
def test_pow(exponent):
    check(lambda x: x**exponent, lambda x: x**exponent, rand(3, 4, low=0.3, high=3.0))


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("neg", lambda x: -x, lambda x: -x),
        ("exp", lambda x: x.exp(), torch.exp),
        ("log", lambda x: x.log(), torch.log),
        ("sqrt", lambda x: x.sqrt(), torch.sqrt),
        ("x*x", lambda x: x * x, lambda x: x * x),
        ("chain", lambda x: ((x * 3).exp() / (x + 1)).log() - x**2, lambda x: ((x * 3).exp() / (x + 1)).log() - x**2),
    ],
)
def test_unary_ops(name, ours, theirs):
    check(ours, theirs, rand(2, 3, 4, low=0.2, high=2.0))


# --- matmul -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
     ((3, 4), (2, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3))],  # fmt: skip
    ids=str,
)
def test_matmul(shape_a, shape_b):
    check(lambda a, b: a @ b, lambda a, b: a @ b, rand(*shape_a), rand(*shape_b, seed=3))


# --- reductions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (-1, -2)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_reductions(reduce, axis, keepdims):
    x = rand(3, 4, 5)  # continuous random values: no ties for max

    def theirs(t):
        dims = tuple(range(t.ndim)) if axis is None else axis
        if reduce == "max":
            return torch.amax(t, dim=dims, keepdim=keepdims)
        return getattr(torch, reduce)(t, dim=dims, keepdim=keepdims)

    check(lambda t: getattr(t, reduce)(axis=axis, keepdims=keepdims), theirs, x)


def test_max_splits_ties_evenly_like_amax():
    x = np.array([[1.0, 5.0, 5.0, 5.0], [2.0, 2.0, 0.0, 1.0]])
    check(lambda t: t.max(axis=1), lambda t: torch.amax(t, dim=1), x)
    check(lambda t: t.max(), lambda t: torch.amax(t), x)


# --- shapes and indexing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("reshape", lambda x: x.reshape(4, 6) * 2, lambda x: x.reshape(4, 6) * 2),
        ("reshape -1", lambda x: x.reshape(-1) ** 2, lambda x: x.reshape(-1) ** 2),
        ("permute", lambda x: x.permute(2, 0, 1) * x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1) ** 2),
        ("transpose", lambda x: x.transpose(0, 2).exp(), lambda x: x.transpose(0, 2).exp()),
        ("T", lambda x: x.T @ x, lambda x: x.transpose(-2, -1) @ x),
        ("basic index", lambda x: x[1, :, ::2] * 3, lambda x: x[1, :, ::2] * 3),
        ("ellipsis/None", lambda x: x[..., None, 1], lambda x: x[..., None, 1]),
        ("repeated rows", lambda x: x[:, np.array([0, 2, 0, 0])] ** 2, lambda x: x[:, [0, 2, 0, 0]] ** 2),
        ("pairs", lambda x: x[np.array([1, 0, 1]), np.array([2, 2, 2])], lambda x: x[[1, 0, 1], [2, 2, 2]]),
        ("mask", lambda x: x[x.data > 0] * 2, lambda x: x[x > 0] * 2),
    ],
)
def test_shape_ops_and_indexing(name, ours, theirs):
    check(ours, theirs, rand(2, 3, 4))


# --- activations --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (ReLU(), torch.relu), (Sigmoid(), torch.sigmoid), (Tanh(), torch.tanh),
        (GELU(), lambda x: F.gelu(x, approximate="tanh")),
        (Softmax(), lambda x: torch.softmax(x, -1)), (Softmax(dim=1), lambda x: torch.softmax(x, 1)),
        (LogSoftmax(), lambda x: torch.log_softmax(x, -1)), (LogSoftmax(dim=0), lambda x: torch.log_softmax(x, 0)),
    ],  # fmt: skip
    ids=repr,
)
def test_activations(ours, theirs):
    check(ours, theirs, rand(3, 4, 5) * 3)


@pytest.mark.parametrize(
    "ours, theirs",
    [(Softmax(), lambda x: torch.softmax(x, -1)), (LogSoftmax(), lambda x: torch.log_softmax(x, -1)),
     (Sigmoid(), torch.sigmoid), (GELU(), lambda x: F.gelu(x, approximate="tanh"))],  # fmt: skip
    ids=repr,
)
def test_activations_at_extreme_inputs(ours, theirs):
    check(ours, theirs, np.array([[-1e4, -30.0, 0.0, 30.0, 1e4], [5.0, 5.0, 5.0, 5.0, 5.0]]))


# --- layers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_shape", [(5,), (2, 3)], ids=str)
def test_dense(batch_shape):
    layer = Dense(4, 3)
    layer.bias.data = rand(3, seed=5).astype(np.float32)
    (w, tw), (b, tb) = float64_params(layer)
    check(layer, lambda x: x @ tw + tb, rand(*batch_shape, 4), params=[(w, tw), (b, tb)])


@pytest.mark.parametrize(
    "in_channels, out_channels, kernel, stride, padding, size",
    [(3, 4, 3, 1, 1, (7, 6)), (2, 5, 3, 2, 1, (8, 8)), (2, 3, (3, 2), 2, 0, (9, 7)), (1, 2, 5, 3, 2, (9, 9))],
)
def test_conv2d(in_channels, out_channels, kernel, stride, padding, size):
    layer = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding)
    layer.bias.data = rand(out_channels, seed=6).astype(np.float32)
    (w, tw), (b, tb) = float64_params(layer)
    check(layer, lambda x: F.conv2d(x, tw, tb, stride=stride, padding=padding),
          rand(2, in_channels, *size), params=[(w, tw), (b, tb)])  # fmt: skip


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1), ((2, 3), 2)], ids=str)
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pooling(pool, kernel, stride):
    ours = (MaxPool2D if pool == "max" else AvgPool2D)(kernel, stride)
    torch_pool = F.max_pool2d if pool == "max" else F.avg_pool2d
    check(ours, lambda x: torch_pool(x, kernel, stride), rand(2, 3, 8, 9))


def random_mask(*shape, seed=12):
    """A boolean mask (True = may attend) in which every query sees at least one key."""
    mask = np.random.default_rng(seed).random(shape) > 0.4
    mask[..., 0] = True
    return mask


@pytest.mark.parametrize("mask", [None, "causal", "boolean", "additive"])
def test_scaled_dot_product_attention(mask):
    q, k, v = rand(2, 3, 5, 4), rand(2, 3, 5, 4, seed=1), rand(2, 3, 5, 6, seed=2)
    if mask == "causal":
        ours_mask, torch_mask = causal_mask(5), torch.tensor(np.tril(np.ones((5, 5), dtype=bool)))
    elif mask == "boolean":
        ours_mask = random_mask(2, 1, 5, 5)
        torch_mask = torch.tensor(ours_mask)
    elif mask == "additive":
        ours_mask = rand(5, 5, seed=3)
        torch_mask = torch.tensor(ours_mask)
    else:
        ours_mask = torch_mask = None
    attention = ScaledDotProductAttention()
    check(lambda q, k, v: attention(q, k, v, mask=ours_mask),
          lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch_mask), q, k, v)  # fmt: skip

    def torch_weights(q, k):
        scores = q @ k.transpose(-2, -1) / 2.0  # √4
        if torch_mask is not None and torch_mask.dtype == torch.bool:
            scores = scores.masked_fill(~torch_mask, float("-inf"))
        elif torch_mask is not None:
            scores = scores + torch_mask
        return torch.softmax(scores, -1)

    check(lambda q, k: attention(q, k, Tensor(v), mask=ours_mask, need_weights=True)[1], torch_weights, q, k)


def torch_multi_head(params, heads, query, key, value, mask=None):
    """PyTorch reference of MultiHeadAttention with the same parameters (weights stored (in, out))."""
    def split(x):
        batch, length, d_model = x.shape
        return x.reshape(batch, length, heads, d_model // heads).permute(0, 2, 1, 3)

    q = split(query @ params["q_proj.weights"] + params["q_proj.bias"])
    k = split(key @ params["k_proj.weights"] + params["k_proj.bias"])
    v = split(value @ params["v_proj.weights"] + params["v_proj.bias"])
    if mask is not None and mask.ndim == 3:
        mask = mask[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    batch, _, length, _ = out.shape
    merged = out.permute(0, 2, 1, 3).reshape(batch, length, -1)
    return merged @ params["out_proj.weights"] + params["out_proj.bias"]


@pytest.mark.parametrize("kind", ["self", "causal", "cross", "cross+mask"])
def test_multi_head_attention(kind):
    mha = MultiHeadAttention(8, 2)
    randomize(mha, seed=13)
    pairs = float64_params(mha)
    params = {name: theirs for (name, _), (_, theirs) in zip(mha.named_parameters(), pairs)}
    x, memory = rand(2, 5, 8), rand(2, 7, 8, seed=4)
    if kind == "self":
        check(lambda x: mha(x, x, x), lambda x: torch_multi_head(params, 2, x, x, x), x, params=pairs)
    elif kind == "causal":
        mask = np.tril(np.ones((5, 5), dtype=bool))
        check(lambda x: mha(x, x, x, mask=causal_mask(5)),
              lambda x: torch_multi_head(params, 2, x, x, x, torch.tensor(mask)), x, params=pairs)  # fmt: skip
    else:
        mask = random_mask(2, 5, 7) if kind == "cross+mask" else None
        torch_mask = None if mask is None else torch.tensor(mask)
        check(lambda x, m: mha(x, m, m, mask=mask),
              lambda x, m: torch_multi_head(params, 2, x, m, m, torch_mask), x, memory, params=pairs)  # fmt: skip


# --- normalisation (training mode: batch statistics) ---------------------------------------------
@pytest.mark.parametrize(
    "layer, shape",
    [(BatchNorm1D(4), (6, 4)), (BatchNorm1D(3), (5, 3, 7)), (BatchNorm2D(3), (4, 3, 5, 6))],
    ids=["BatchNorm1D (N,F)", "BatchNorm1D (N,C,L)", "BatchNorm2D"],
)
def test_batch_norm(layer, shape):
    randomize(layer, seed=14)
    (gamma, torch_gamma), (beta, torch_beta) = float64_params(layer)
    check(layer, lambda x: F.batch_norm(x, None, None, torch_gamma, torch_beta, training=True, eps=layer.eps),
          rand(*shape) * 3 + 1, params=[(gamma, torch_gamma), (beta, torch_beta)])  # fmt: skip


def test_batch_norm_in_eval_mode_uses_running_statistics():
    layer = BatchNorm2D(3)
    randomize(layer, seed=15)
    layer(Tensor(rand(4, 3, 5, 5).astype(np.float32) * 2 + 1))  # one training step fills the running stats
    layer.eval()
    (gamma, torch_gamma), (beta, torch_beta) = float64_params(layer)
    mean, var = torch.tensor(layer.running_mean.astype(np.float64)), torch.tensor(layer.running_var.astype(np.float64))
    check(layer, lambda x: F.batch_norm(x, mean, var, torch_gamma, torch_beta, training=False, eps=layer.eps),
          rand(2, 3, 5, 5, seed=5), params=[(gamma, torch_gamma), (beta, torch_beta)])  # fmt: skip


@pytest.mark.parametrize("normalized_shape, shape", [(6, (4, 6)), (6, (2, 3, 6)), ((3, 6), (2, 3, 6))], ids=str)
def test_layer_norm(normalized_shape, shape):
    layer = LayerNorm(normalized_shape)
    randomize(layer, seed=16)
    (gamma, torch_gamma), (beta, torch_beta) = float64_params(layer)
    dims = layer.normalized_shape
    check(layer, lambda x: F.layer_norm(x, dims, torch_gamma, torch_beta, eps=layer.eps),
          rand(*shape) * 4 - 2, params=[(gamma, torch_gamma), (beta, torch_beta)])  # fmt: skip


# --- losses -------------------------------------------------------------------------------------
def test_mean_squared_error():
    target = rand(4, 3, seed=7)
    check(lambda p: MeanSquaredError()(p, target), lambda p: F.mse_loss(p, torch.tensor(target)), rand(4, 3))
    check(lambda p, t: MeanSquaredError()(p, t), F.mse_loss, rand(4, 3), target)  # target gradient too


def test_binary_cross_entropy_from_probabilities():
    target = np.random.default_rng(8).integers(0, 2, (6, 2)).astype(np.float64)
    probabilities = rand(6, 2, low=0.02, high=0.98)
    check(lambda p: BinaryCrossEntropy()(p, target),
          lambda p: F.binary_cross_entropy(p, torch.tensor(target)), probabilities)  # fmt: skip


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_binary_cross_entropy_from_logits(scale):
    target = np.random.default_rng(9).uniform(0, 1, (5, 3))  # soft targets work as well
    check(lambda z: BinaryCrossEntropy(from_logits=True)(z, target),
          lambda z: F.binary_cross_entropy_with_logits(z, torch.tensor(target)), rand(5, 3) * scale)  # fmt: skip


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_2d(scale):
    target = np.array([0, 3, 1, 1, 4, 2])
    check(lambda z: CrossEntropyLoss()(z, target),
          lambda z: F.cross_entropy(z, torch.tensor(target)), rand(6, 5) * scale)  # fmt: skip


def test_cross_entropy_sequences():
    target = np.random.default_rng(10).integers(0, 7, (3, 4))
    check(lambda z: CrossEntropyLoss()(z, target),
          lambda z: F.cross_entropy(z.permute(0, 2, 1), torch.tensor(target)), rand(3, 4, 7))  # fmt: skip


def test_a_small_network_end_to_end():
    """Dense -> GELU -> Dense -> cross-entropy: every parameter's gradient matches."""
    first, second = Dense(6, 8), Dense(8, 4)
    first.bias.data = rand(8, seed=11).astype(np.float32)
    params = float64_params(first) + float64_params(second)
    (_, w1), (_, b1), (_, w2), (_, b2) = params
    target = np.array([0, 3, 2, 1, 1])
    check(lambda x: CrossEntropyLoss()(second(GELU()(first(x))), target),
          lambda x: F.cross_entropy(F.gelu(x @ w1 + b1, approximate="tanh") @ w2 + b2, torch.tensor(target)),
          rand(5, 6), params=params)  # fmt: skip
