"""Training-time figures: forward + backward of the heavy layers, tinytorch against PyTorch CPU.

Both sides compute the same thing in float32 on the same data: a forward pass, `sum()` as the loss,
and a backward pass that fills the gradient of the parameters **and of the input** (as for any
layer that is not the first one, so Conv2D's col2im is included). Gradients are reset each call.
"""
from __future__ import annotations

import numpy as np

from bench.harness import compare, torch
from tinytorch.core.attention import MultiHeadAttention
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D
from tinytorch.core.tensor import Tensor


def _step(forward, model, x):
    """One tinytorch forward + backward; fresh gradients land on the model's parameters and on x."""
    x.zero_grad()
    model.zero_grad()
    forward(x).sum().backward()


def _torch_step(forward, parameters, x):
    """The same in PyTorch: reset the gradients, forward, sum, backward."""
    x.grad = None
    for p in parameters:
        p.grad = None
    forward(x).sum().backward()


def conv2d_case():
    set_seed(0)
    x_np = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    conv = Conv2D(3, 16, 3, padding=1)
    x = Tensor(x_np, requires_grad=True)
    torch_fn = None
    pt = torch()
    if pt is not None:
        reference = pt.nn.Conv2d(3, 16, 3, padding=1)
        with pt.no_grad():
            reference.weight.copy_(pt.from_numpy(conv.weights.data))
            reference.bias.copy_(pt.from_numpy(conv.bias.data))
        x_pt = pt.from_numpy(x_np.copy()).requires_grad_()
        parameters = list(reference.parameters())
        torch_fn = lambda: _torch_step(reference, parameters, x_pt)  # noqa: E731
        _step(conv, conv, x)  # same numbers before timing anything
        torch_fn()
        assert np.allclose(conv.weights.grad.data, reference.weight.grad.numpy(), rtol=1e-3, atol=1e-2)
        assert np.allclose(x.grad.data, x_pt.grad.numpy(), rtol=1e-3, atol=1e-4)
    return compare(
        "Conv2D fwd+bwd (32,3,32,32)->16ch k3 p1", lambda: _step(conv, conv, x), torch_fn, goal_ratio=3.0,
        repeat=20, input_grad=True,
    )  # fmt: skip


def attention_case():
    set_seed(0)
    batch, length, d_model, heads = 8, 64, 128, 4
    x_np = np.random.default_rng(1).standard_normal((batch, length, d_model)).astype(np.float32)
    mha = MultiHeadAttention(d_model, heads)
    x = Tensor(x_np, requires_grad=True)
    torch_fn = None
    pt = torch()
    if pt is not None:  # timing only: the parity tests compare the numbers
        reference = pt.nn.MultiheadAttention(d_model, heads, batch_first=True)
        x_pt = pt.from_numpy(x_np.copy()).requires_grad_()
        parameters = list(reference.parameters())

        def self_attention(inputs):
            return reference(inputs, inputs, inputs, need_weights=False)[0]

        torch_fn = lambda: _torch_step(self_attention, parameters, x_pt)  # noqa: E731
    self_attention_step = lambda: _step(lambda x: mha(x, x, x), mha, x)  # noqa: E731
    return compare(
        "MultiHeadAttention fwd+bwd (8,64,128) 4 heads", self_attention_step, torch_fn, goal_ratio=2.0,
        repeat=20, input_grad=True,
    )  # fmt: skip


def run():
    return [conv2d_case(), attention_case()]
