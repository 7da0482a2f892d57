"""How much of TinyGPT is code from earlier modules, counted five ways (lesson 16, section 11).

On a TinyGPT and one of its training steps (forward, backward, gradient clipping, AdamW update):

- layers: every module in the model's tree (an instance of `Dense` counted each time);
- layer classes: distinct classes in that tree;
- learned numbers: parameters, by the class of the layer that owns them;
- functions executed in a training step: every Python function of `tinytorch.core` that runs, traced
  with `sys.setprofile`, counted once each and per call;
- backward rules: the operation types recorded in the step's graph.

"New" is what `tinytorch/core/tinygpt.py` defines; everything else in `tinytorch/core` is reused.

    .venv/bin/python -m bench.reuse_tinygpt           the lesson's model (nanoGPT's CPU setting)
    .venv/bin/python -m bench.reuse_tinygpt --quick   a small model, in a second (what the tests run)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import BACKWARD_RULES, topological_order
from tinytorch.core.layers import Module, Parameter
from tinytorch.core.optimizers import AdamW, clip_grad_norm
from tinytorch.core.setup import set_seed
from tinytorch.core.tinygpt import GPTConfig, TinyGPT
from tito.manifest import load

OUT = load(Path(__file__).resolve().parents[1]).build.bench
NEW_MODULE = "tinytorch.core.tinygpt"
QUICK = dict(block_size=16, n_layer=1, n_head=2, n_embd=16)
VOCAB = 65  # Shakespeare's characters; the count does not depend on the text itself


def is_new(thing) -> bool:
    return thing.__module__ == NEW_MODULE


def layers(module) -> list:
    """The module and every layer below it (activations included)."""
    found = [module]
    for _, child in module.named_children():
        found += layers(child) if isinstance(child, Module) else [child]
    return found


def traced_calls(fn) -> Counter:
    """(file, function) -> calls, for every Python function called while fn() runs."""
    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            calls[(code.co_filename, getattr(code, "co_qualname", code.co_name))] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def split_calls(calls: Counter) -> tuple[Counter, Counter]:
    """(new, reused) tinytorch.core functions; everything outside tinytorch.core is dropped."""
    new, reused = Counter(), Counter()
    for (filename, qualname), count in calls.items():
        path = Path(filename)
        if path.parent.parts[-2:] != ("tinytorch", "core"):
            continue
        (new if path.stem == "tinygpt" else reused)[f"{path.stem}.{qualname}"] += count
    return new, reused


def measure(settings: dict | None = None, batch_size: int = 12) -> dict:
    """Each way of counting: (reused, new), plus the new names, on a seeded model and batch."""
    set_seed(0)
    config = GPTConfig(vocab_size=VOCAB, **(settings or {}))
    model = TinyGPT(config)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    ids = np.random.default_rng(0).integers(0, VOCAB, (batch_size, config.block_size + 1))
    xb, yb = ids[:, :-1], ids[:, 1:]

    def step():
        optimizer.zero_grad()
        model(xb, yb)[1].backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()

    tree = layers(model)
    classes = {type(layer) for layer in tree}
    owned = Counter()
    for layer in tree:
        if isinstance(layer, Module):
            own = [value for _, value in layer._attributes() if isinstance(value, Parameter)]
            owned[is_new(type(layer))] += sum(p.size for p in own)
    new_calls, reused_calls = split_calls(traced_calls(step))
    graph_ops = {node._op for node in topological_order(model(xb, yb)[1]) if node._op}
    return {
        "rows": {
            "layers in the model": (sum(not is_new(type(l)) for l in tree), sum(is_new(type(l)) for l in tree)),
            "layer classes": (sum(not is_new(c) for c in classes), sum(is_new(c) for c in classes)),
            "learned numbers": (owned[False], owned[True]),
            "functions run by a training step": (len(reused_calls), len(new_calls)),
            "function calls in a training step": (sum(reused_calls.values()), sum(new_calls.values())),
            "backward rules used": (len(graph_ops), sum(is_new(BACKWARD_RULES[op]) for op in graph_ops)),
        },
        "new_classes": sorted(c.__name__ for c in classes if is_new(c)),
        "new_functions": sorted(new_calls),
    }  # fmt: skip


def share(reused: int, new: int) -> float:
    return reused / (reused + new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reuse_tinygpt", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model instead of the lesson's")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the figures (default {OUT})")
    args = parser.parse_args(argv)
    report = measure(QUICK if args.quick else None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reuse_tinygpt.json").write_text(json.dumps({**report, "quick": args.quick}, indent=2) + "\n")
    lines = [f"{'':36}{'reused':>9}{'new':>7}   reused share"]
    for name, (reused, new) in report["rows"].items():
        lines.append(f"{name:36}{reused:>9,}{new:>7,}   {share(reused, new):6.1%}")
    lines += [f"new layer classes: {report['new_classes']}", f"new functions in the step: {report['new_functions']}"]
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted, the JSON is written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush fails silently
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
