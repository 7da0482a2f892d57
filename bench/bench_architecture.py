"""Forward-pass figures of the Neural Architecture layers, tinytorch against PyTorch CPU, float32.

Two shapes from the course: Conv2D on a CIFAR-sized batch (32, 3, 32, 32) -> 16 channels, 3x3,
padding 1; MultiHeadAttention self-attention on (8, 64, 128) with 4 heads. Each is timed twice:

- inference: no graph recorded (tinytorch `Tensor.grad_enabled = False`, PyTorch `torch.no_grad()`);
- recording: parameters require grad, so both frameworks record the graph for a later backward
  (the forward half of a training step; bench_training times forward + backward).

Both sides get the same weights and input, and the outputs are compared before timing.
"""
from __future__ import annotations

import contextlib

import numpy as np

from bench.harness import compare, torch
from tinytorch.core.attention import MultiHeadAttention
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D
from tinytorch.core.tensor import Tensor


@contextlib.contextmanager
def _tinytorch_grad(enabled):
    previous, Tensor.grad_enabled = Tensor.grad_enabled, enabled
    try:
        yield
    finally:
        Tensor.grad_enabled = previous


def _torch_grad(pt, enabled):
    return contextlib.nullcontext() if enabled else pt.no_grad()


def _time_both(name, ours, theirs, pt, recording, **extra):
    """compare() with each side run in the requested grad mode."""

    def ours_timed():
        with _tinytorch_grad(recording):
            return ours()

    def theirs_timed():
        with _torch_grad(pt, recording):
            return theirs()

    mode = "recording graph" if recording else "inference"
    return compare(f"{name}, {mode}", ours_timed, theirs_timed if pt else None, goal_ratio=2.0, repeat=30, **extra)


def conv2d_cases():
    set_seed(0)
    x_np = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    conv = Conv2D(3, 16, 3, padding=1)
    x = Tensor(x_np)
    pt = torch()
    theirs = None
    if pt is not None:
        reference = pt.nn.Conv2d(3, 16, 3, padding=1)
        with pt.no_grad():
            reference.weight.copy_(pt.from_numpy(conv.weights.data))
            reference.bias.copy_(pt.from_numpy(conv.bias.data))
        x_pt = pt.from_numpy(x_np)
        theirs = lambda: reference(x_pt)  # noqa: E731
        assert np.allclose(conv(x).data, theirs().detach().numpy(), rtol=1e-4, atol=1e-5)
    return [
        _time_both("Conv2D fwd (32,3,32,32)->16ch k3 p1", lambda: conv(x), theirs, pt, recording)
        for recording in (False, True)
    ]


def attention_cases():
    set_seed(0)
    batch, length, d_model, heads = 8, 64, 128, 4
    x_np = np.random.default_rng(1).standard_normal((batch, length, d_model)).astype(np.float32)
    mha = MultiHeadAttention(d_model, heads)
    x = Tensor(x_np)
    pt = torch()
    theirs = None
    if pt is not None:
        reference = pt.nn.MultiheadAttention(d_model, heads, batch_first=True)
        with pt.no_grad():  # PyTorch keeps y = x @ W.T + b: our (in, out) weights transposed
            projections = [mha.q_proj, mha.k_proj, mha.v_proj]
            reference.in_proj_weight.copy_(pt.from_numpy(np.concatenate([p.weights.data.T for p in projections])))
            reference.in_proj_bias.copy_(pt.from_numpy(np.concatenate([p.bias.data for p in projections])))
            reference.out_proj.weight.copy_(pt.from_numpy(mha.out_proj.weights.data.T.copy()))
            reference.out_proj.bias.copy_(pt.from_numpy(mha.out_proj.bias.data))
        x_pt = pt.from_numpy(x_np)
        theirs = lambda: reference(x_pt, x_pt, x_pt, need_weights=False)[0]  # noqa: E731
        assert np.allclose(mha(x, x, x).data, theirs().detach().numpy(), rtol=1e-4, atol=1e-5)
    return [
        _time_both("MultiHeadAttention fwd (8,64,128) 4 heads", lambda: mha(x, x, x), theirs, pt, recording)
        for recording in (False, True)
    ]


def run():
    return conv2d_cases() + attention_cases()
