"""The autograd contract across the course: every operation any lesson records through
`Tensor.from_op` has a backward rule, and the rules are the engine's business, not the package's API."""
from __future__ import annotations

import ast
import importlib

from tito import deps
from tito.manifest import load

from .conftest import ROOT

COURSE = load(ROOT)


def _recorded_ops(code: str) -> set[str]:
    """The op names passed to from_op: string literals, or a parameter of the enclosing factory
    (`_binary("add", np.add)`) resolved through the factory's calls in the same code."""
    tree = ast.parse(code)
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
    factories = {f.name: f for f in functions}
    ops, parameters = set(), set()
    for factory in functions:  # methods of different classes may share a name: every one is scanned
        for call in ast.walk(factory):
            if not (isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", "")) == "from_op"):
                continue
            op = call.args[1] if len(call.args) > 1 else next(k.value for k in call.keywords if k.arg == "op")
            if isinstance(op, ast.Constant):
                ops.add(op.value)
            else:
                parameters.add((factory.name, op.id))
    for call in ast.walk(tree):
        name = getattr(call, "func", None)
        for factory, parameter in parameters:
            names = [a.arg for a in factories[factory].args.args]
            if isinstance(call, ast.Call) and isinstance(name, ast.Name) and name.id == factory and parameter in names:
                position = names.index(parameter)
                if position < len(call.args) and isinstance(call.args[position], ast.Constant):
                    ops.add(call.args[position].value)
    return ops


def recorded_ops() -> set[str]:
    found = set()
    for module in COURSE.modules:
        for code in deps.export_code_by_target(COURSE, module).values():
            found |= _recorded_ops(code)
    return found


def test_every_recorded_operation_has_a_backward_rule():
    for module in COURSE.modules:
        for target in module.exports:
            importlib.import_module(f"tinytorch.{target}")  # every module registers its rules on import
    from tinytorch.core.autograd import BACKWARD_RULES

    ops = recorded_ops()
    assert {"add", "mul", "sum", "max", "getitem", "relu", "softmax", "im2col", "conv2d", "rpow", "astype"} <= ops
    assert ops - set(BACKWARD_RULES) == set(), "recorded without a rule"
    assert set(BACKWARD_RULES) - ops == set(), "a rule for an operation nothing records"


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
