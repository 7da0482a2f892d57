"""Property-based gradient checks: backward() agrees with finite differences on random shapes.

Hypothesis draws shapes (broadcasting pairs, reduction axes, matmul operands, indices) and values;
`gradient_check` compares the engine's gradients with central differences in float64. Values are
odd multiples of 1/16 (never 0, so ReLU's kink is never straddled) or, where a positive domain is
needed, multiples of 1/8 in [0.5, 4]. Runs derandomized, so the suite is deterministic.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import backward, gradient_check
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import im2col
from tinytorch.core.tensor import Tensor

SETTINGS = settings(deadline=None, max_examples=60, derandomize=True, database=None)

ANY = st.integers(-48, 47).map(lambda k: (2 * k + 1) / 16)  # in [-6, 6], never 0
POSITIVE = st.integers(4, 32).map(lambda k: k / 8)  # in [0.5, 4]


def arrays(shape, elements=ANY, unique=False):
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


def assert_gradients_match(fn, *inputs):
    result = gradient_check(fn, *(Tensor(x) for x in inputs))
    assert result.ok, result


@SETTINGS
@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4))
def test_binary_elementwise_ops_with_broadcasting(data, shapes):
    a_shape, b_shape = shapes.input_shapes
    op = data.draw(st.sampled_from(["add", "sub", "mul", "div", "mixed"]))
    a = data.draw(arrays(a_shape))
    b = data.draw(arrays(b_shape, POSITIVE))  # a positive divisor
    fn = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "mixed": lambda a, b: (a * b - b) / (b + a * a),
    }[op]
    assert_gradients_match(fn, a, b)


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_unary_ops_and_activations(data, shape):
    name = data.draw(st.sampled_from(["neg", "exp", "log", "sqrt", "pow", "relu", "sigmoid", "tanh", "gelu"]))
    positive = name in ("log", "sqrt", "pow")
    x = data.draw(arrays(shape, POSITIVE if positive else ANY))
    exponent = data.draw(st.sampled_from([2, 3, -1, 0.5, 1.5]))
    fn = {
        "neg": lambda x: -x, "exp": lambda x: (x / 4).exp(), "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(),
        "pow": lambda x: x**exponent, "relu": ReLU(), "sigmoid": Sigmoid(), "tanh": Tanh(), "gelu": GELU(),
    }[name]  # fmt: skip
    assert_gradients_match(fn, x)


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
def test_softmax_along_a_random_axis(data, shape):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    activation = data.draw(st.sampled_from([Softmax, LogSoftmax]))(dim=dim)
    assert_gradients_match(activation, data.draw(arrays(shape)))


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_reductions_over_random_axes(data, shape):
    axis = data.draw(st.none() | hnp.valid_tuple_axes(len(shape), min_size=1) | st.integers(-len(shape), len(shape) - 1))
    keepdims = data.draw(st.booleans())
    reduce = data.draw(st.sampled_from(["sum", "mean", "max"]))
    x = data.draw(arrays(shape, unique=True))  # distinct values: max has a derivative
    assert_gradients_match(lambda t: getattr(t, reduce)(axis=axis, keepdims=keepdims) * 1.5, x)


@st.composite
def matmul_shapes(draw):
    """Operand shapes NumPy's matmul accepts: 1-D vectors, matrices, broadcast batches."""
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    batch_a, batch_b = batch.input_shapes
    a = (k,) if draw(st.booleans()) and not batch_a else (*batch_a, n, k)
    b = (k,) if draw(st.booleans()) and not batch_b else (*batch_b, k, m)
    return a, b


@SETTINGS
@given(st.data(), matmul_shapes())
def test_matmul_of_any_shapes(data, shapes):
    a, b = data.draw(arrays(shapes[0])), data.draw(arrays(shapes[1]))
    assert_gradients_match(lambda a, b: a @ b, a, b)


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=2, max_dims=3, max_side=4))
def test_shape_ops_and_fancy_indexing(data, shape):
    x = data.draw(arrays(shape))
    dims = data.draw(st.permutations(range(len(shape))))
    rows = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6))  # repeats allowed
    assert_gradients_match(lambda t: t.permute(*dims).reshape(-1) * 2, x)
    assert_gradients_match(lambda t: t[np.array(rows)] ** 2, x)
    assert_gradients_match(lambda t: t[..., ::2] * t[..., ::2], x)


@SETTINGS
@given(st.data())
def test_im2col_windows(data):
    kh, kw, stride, padding = (data.draw(st.integers(1, 3)) for _ in range(4))
    h, w = data.draw(st.integers(kh, 6)), data.draw(st.integers(kw, 6))
    x = data.draw(arrays((2, data.draw(st.integers(1, 2)), h, w)))
    assert_gradients_match(lambda t: im2col(t, (kh, kw), stride, padding - 1) ** 2, x)


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=2, max_dims=3, max_side=5))
def test_cross_entropy_of_random_batches(data, shape):
    logits = data.draw(arrays(shape))
    targets = data.draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
    result = gradient_check(CrossEntropyLoss(), Tensor(logits), targets)
    assert result.ok, result


@SETTINGS
@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_gradients_accumulate_over_paths_and_calls(data, shape):
    """x used on two paths, backward called twice: .grad = 2 · (analytic gradient of one call)."""
    x_np = data.draw(arrays(shape))
    x = Tensor(x_np, requires_grad=True)
    out = (x * x + 3 * x).sum()
    backward(out)
    backward(out)
    np.testing.assert_allclose(x.grad.data, 2 * (2 * x_np + 3), rtol=1e-12)
