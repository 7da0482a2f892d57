"""Parity with PyTorch: forward values of the Neural Architecture layers, in float64.

Dense, Conv2D (strides, paddings, rectangular kernels), MaxPool2D/AvgPool2D, scaled dot-product
attention (with boolean, additive and causal masks) and MultiHeadAttention with the weights of a
`torch.nn.MultiheadAttention` copied in. Gradients of the other layers are compared in
test_autograd.py; multi-head attention's (its whole graph) at the end of this file.
"""
import numpy as np
import pytest

from tinytorch.core.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask
from tinytorch.core.layers import Dense, Parameter
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-12


def rand(*shape, seed=0):
    return np.random.default_rng(seed + 31 * len(shape) + sum(shape)).standard_normal(shape)


def assert_close(ours, theirs):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * max(1.0, np.abs(theirs).max()))


def as_float64(layer):
    """Switch every parameter of a layer to float64 (values kept) so both sides compute alike."""
    for parameter in layer.parameters():
        parameter.data = parameter.data.astype(np.float64)
    return layer


@pytest.mark.parametrize("batch_shape", [(5,), (2, 3), (4, 1, 2)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_dense(batch_shape, bias):
    layer = as_float64(Dense(6, 4, bias=bias))
    if bias:
        layer.bias.data = rand(4, seed=1)
    x = rand(*batch_shape, 6)
    torch_bias = torch.tensor(layer.bias.data) if bias else None
    expected = F.linear(torch.tensor(x), torch.tensor(layer.weights.data.T), torch_bias)
    assert_close(layer(Tensor(x)).data, expected)


@pytest.mark.parametrize(
    "in_channels, out_channels, kernel, stride, padding, size, bias",
    [
        (3, 4, 3, 1, 0, (8, 8), True),
        (3, 16, 3, 1, 1, (32, 32), True),
        (2, 5, 3, 2, 1, (9, 7), True),
        (2, 3, (3, 2), 2, 0, (9, 7), False),
        (1, 2, 5, 3, 2, (11, 10), True),
        (4, 2, 1, 1, 0, (5, 5), True),
    ],
)
def test_conv2d(in_channels, out_channels, kernel, stride, padding, size, bias):
    layer = as_float64(Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias))
    if bias:
        layer.bias.data = rand(out_channels, seed=2)
    x = rand(2, in_channels, *size)
    expected = F.conv2d(torch.tensor(x), torch.tensor(layer.weights.data),
                        torch.tensor(layer.bias.data) if bias else None, stride=stride, padding=padding)  # fmt: skip
    assert_close(layer(Tensor(x)).data, expected)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1), ((2, 3), 2), (4, 4)], ids=str)
def test_pooling(kernel, stride):
    x = rand(2, 3, 9, 10)
    assert_close(MaxPool2D(kernel, stride)(Tensor(x)).data, F.max_pool2d(torch.tensor(x), kernel, stride))
    assert_close(AvgPool2D(kernel, stride)(Tensor(x)).data, F.avg_pool2d(torch.tensor(x), kernel, stride))


def torch_attention(q, k, v, additive=None):
    """softmax(q kᵀ / √d + additive) and its product with v, written out in PyTorch."""
    scores = q @ k.transpose(-2, -1) / np.sqrt(q.shape[-1])
    weights = torch.softmax(scores if additive is None else scores + additive, dim=-1)
    return weights @ v, weights


def masks(lq, lk):
    allowed = np.random.default_rng(3).random((lq, lk)) > 0.5
    allowed[:, 0] = True
    return {
        "none": (None, None),
        "boolean": (allowed, torch.tensor(allowed)),
        "additive": (np.where(allowed, 0.0, -1e9), torch.tensor(np.where(allowed, 0.0, -1e9))),
        "causal": (causal_mask(lq), torch.ones(lq, lk, dtype=torch.bool).tril()),
    }


@pytest.mark.parametrize("mask_kind", ["none", "boolean", "additive", "causal"])
def test_scaled_dot_product_attention(mask_kind):
    q, k, v = rand(2, 3, 6, 8), rand(2, 3, 6, 8, seed=1), rand(2, 3, 6, 5, seed=2)
    ours_mask, torch_mask = masks(6, 6)[mask_kind]
    out, weights = ScaledDotProductAttention()(Tensor(q), Tensor(k), Tensor(v), mask=ours_mask, need_weights=True)
    tq, tk, tv = torch.tensor(q), torch.tensor(k), torch.tensor(v)
    assert_close(out.data, F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch_mask))
    additive = torch_mask
    if torch_mask is not None and torch_mask.dtype == torch.bool:
        additive = torch.zeros(6, 6, dtype=torch.float64).masked_fill(~torch_mask, -torch.inf)
    assert_close(weights.data, torch_attention(tq, tk, tv, additive)[1])


