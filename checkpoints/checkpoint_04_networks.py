"""Checkpoint 04 · networks: I can compose layers into complete networks."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Dense
from tinytorch.core.networks import MLP, Flatten, Sequential, count_parameters, summary
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor


def numpy_mlp(x, model):
    """The same network computed directly with NumPy from the model's arrays."""
    for layer in model:
        if isinstance(layer, Dense):
            x = x @ layer.weights.data + layer.bias.data
        elif isinstance(layer, ReLU):
            x = np.maximum(x, 0)
        elif isinstance(layer, Tanh):
            x = np.tanh(x)
    return x


def test_sequential_matches_a_direct_numpy_computation():
    set_seed(0)
    model = Sequential(Dense(5, 7), ReLU(), Dense(7, 3), Tanh(), Dense(3, 2))
    x = np.random.default_rng(1).standard_normal((4, 5))
    np.testing.assert_allclose(model(Tensor(x)).data, numpy_mlp(x, model), rtol=1e-5, atol=1e-6)


def test_sequential_accepts_varargs_or_a_list_and_acts_like_one():
    a, b, c = Dense(2, 3), ReLU(), Dense(3, 1)
    for model in (Sequential(a, b, c), Sequential([a, b, c])):
        assert model.layers == [a, b, c] and len(model) == 3
        assert model[0] is a and model[-1] is c and list(model) == [a, b, c]
    x = Tensor([[1.0, -2.0]])
    assert np.array_equal(Sequential(a, b, c)[:2](x).data, b(a(x)).data)
    assert [n for n, _ in Sequential(a, b, c).named_parameters()] == [
        "layers.0.weights", "layers.0.bias", "layers.2.weights", "layers.2.bias",
    ]  # fmt: skip


def test_mlp_structure_and_known_parameter_count():
    model = MLP([784, 128, 10])
    assert [type(layer).__name__ for layer in model] == ["Dense", "ReLU", "Dense"]
    assert count_parameters(model) == 101_770
    assert count_parameters(MLP([3, 4, 5, 2], activation=Sigmoid)) == (12 + 4) + (20 + 5) + (10 + 2)
    assert isinstance(MLP([3, 4, 2], activation=Tanh)[1], Tanh)
    with pytest.raises(ValueError):
        MLP([10])


def test_flatten_keeps_the_batch_axis_and_the_order():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    flat = Flatten()(Tensor(x))
    assert flat.shape == (2, 12)
    assert flat.data[1].tolist() == list(range(12, 24))


def test_hand_built_xor_network():
    xor = MLP([2, 2, 1])
    xor[0].weights.data[:] = [[1.0, 1.0], [1.0, 1.0]]
    xor[0].bias.data[:] = [0.0, -1.0]
    xor[2].weights.data[:] = [[1.0], [-2.0]]
    xor[2].bias.data[:] = [0.0]
    out = xor(Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]))
    assert out.data.ravel().tolist() == [0.0, 1.0, 1.0, 0.0]


def test_image_classifier_end_to_end_and_state_dict():
    set_seed(4)
    model = Sequential(Flatten(), MLP([3 * 4 * 4, 16, 10]))
    images = np.random.default_rng(2).standard_normal((8, 3, 4, 4)).astype(np.float32)
    logits = model(Tensor(images))
    np.testing.assert_allclose(logits.data, numpy_mlp(images.reshape(8, -1), model[1]), rtol=1e-5, atol=1e-6)
    assert logits.requires_grad  # every step recorded: ready for autograd
    copy = Sequential(Flatten(), MLP([3 * 4 * 4, 16, 10]))
    copy.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(copy(Tensor(images)).data, logits.data)


def test_summary_rows(capsys):
    rows = summary(Sequential(Flatten(), MLP([784, 128, 10])), (2, 1, 28, 28))
    assert [(shape, params) for _, shape, params in rows] == [
        ((2, 784), 0), ((2, 128), 100_480), ((2, 128), 0), ((2, 10), 1_290), ((2, 10), 101_770),
    ]  # fmt: skip
    assert rows[-1][0] == "total" and rows[1][0].startswith("Dense")
    printed = capsys.readouterr().out
    assert "101,770" in printed and "100,480" in printed
    assert Tensor.grad_enabled
