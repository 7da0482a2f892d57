"""Checkpoint 03 · components: I can build the layers every network is made of."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dense, Linear, Module, Parameter
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor


class TwoLayer(Module):
    def __init__(self):
        super().__init__()
        self.hidden = Dense(4, 3)
        self.act = ReLU()
        self.out = Dense(3, 2)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class Tree(Module):
    """A parameter of its own, a sub-module, a list of layers and a weight shared with a sub-module."""

    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(2, dtype=np.float32))
        self.net = TwoLayer()
        self.heads = [Dense(2, 1), Tanh(), Dense(2, 5, bias=False)]
        self.shared = self.net.out.weights

    def forward(self, x):
        return self.net(x) * self.scale


def test_dense_hand_computed_output():
    layer = Dense(3, 2)
    layer.weights.data[:] = [[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]]
    layer.bias.data[:] = [0.25, -2.0]
    x = Tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]])
    # [1+4+0, -1+1+9] + b = [5.25, 7];  [-1+0+0, 1+0+6] + b = [-0.75, 5]
    assert layer(x).data.tolist() == [[5.25, 7.0], [-0.75, 5.0]]
    no_bias = Dense(3, 2, bias=False)
    no_bias.weights.data[:] = layer.weights.data
    assert no_bias(x).data.tolist() == [[5.0, 9.0], [-1.0, 7.0]]
    assert no_bias.bias is None and len(no_bias.parameters()) == 1
    assert Linear is Dense


def test_dense_matches_numpy_on_batches_and_sequences():
    set_seed(3)
    layer = Dense(6, 4)
    assert layer.weights.shape == (6, 4) and layer.bias.shape == (4,)
    assert layer.weights.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((5, 7, 6))
    expected = x @ layer.weights.data + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer(Tensor(x[0])).data, expected[0], rtol=1e-6, atol=1e-6)
    assert layer(Tensor(x)).shape == (5, 7, 4)


def test_dense_is_built_from_recorded_operations():
    layer = Dense(3, 2)
    out = layer(Tensor(np.ones((4, 3), dtype=np.float32)))
    assert out.requires_grad and out._op == "add" and out._parents[1] is layer.bias
    assert out._parents[0]._op == "matmul" and out._parents[0]._parents[1] is layer.weights


def test_xavier_and_kaiming_initialisation_statistics():
    set_seed(0)
    xavier = Dense(400, 200).weights.data
    limit = np.sqrt(6 / 600)
    assert np.abs(xavier).max() <= limit and np.abs(xavier).max() > 0.99 * limit
    assert abs(xavier.std() - limit / np.sqrt(3)) < 0.01 * limit and abs(xavier.mean()) < 0.01 * limit
    kaiming = Dense(400, 200, init="kaiming").weights.data
    assert abs(kaiming.var() - 2 / 400) < 0.03 * (2 / 400)
    with pytest.raises(ValueError):
        Dense(2, 2, init="zeros")


def test_seeded_initialisation_is_reproducible():
    set_seed(7)
    first = Dense(5, 5).weights.data.copy()
    set_seed(7)
    np.testing.assert_array_equal(Dense(5, 5).weights.data, first)
    assert not np.array_equal(Dense(5, 5).weights.data, first)


def test_named_parameters_walk_the_tree_in_order_and_once():
    tree = Tree()
    names = [name for name, _ in tree.named_parameters()]
    assert names == [
        "scale", "net.hidden.weights", "net.hidden.bias", "net.out.weights", "net.out.bias",
        "heads.0.weights", "heads.0.bias", "heads.2.weights",
    ]  # fmt: skip
    assert sum(p.size for p in tree.parameters()) == 2 + (12 + 3) + (6 + 2) + (2 + 1) + 10
    assert all(isinstance(p, Parameter) for p in tree.parameters())


def test_train_eval_and_zero_grad_reach_every_layer():
    tree = Tree()
    assert tree.training and tree.eval() is tree
    assert not tree.net.training and not tree.net.hidden.training and not tree.heads[2].training
    tree.train()
    assert tree.net.out.training and tree.heads[0].training
    for p in tree.parameters():
        p.grad = np.ones_like(p.data)
    tree.zero_grad()
    assert all(p.grad is None for p in tree.parameters())


def test_state_dict_round_trip_restores_outputs():
    set_seed(1)
    model = TwoLayer()
    x = Tensor(np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32))
    before = model(x).data.copy()
    saved = model.state_dict()
    assert list(saved) == ["hidden.weights", "hidden.bias", "out.weights", "out.bias"]
    assert saved["hidden.weights"].shape == (4, 3)
    for p in model.parameters():
        p.data += 1.0  # what training does
    assert not np.allclose(model(x).data, before)
    assert not np.allclose(saved["out.bias"], model.out.bias.data)  # the saved arrays are copies
    weights = model.hidden.weights
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model(x).data, before)
    assert model.hidden.weights is weights  # loaded in place: an optimizer keeps its references

    other = TwoLayer()
    other.load_state_dict(saved)
    np.testing.assert_array_equal(other(x).data, before)


def test_load_state_dict_refuses_bad_input_by_name():
    model = TwoLayer()
    saved = model.state_dict()
    with pytest.raises(ValueError, match="'hidden.bias'"):  # the name, quoted
        model.load_state_dict({**saved, "hidden.bias": np.zeros(4)})
    with pytest.raises(KeyError, match="out.weights"):
        model.load_state_dict({k: v for k, v in saved.items() if k != "out.weights"})


def test_repr_shows_the_nested_structure():
    text = repr(TwoLayer())
    assert text.splitlines() == [
        "TwoLayer(",
        "  (hidden): Dense(input_size=4, output_size=3, bias=True)",
        "  (act): ReLU()",
        "  (out): Dense(input_size=3, output_size=2, bias=True)",
        ")",
    ]
