"""The autograd contract across the course: every operation any lesson records through
`Tensor.from_op` has a backward rule, its forward's docstring names that rule, what it saves and what
it keeps, every rule finds the values it reads kept when its inputs and output are intermediate
results, the engine refuses a rule that breaks the contract, and the rules are the engine's business,
not the package's API."""
from __future__ import annotations

import ast
import importlib
from typing import NamedTuple

from tito import deps
from tito.manifest import load

from .conftest import ROOT

COURSE = load(ROOT)


class Site(NamedTuple):
    """Where operations are recorded: the function whose docstring documents them, the op names, the
    keys passed to from_op as saved values, and the values kept (`keep`: a tuple of words, or None when
    a factory's parameter passes it on)."""

    function: ast.FunctionDef
    ops: frozenset
    saved: frozenset
    keep: frozenset | None


def _is_from_op(node) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "from_op"


def _factory_ops(tree, factory: ast.FunctionDef, parameter: str) -> set[str]:
    """The literal values a factory's calls in the same code pass for `parameter` (`_binary("add", np.add)`)."""
    position = [a.arg for a in factory.args.args].index(parameter)
    return {
        call.args[position].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == factory.name
        and position < len(call.args) and isinstance(call.args[position], ast.Constant)
    }  # fmt: skip


def _kept(call) -> frozenset | None:
    """The words of from_op's `keep` argument (fourth positional or by name); None if not a literal."""
    keep = call.args[3] if len(call.args) > 3 else next((k.value for k in call.keywords if k.arg == "keep"), None)
    if keep is None:
        return frozenset()
    return frozenset(e.value for e in keep.elts) if isinstance(keep, ast.Tuple) else None


def recording_sites(code: str) -> list[Site]:
    """Every from_op call of the code: a literal op is documented by the function making the call; an op
    that is a factory's parameter by the factory, with the ops its callers pass."""
    tree, sites = ast.parse(code), []

    def visit(node, enclosing):
        for child in ast.iter_child_nodes(node):
            inner = enclosing + [child] if isinstance(child, ast.FunctionDef) else enclosing
            if _is_from_op(child):
                op = child.args[1] if len(child.args) > 1 else next(k.value for k in child.keywords if k.arg == "op")
                saved = frozenset(k.arg for k in child.keywords if k.arg not in ("op", "keep"))
                if isinstance(op, ast.Constant):
                    sites.append(Site(enclosing[-1], frozenset({op.value}), saved, _kept(child)))
                else:
                    factory = next(f for f in reversed(enclosing) if op.id in [a.arg for a in f.args.args])
                    sites.append(Site(factory, frozenset(_factory_ops(tree, factory, op.id)), saved, _kept(child)))
            visit(child, inner)

    visit(tree, [])
    return sites


def all_sites() -> list[Site]:
    return [
        site
        for module in COURSE.modules
        for code in deps.export_code_by_target(COURSE, module).values()
        for site in recording_sites(code)
    ]


def recorded_ops() -> set[str]:
    return {op for site in all_sites() for op in site.ops}


def test_every_recorded_operation_has_a_backward_rule():
    for module in COURSE.modules:
        for target in module.exports:
            importlib.import_module(f"tinytorch.{target}")  # every module registers its rules on import
    from tinytorch.core.autograd import BACKWARD_RULES

    ops = recorded_ops()
    assert {"add", "mul", "sum", "max", "getitem", "relu", "softmax", "im2col", "conv2d", "rpow", "astype"} <= ops
    assert ops - set(BACKWARD_RULES) == set(), "recorded without a rule"
    assert set(BACKWARD_RULES) - ops == set(), "a rule for an operation nothing records"


def test_each_forward_names_its_backward_rule_and_what_it_saves():
    sites = all_sites()
    assert len(sites) >= 20 and any(len(site.ops) > 1 for site in sites)  # the scan sees the factories too
    for site in sites:
        doc = ast.get_docstring(site.function) or ""
        where = f"{site.function.name} (recording {sorted(site.ops)})"
        assert all(f"`_{op}_backward`" in doc for op in site.ops), f"{where}: its docstring names no rule"
        assert all(f"`{key}`" in doc for key in site.saved), f"{where}: its docstring omits a saved key"
        assert site.saved or "nothing saved" in doc, f"{where}: its docstring does not say that nothing is saved"
        if site.keep is None:
            assert "`keep`" in doc, f"{where}: its docstring does not say what `keep` is"
        if site.keep and "output" in site.keep:
            assert "keeping the output" in doc, f"{where}: its docstring does not say that the output is kept"
        if site.keep and site.keep & {"inputs", "other_inputs"}:
            assert "keeping the input" in doc, f"{where}: its docstring does not say that the inputs are kept"


def test_backward_rules_are_not_part_of_the_public_api():
    import tinytorch.core.autograd as autograd

    rules = {rule.__name__ for rule in autograd.BACKWARD_RULES.values()}
    assert rules and not rules & set(autograd.__all__)
    assert {"backward", "backward_rule", "no_grad", "gradient_check"} <= set(autograd.__all__)


