"""Checkpoint 02 · intelligence: I can add the nonlinearity that lets networks learn."""
import math

import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor, ValuesNotKept

EXTREME = Tensor([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]])
ALL = [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), LogSoftmax()]


def test_relu_known_values():
    assert ReLU()(Tensor([-3.0, -0.0, 0.0, 0.25, 7.0])).data.tolist() == [0.0, 0.0, 0.0, 0.25, 7.0]


def test_sigmoid_and_tanh_known_values():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 4.0])
    np.testing.assert_allclose(Sigmoid()(Tensor(x)).data, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(Tanh()(Tensor(x)).data, np.tanh(x), rtol=1e-12)
    assert Sigmoid()(Tensor([0.0])).item() == 0.5


def test_gelu_matches_its_formula():
    x = np.linspace(-5, 5, 41)
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(GELU()(Tensor(x)).data, expected, rtol=1e-12)
    assert abs(GELU()(Tensor([1.0])).item() - 0.8411920) < 1e-6


def test_softmax_known_values_and_rows_sum_to_one():
    probs = Softmax()(Tensor([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]]))
    np.testing.assert_allclose(probs.data[0], [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    np.testing.assert_allclose(probs.data[1], [1 / 3] * 3, rtol=1e-6)
    scores = np.random.default_rng(2).standard_normal((4, 5, 6))
    np.testing.assert_allclose(Softmax(dim=1)(Tensor(scores)).data.sum(axis=1), 1.0, rtol=1e-12)


def test_log_softmax_equals_log_of_softmax_where_that_is_finite():
    scores = np.random.default_rng(3).standard_normal((3, 7))
    np.testing.assert_allclose(
        LogSoftmax()(Tensor(scores)).data, np.log(Softmax()(Tensor(scores)).data), rtol=1e-10
    )
    assert LogSoftmax()(Tensor([[0.0, 1e4]])).data.tolist() == [[-1e4, 0.0]]


@pytest.mark.parametrize("activation", ALL, ids=repr)
def test_stable_at_plus_minus_1e4(activation):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = activation(EXTREME)
    assert np.all(np.isfinite(out.data))
    assert out.dtype == np.float32 and out.shape == EXTREME.shape


def test_saturating_values_at_the_extremes():
    assert Sigmoid()(EXTREME).data[0, [0, -1]].tolist() == [0.0, 1.0]
    assert Tanh()(EXTREME).data[0, [0, -1]].tolist() == [-1.0, 1.0]
    assert GELU()(EXTREME).data[0, [0, -1]].tolist() == [0.0, 1e4]
    assert Softmax()(EXTREME).data[0, -1] == 1.0


def test_activations_record_their_operation():
    x = Tensor([[0.5, -0.5]], requires_grad=True)
    ops = [a(x)._op for a in ALL]
    assert ops == ["relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]
    assert all(a(x)._parents == (x,) for a in ALL)
    assert Softmax()(x)._saved == {"dim": -1} and LogSoftmax(dim=0)(x)._saved == {"dim": 0}


def _kept(tensor):
    try:
        return tensor._node.data is tensor.data
    except ValuesNotKept:
        return False


@pytest.mark.parametrize("activation", ALL, ids=lambda a: type(a).__name__)
def test_each_activation_keeps_what_its_backward_rule_reads(activation):
    """GELU's rule recomputes from the input; the others' derivatives are made of the output."""
    r = Tensor([[0.5, -0.5]], requires_grad=True) * Tensor([[2.0, 2.0]], requires_grad=True)  # a recorded result
    out = activation(r)
    reads_input = isinstance(activation, GELU)
    assert (_kept(r), _kept(out)) == (reads_input, not reads_input)
