"""Training-time figures: forward + backward of multi-head attention, tinytorch against PyTorch CPU.

Both sides compute the same thing in float32 on the same data (bench/steps.py): a forward pass,
`sum()` as the loss, and a backward pass that fills the gradient of the parameters and of the
input. Convolution and pooling are in bench_spatial, the growth with batch size and sequence
length in bench_scaling.
"""
from __future__ import annotations

import numpy as np

from bench.harness import compare, torch
from bench.steps import steps
from tinytorch.core.attention import MultiHeadAttention
from tinytorch.core.setup import set_seed


def attention_steps(length, batch=8, d_model=128, heads=4):
    """steps() of multi-head self-attention on (batch, length, d_model); PyTorch's has its own weights
    (timing only: the parity tests compare the numbers)."""
    set_seed(0)
    mha = MultiHeadAttention(d_model, heads)
    x_np = np.random.default_rng(1).standard_normal((batch, length, d_model)).astype(np.float32)
    ours = lambda x: mha(x, x, x)  # noqa: E731
    if torch() is None:
        return steps(ours, mha, x_np)
    reference = torch().nn.MultiheadAttention(d_model, heads, batch_first=True)
    return steps(ours, mha, x_np, lambda t: reference(t, t, t, need_weights=False)[0], reference.parameters())


def run():
    both = attention_steps(64)
    return [compare("MultiHeadAttention fwd+bwd (8,64,128) 4 heads", both["tinytorch"], both["torch"],
                    goal_ratio=2.0, repeat=20, input_grad=True)]  # fmt: skip
