"""Mutation testing (`tito.mutants`, `make mutants`): the mutator, the private copies, the quick mode."""
from __future__ import annotations

import ast
import json
from collections import Counter

import pytest

from tests.conftest import ROOT
from tito import manifest, mutants

COURSE = manifest.load(ROOT)
ACTIVATIONS = COURSE.find_module("03_activations")
LESSON = (ROOT / ACTIVATIONS.source).read_text(encoding="utf-8")
RELU = 'Tensor.from_op(np.maximum(x.data, 0), "relu"'  # the solution line of ReLU.forward


def test_every_mutant_is_valid_python_inside_a_solution_block_and_keeps_line_numbers():
    found = mutants.find(ACTIVATIONS, LESSON)
    solution = mutants.solution_lines(LESSON)
    assert len(found) > 20
    for mutant in found:
        text = mutant.apply(LESSON)
        ast.parse(text)
        assert text.count("\n") == LESSON.count("\n") and text != LESSON
        assert set(range(mutant.line, mutant.end_line + 1)) <= solution, mutant
        changed = [n for n, (a, b) in enumerate(zip(LESSON.split("\n"), text.split("\n")), 1) if a != b]
        assert changed and changed[0] == mutant.line
    assert {"arithmetic", "constant", "axis", "swap", "return", "drop"} <= {m.operator for m in found}


def test_the_operators_make_the_expected_changes():
    text = '''def f(x, y):
    ### BEGIN SOLUTION
    if x < y:
        x += 1
    y = np.dot(x, y)
    return np.sum(x * y, axis=0, keepdims=True) and x
    ### END SOLUTION
'''
    finder = mutants._Finder(text, mutants.solution_lines(text))
    finder.visit(ast.parse(text))
    found = {(m.operator, m.mutated) for m in finder.found}
    assert ("comparison", "(x <= y)") in found and ("condition", "if not x < y") in found
    assert ("arithmetic", "x -= 1") in found and ("constant", "2") in found and ("drop", "pass") in found
    assert ("axis", "np.sum(x * y, keepdims=True)") in found and ("axis", "np.sum(x * y, axis=0)") in found
    assert ("swap", "np.dot(y, x)") in found and ("return", "return None") in found
    assert ("boolean", "(np.sum(x * y, axis=0, keepdims=True) or x)") in found and ("constant", "False") in found


def test_the_sample_is_deterministic_and_does_not_move_with_unrelated_lines():
    found = mutants.find(ACTIVATIONS, LESSON)
    keys = [m.key for m in mutants.sample(found, 10)]
    assert keys == [m.key for m in mutants.sample(found, 10)] and len(keys) == 10
    shifted = "# an extra line of markdown\n" + LESSON
    assert keys == [m.key for m in mutants.sample(mutants.find(ACTIVATIONS, shifted), 10)]


@pytest.fixture(scope="module")
def workspace():
    space = mutants.Workspace(COURSE)
    yield space
    space.remove()


def _mutant(original: str, mutated: str) -> str:
    assert LESSON.count(original) == 1
    return LESSON.replace(original, mutated)


def test_a_wrong_relu_is_killed_and_an_equivalent_one_survives(workspace):
    wrong = workspace.run(ACTIVATIONS, _mutant(RELU, RELU.replace("maximum", "minimum")), timeout=300)
    assert wrong.status == mutants.KILLED and wrong.failed == ["test_relu_known_values"]
    same = workspace.run(ACTIVATIONS, _mutant(RELU, RELU.replace("x.data, 0", "0, x.data")), timeout=300)
    assert same.status == mutants.SURVIVED and same.failed == [] and len(same.passed) > 5


def test_a_hanging_mutant_times_out(workspace):
    hang = workspace.run(ACTIVATIONS, _mutant(RELU, "__import__('time').sleep(60) or " + RELU), timeout=3)
    assert hang.status == mutants.TIMEOUT and 3 <= hang.seconds < 30


def test_quick_mode_runs_a_sample_in_copies_and_never_touches_the_real_package(tmp_path):
    real = {p: p.read_bytes() for p in (ROOT / "tinytorch" / "core").glob("*.py")}
    report = mutants.mutate_module(COURSE, ACTIVATIONS, limit=4, jobs=2)
    assert {p: p.read_bytes() for p in (ROOT / "tinytorch" / "core").glob("*.py")} == real
    assert len(report.mutants) == 4 and report.found == len(mutants.find(ACTIVATIONS, LESSON))
    statuses = {m["status"] for m in report.mutants}
    assert statuses <= {mutants.KILLED, mutants.SURVIVED, mutants.TIMEOUT, mutants.EQUIVALENT}
    for row in report.mutants:
        assert LESSON.split("\n")[row["line"] - 1].strip() and row["mutated"] != row["original"]
        assert (row["killed_by"] is not None) == (row["status"] == mutants.KILLED)
    data = json.loads(json.dumps(report.to_json()))
    detected = data["killed"] + data["timeout"]
    assert data["score"] == pytest.approx(100 * detected / (4 - data["equivalent"]), abs=0.05)


def test_the_table_names_each_survivor_with_its_lesson_line():
    row = {"line": 87, "original": "a", "mutated": "b", "status": mutants.SURVIVED}
    report = {"module": "03_activations", "lesson": "modules/03_activations/activations.py", "found": 9,
              "score": 88.9, "mutants": [row] + [{**row, "status": mutants.KILLED}] * 8}  # fmt: skip
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(mutants.table([report]))
    text = console.export_text()
    assert "modules/03_activations/activations.py:87  a -> b" in text and "88.9" in text and "9" in text


def test_every_listed_equivalent_mutant_is_exactly_one_mutant_and_has_a_reason():
    for module in COURSE.modules:
        listed = mutants.equivalents(COURSE, module)
        text = (ROOT / module.source).read_text(encoding="utf-8")
        found = Counter(m.identity(text) for m in mutants.find(module, text))
        wrong = sorted(i for i in listed if found[i] != 1)
        assert not wrong, f"{mutants.EQUIVALENTS}: not exactly one mutant of {module.id}: {wrong}"
        assert all(reason.strip() for reason in listed.values())


def test_mutants_sharing_a_key_have_different_identities():
    text = "#| default_exp core.setup\n# %%\n#| export\ndef f(x):\n    ### BEGIN SOLUTION\n    return x.sum(axis=-1) + x.shape[-1]\n    ### END SOLUTION\n"
    module = COURSE.modules[0]
    twins = [m for m in mutants.find(module, text) if m.key == "f: -1 -> 1"]
    assert len(twins) == 2
    assert {m.identity(text)[1] for m in twins} == {"return x.sum(axis=1) + x.shape[-1]", "return x.sum(axis=-1) + x.shape[1]"}
