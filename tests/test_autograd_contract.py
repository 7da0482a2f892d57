"""The autograd contract across the course: every operation any lesson records through
`Tensor.from_op` has a backward rule, its forward's docstring names that rule and what it saves, the
engine refuses a rule that breaks the contract, and the rules are the engine's business, not the
package's API."""
from __future__ import annotations

import ast
import importlib
from typing import NamedTuple

from tito import deps
from tito.manifest import load

from .conftest import ROOT

COURSE = load(ROOT)


class Site(NamedTuple):
    """Where operations are recorded: the function whose docstring documents them, the op names, and
    the keys passed to from_op as saved values."""

    function: ast.FunctionDef
    ops: frozenset
    saved: frozenset


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


def recording_sites(code: str) -> list[Site]:
    """Every from_op call of the code: a literal op is documented by the function making the call; an op
    that is a factory's parameter by the factory, with the ops its callers pass."""
    tree, sites = ast.parse(code), []

    def visit(node, enclosing):
        for child in ast.iter_child_nodes(node):
            inner = enclosing + [child] if isinstance(child, ast.FunctionDef) else enclosing
            if _is_from_op(child):
                op = child.args[1] if len(child.args) > 1 else next(k.value for k in child.keywords if k.arg == "op")
                saved = frozenset(k.arg for k in child.keywords if k.arg != "op")
                if isinstance(op, ast.Constant):
                    sites.append(Site(enclosing[-1], frozenset({op.value}), saved))
                else:
                    factory = next(f for f in reversed(enclosing) if op.id in [a.arg for a in f.args.args])
                    sites.append(Site(factory, frozenset(_factory_ops(tree, factory, op.id)), saved))
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
