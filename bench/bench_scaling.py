"""How cost grows with the work, tinytorch and PyTorch side by side: Conv2D forward + backward
against the batch size (CIFAR-sized images, 3 -> 16 channels, 3x3, padding 1), and multi-head
self-attention forward + backward (128 wide, 4 heads, batch 8) against the sequence length, in
time and in peak memory (bench/memory.py). Lesson 06 says a convolution's cost is linear in the
batch; lesson 07 that attention's time and memory grow with the square of the length.
"""
from __future__ import annotations

from bench.bench_spatial import conv_steps
from bench.bench_training import attention_steps
from bench.harness import Measurement, compare, quick, torch
from bench.memory import peak_bytes

BATCHES = (1, 8, 32, 128)
LENGTHS = (64, 128, 256, 512)


def run():
    batches, lengths = (BATCHES[:1], LENGTHS[:1]) if quick() else (BATCHES, LENGTHS)
    measurements = []
    for batch in batches:
        both = conv_steps(batch)
        measurements.append(compare(f"Conv2D fwd+bwd, batch {batch}", both["tinytorch"], both["torch"], repeat=10))
    for length in lengths:
        both = attention_steps(length)
        measurements.append(compare(f"attention fwd+bwd, length {length}", both["tinytorch"], both["torch"],
                                    repeat=5 if length >= 256 else 10))  # fmt: skip
        ours = peak_bytes("bench.bench_training:attention_steps", "tinytorch", length)
        theirs = peak_bytes("bench.bench_training:attention_steps", "torch", length) if torch() else None
        measurements.append(Measurement(f"attention peak memory, length {length}", ours, theirs, unit="bytes"))
    return measurements