def test_cross_attention_core_with_different_lengths():
    q, k, v = rand(3, 4, 8), rand(3, 7, 8, seed=1), rand(3, 7, 2, seed=2)
    out, weights = ScaledDotProductAttention()(Tensor(q), Tensor(k), Tensor(v), need_weights=True)
    expected_out, expected_weights = torch_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v))
    assert_close(out.data, expected_out)
    assert_close(weights.data, expected_weights)


def torch_mha(d_model, heads, bias=True, seed=0):
    """torch.nn.MultiheadAttention in float64, with non-zero biases (PyTorch starts them at zero)."""
    torch.manual_seed(seed)
    reference = torch.nn.MultiheadAttention(d_model, heads, bias=bias, batch_first=True, dtype=torch.float64)
    if bias:
        with torch.no_grad():
            reference.in_proj_bias.copy_(torch.tensor(rand(3 * d_model, seed=seed)))
            reference.out_proj.bias.copy_(torch.tensor(rand(d_model, seed=seed + 1)))
    return reference


def copy_from_torch(reference):
    """A tinytorch MultiHeadAttention holding the weights of `reference`."""
    d_model, heads, bias = reference.embed_dim, reference.num_heads, reference.in_proj_bias is not None
    ours = MultiHeadAttention(d_model, heads, bias=bias)
    layers = [ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj]
    in_weights = reference.in_proj_weight.detach().numpy().reshape(3, d_model, d_model)
    weights = [*in_weights, reference.out_proj.weight.detach().numpy()]
    for layer, weight in zip(layers, weights):
        layer.weights = Parameter(weight.T.copy())  # torch computes x @ W.T: ours is (in, out)
    if bias:
        in_biases = reference.in_proj_bias.detach().numpy().reshape(3, d_model)
        biases = [*in_biases, reference.out_proj.bias.detach().numpy()]
        for layer, b in zip(layers, biases):
            layer.bias = Parameter(b.copy())
    return ours


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "boolean"])
def test_multi_head_self_attention(mask_kind, bias):
    reference = torch_mha(16, 4, bias, seed=0)
    ours = copy_from_torch(reference)
    x = rand(2, 6, 16)
    ours_mask, torch_mask = masks(6, 6)[mask_kind]
    tx = torch.tensor(x)
    # nn.MultiheadAttention's boolean attn_mask means the opposite of ours: True = may NOT attend
    expected, expected_weights = reference(tx, tx, tx, attn_mask=None if torch_mask is None else ~torch_mask,
                                           average_attn_weights=False)  # fmt: skip
    assert_close(ours(Tensor(x), Tensor(x), Tensor(x), mask=ours_mask).data, expected)
    assert_close(ours.attention_weights.data, expected_weights)


def test_multi_head_cross_attention_with_key_padding():
    reference = torch_mha(12, 3, seed=1)
    ours = copy_from_torch(reference)
    queries, memory = rand(2, 4, 12), rand(2, 7, 12, seed=1)
    tq, tm = torch.tensor(queries), torch.tensor(memory)
    expected, expected_weights = reference(tq, tm, tm, average_attn_weights=False)
    assert_close(ours(Tensor(queries), Tensor(memory), Tensor(memory)).data, expected)
    assert_close(ours.attention_weights.data, expected_weights)

    padding = np.ones((2, 1, 7), dtype=bool)  # ours: (B, 1, Lk), True = a real key
    padding[1, :, 5:] = False
    ignored = torch.tensor(~padding[:, 0])  # torch's key_padding_mask: True = ignore this key
    expected, expected_weights = reference(tq, tm, tm, key_padding_mask=ignored, average_attn_weights=False)
    assert_close(ours(Tensor(queries), Tensor(memory), Tensor(memory), mask=padding).data, expected)
    assert_close(ours.attention_weights.data, expected_weights)


def test_multi_head_attention_gradients():
    """The layers were written forward-only; once autograd exists they must train: gradients match."""
    reference = torch_mha(8, 2, seed=2)
    ours = copy_from_torch(reference)
    x = rand(2, 5, 8)
    ours_x, torch_x = Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    upstream = rand(2, 5, 8, seed=3)
    ours(ours_x, ours_x, ours_x, mask=causal_mask(5)).backward(upstream)
    future = ~torch.ones(5, 5, dtype=torch.bool).tril()
    reference(torch_x, torch_x, torch_x, attn_mask=future)[0].backward(torch.tensor(upstream))
    assert_close(ours_x.grad.data, torch_x.grad)
    in_weight, in_bias = reference.in_proj_weight.grad.reshape(3, 8, 8), reference.in_proj_bias.grad.reshape(3, 8)
    for i, layer in enumerate([ours.q_proj, ours.k_proj, ours.v_proj]):
        assert_close(layer.weights.grad.data, in_weight[i].T)
        assert_close(layer.bias.grad.data, in_bias[i])
    assert_close(ours.out_proj.weights.grad.data, reference.out_proj.weight.grad.T)
    assert_close(ours.out_proj.bias.grad.data, reference.out_proj.bias.grad)

