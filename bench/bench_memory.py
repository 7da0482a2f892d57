"""Peak memory of one TinyGPT training step and one Conv2D forward + backward, tinytorch against
PyTorch (issue 16's goal: at most 1.5x PyTorch's peak). Each figure comes from a fresh process:
see bench/memory.py for how it is measured and why.
"""
from __future__ import annotations

from bench.harness import Measurement, quick, torch
from bench.memory import peak_bytes

GOAL = 1.5


def memory_case(name, factory, *args) -> Measurement:
    ours = peak_bytes(factory, "tinytorch", *args)
    theirs = peak_bytes(factory, "torch", *args) if torch() is not None else None
    return Measurement(name, ours, theirs, GOAL, unit="bytes")


def run():
    conv = memory_case("peak memory, Conv2D fwd+bwd (32,3,32,32)->16ch k3 p1", "bench.bench_spatial:conv_steps", 32)
    if quick():  # the TinyGPT step's setup runs in the quick tinygpt benchmark
        return [conv]
    gpt = memory_case("peak memory, TinyGPT training step (nanoGPT CPU config, batch 12)",
                      "bench.bench_tinygpt:training_memory_steps")  # fmt: skip
    return [gpt, conv]
