"""Convolution and pooling, forward + backward, tinytorch against PyTorch CPU (issue 16's goal: at
most 1.5x PyTorch's time at one and at two threads).

Three Conv2D shapes, 3x3 kernels with padding 1: digits-sized (64, 1, 8, 8) -> 16 channels,
CIFAR-sized (32, 3, 32, 32) -> 16 and wide (16, 64, 16, 16) -> 64; and MaxPool2D 2x2 on the
CIFAR-sized activations (32, 16, 32, 32). A step (bench/steps.py) is forward, `sum()`, backward
into the parameters and the input; both sides get the same weights and input (that they
compute the same gradients is tests/parity's job).
"""
from __future__ import annotations

import numpy as np

from bench.harness import compare, quick, torch
from bench.steps import steps
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D

GOAL = 1.5
CONV_SHAPES = {"digits": (64, 1, 8, 16), "CIFAR": (32, 3, 32, 16), "wide": (16, 64, 16, 64)}  # N, C, H=W, OC


def conv_steps(batch, channels=3, size=32, out_channels=16):
    """steps() of a 3x3, padding 1 Conv2D, tinytorch's weights copied into PyTorch's."""
    set_seed(0)
    conv = Conv2D(channels, out_channels, 3, padding=1)
    x_np = np.random.default_rng(0).standard_normal((batch, channels, size, size)).astype(np.float32)
    if torch() is None:
        return steps(conv, conv, x_np)
    pt = torch()
    reference = pt.nn.Conv2d(channels, out_channels, 3, padding=1)
    with pt.no_grad():
        reference.weight.copy_(pt.from_numpy(conv.weights.data))
        reference.bias.copy_(pt.from_numpy(conv.bias.data))
    return steps(conv, conv, x_np, reference, reference.parameters())


def maxpool_steps():
    x_np = np.random.default_rng(1).standard_normal((32, 16, 32, 32)).astype(np.float32)
    theirs = (lambda t: torch().nn.functional.max_pool2d(t, 2)) if torch() is not None else None
    pool = MaxPool2D(2)
    return steps(pool, pool, x_np, theirs)


def run():
    shapes = dict(list(CONV_SHAPES.items())[:1]) if quick() else CONV_SHAPES
    measurements = []
    for label, (batch, channels, size, out_channels) in shapes.items():
        both = conv_steps(batch, channels, size, out_channels)
        name = f"Conv2D fwd+bwd {label} ({batch},{channels},{size},{size})->{out_channels}ch k3 p1"
        measurements.append(compare(name, both["tinytorch"], both["torch"], goal_ratio=GOAL, repeat=20))
    both = maxpool_steps()
    measurements.append(compare("MaxPool2D 2x2 fwd+bwd (32,16,32,32)", both["tinytorch"], both["torch"],
                                goal_ratio=GOAL, repeat=20))  # fmt: skip
    return measurements
