"""Parity with PyTorch: state dicts travel both ways between the same MLP or CNN built in each.

PyTorch's `state_dict()` loads into the tinytorch model (`load_torch_state_dict`), directly, through a
`torch.save` file, or as NumPy arrays; and tinytorch's `torch_state_dict()` loads into PyTorch with
`strict=True`. Either way both models then give the same outputs on the same input.
"""
import numpy as np
import pytest

import tinytorch
from tinytorch import nn
from tinytorch.nn.utils import load_torch_state_dict, torch_state_dict

torch = pytest.importorskip("torch")


def mlp(framework):
    return framework.nn.Sequential(
        framework.nn.Flatten(), framework.nn.Linear(12, 16), framework.nn.ReLU(), framework.nn.Linear(16, 5)
    )


def cnn(framework):
    layers = framework.nn
    return layers.Sequential(
        layers.Conv2d(3, 4, 3, padding=1), layers.ReLU(), layers.MaxPool2d(2),
        layers.Conv2d(4, 6, kernel_size=3, stride=2), layers.ReLU(), layers.AvgPool2d(2, stride=1),
        layers.Flatten(), layers.Linear(6, 3),
    )  # fmt: skip


class Named(torch.nn.Module):
    """A PyTorch model with named attributes and a LayerNorm (weight/bias = our gamma/beta)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.norm, self.head = torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.encoder(x))))


class OurNamed(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.norm, self.head = nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(nn.functional.relu(self.norm(self.encoder(x))))


ARCHITECTURES = {
    "mlp": (lambda: mlp(torch), lambda: mlp(tinytorch), (7, 3, 2, 2)),
    "cnn": (lambda: cnn(torch), lambda: cnn(tinytorch), (2, 3, 12, 12)),
    "named": (Named, OurNamed, (5, 4)),
}


def sample(shape):
    return np.random.default_rng(7).standard_normal(shape).astype(np.float32)


def assert_same_outputs(ours, theirs, shape):
    x = sample(shape)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(tinytorch.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_pytorch_state_dict_loads_into_tinytorch(name):
    make_theirs, make_ours, shape = ARCHITECTURES[name]
    torch.manual_seed(0)
    theirs, ours = make_theirs(), make_ours()
    load_torch_state_dict(ours, theirs.state_dict())  # CPU tensors, read with np.asarray
    assert_same_outputs(ours, theirs, shape)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_tinytorch_state_dict_loads_into_pytorch(name):
    make_theirs, make_ours, shape = ARCHITECTURES[name]
    tinytorch.manual_seed(1)
    theirs, ours = make_theirs(), make_ours()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in torch_state_dict(ours).items()}, strict=True)
    assert_same_outputs(ours, theirs, shape)


def test_through_torch_save_files_of_tensors_and_of_numpy_arrays(tmp_path):
    torch.manual_seed(2)
    theirs = cnn(torch)
    torch.save(theirs.state_dict(), tmp_path / "tensors.pt")
    torch.save({k: v.numpy() for k, v in theirs.state_dict().items()}, tmp_path / "arrays.pt")
    for file, weights_only in [("tensors.pt", True), ("arrays.pt", False)]:
        ours = cnn(tinytorch)
        load_torch_state_dict(ours, torch.load(tmp_path / file, weights_only=weights_only))
        assert_same_outputs(ours, theirs, (2, 3, 12, 12))


def test_a_linear_weight_is_transposed_and_nothing_else():
    torch.manual_seed(3)
    theirs, ours = cnn(torch), cnn(tinytorch)
    load_torch_state_dict(ours, theirs.state_dict())
    np.testing.assert_array_equal(ours[7].weight.numpy(), theirs[7].weight.detach().numpy().T)  # (in, out) here
    np.testing.assert_array_equal(ours[0].weight.numpy(), theirs[0].weight.detach().numpy())  # conv: same layout


def test_a_different_architecture_is_refused_by_name():
    torch.manual_seed(4)
    with pytest.raises(KeyError, match="'3.weight'"):
        load_torch_state_dict(mlp(tinytorch), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)).state_dict())
    wider = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 17), torch.nn.ReLU(), torch.nn.Linear(17, 5))
    with pytest.raises(ValueError, match="'layers.1.weights'"):
        load_torch_state_dict(mlp(tinytorch), wider.state_dict())