def test_the_engine_names_a_rule_that_breaks_the_contract():
    import numpy as np
    import pytest

    from tinytorch.core.autograd import BACKWARD_RULES
    from tinytorch.core.tensor import Tensor

    leaf = Tensor(np.ones((3, 4)), requires_grad=True)
    answers = {"a bare array": lambda out, grad: -grad, "two gradients": lambda out, grad: (grad, grad),
               "a wrong shape": lambda out, grad: (np.ones(5),)}  # fmt: skip
    errors = {}
    try:
        for case, rule in answers.items():
            BACKWARD_RULES["broken"] = rule
            with pytest.raises((TypeError, ValueError)) as raised:
                Tensor.from_op(-leaf.data, "broken", (leaf,)).backward(np.ones((3, 4)))
            errors[case] = str(raised.value)
    finally:
        del BACKWARD_RULES["broken"]
    assert all("the backward rule of 'broken' (<lambda>)" in message for message in errors.values()), errors
    assert "returned a ndarray" in errors["a bare array"] and "returned a tuple of 2" in errors["two gradients"]
    assert "gradient of shape (5,)" in errors["a wrong shape"] and "(3, 4)" in errors["a wrong shape"]
    assert leaf.grad is None


def test_no_grad_in_one_thread_leaves_another_recording():
    import threading

    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    inside, release, seen = threading.Event(), threading.Event(), {}

    def serve():
        with no_grad():
            seen["server"] = Tensor.grad_enabled
            inside.set()
            release.wait(10)

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert inside.wait(10)
        weight = Tensor([1.0], requires_grad=True)
        assert Tensor.grad_enabled and (weight * 2).requires_grad
    finally:
        release.set()
        server.join(10)
    assert seen == {"server": False} and Tensor.grad_enabled


def _every_recorded_operation():
    """One small call per recorded operation (name -> (function, input shapes)), positive inputs."""
    from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
    from tinytorch.core.losses import clip, softplus
    from tinytorch.core.normalization import normalize
    from tinytorch.core.spatial import conv2d, im2col, max_pool2d

    return {
        "add": (lambda a, b: a + b, [(2, 3), (3,)]), "sub": (lambda a, b: a - b, [(2, 3), (3,)]),
        "mul": (lambda a, b: a * b, [(2, 3), (3,)]), "div": (lambda a, b: a / b, [(2, 3), (3,)]),
        "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]), "neg": (lambda a: -a, [(3,)]),
        "pow": (lambda a: a**1.5, [(3,)]), "rpow": (lambda a: 2.0**a, [(3,)]), "exp": (lambda a: a.exp(), [(3,)]),
        "log": (lambda a: a.log(), [(3,)]), "astype": (lambda a: a.float(), [(3,)]),
        "sum": (lambda a: a.sum(axis=0), [(2, 3)]), "mean": (lambda a: a.mean(axis=1), [(2, 3)]),
        "max": (lambda a: a.max(axis=1), [(2, 3)]), "reshape": (lambda a: a.reshape(3, 2), [(2, 3)]),
        "permute": (lambda a: a.permute(1, 0), [(2, 3)]), "getitem": (lambda a: a[1:, ::2], [(2, 3)]),
        "clip": (lambda a: clip(a, 0.4, 0.8), [(2, 3)]), "softplus": (softplus, [(2, 3)]),
        "relu": (ReLU(), [(2, 3)]), "sigmoid": (Sigmoid(), [(2, 3)]), "tanh": (Tanh(), [(2, 3)]),
        "gelu": (GELU(), [(2, 3)]), "softmax": (Softmax(), [(2, 3)]), "log_softmax": (LogSoftmax(), [(2, 3)]),
        "normalize": (lambda a: normalize(a, (1,), 1e-5)[0], [(2, 3)]),
        "im2col": (lambda a: im2col(a, 2, padding=1), [(1, 2, 3, 3)]),
        "max_pool2d": (lambda a: max_pool2d(a, (2, 2), 1), [(2, 2, 3, 3)]),
        "conv2d": (lambda a, w, b: conv2d(a, w, b, padding=1), [(2, 2, 3, 3), (3, 2, 2, 2), (3,)]),
    }  # fmt: skip


def test_every_rule_finds_the_values_it_reads_kept_when_inputs_and_output_are_intermediate():
    """A leaf input or a returned output is a Tensor, its values always there: only results of other
    operations, read later, show whether an operation kept what its rule reads. So every input here is
    `leaf * 1.0` and the output is multiplied by a constant: neither multiplication keeps anything of them."""
    import numpy as np

    from tinytorch.core.autograd import gradient_check
    from tinytorch.core.tensor import Tensor

    calls = _every_recorded_operation()
    assert set(calls) == recorded_ops(), "the table below must cover every recorded operation"
    generator = np.random.default_rng(0)
    for op, (fn, shapes) in calls.items():
        leaves = [Tensor(generator.uniform(0.5, 1.5, shape)) for shape in shapes]
        as_intermediates = lambda *xs, fn=fn: fn(*(x * 1.0 for x in xs)) * 1.0  # noqa: E731
        atol = 0.1 if op == "astype" else 1e-6  # through float32: central differences see its rounding
        assert gradient_check(as_intermediates, *leaves, atol=atol).ok, op
