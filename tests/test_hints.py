"""Hints that guide: a first hint about the idea inline, further levels on request (`tito hint`)."""
from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT
from tito import hints, manifest, release
from tito.mutants import solution_lines

COURSE = manifest.load(ROOT)
GUIDED = [m for m in COURSE.modules if int(m.number) <= 7]  # the modules whose hints were rewritten


def _lesson(module) -> str:
    return (ROOT / module.source).read_text(encoding="utf-8")


def _solution_calls(text: str, exercise: hints.Exercise) -> set[str]:
    """Source of every call with arguments in the solution block right after the exercise's first hint."""
    lines, block = text.split("\n"), []
    for number in sorted(n for n in solution_lines(text) if n > exercise.line):
        if block and number != block[-1] + 1:
            break
        block.append(number)
    calls = set()
    for number in block:  # statement by statement: a block's lines are not a module on their own
        statement = lines[number - 1].strip().removeprefix("return ").removeprefix("raise ").rstrip(":")
        try:
            tree = ast.parse(statement.removeprefix("if ").removeprefix("for ").split(" in ")[-1])
        except SyntaxError:
            continue
        calls |= {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Call) and node.args}
    return calls


@pytest.mark.parametrize("module", GUIDED, ids=lambda m: m.id)
def test_each_exercise_has_a_first_hint_and_at_least_one_more_level(module):
    text = _lesson(module)
    found = hints.exercises(module.source, text)
    assert found, f"{module.source}: no exercise found"
    blocks = text.count("### BEGIN SOLUTION")
    assert len(found) == blocks, f"{module.source}: {blocks} solution blocks but {len(found)} first hints"
    for exercise in found:
        assert len(exercise.levels) >= 2, f"{exercise.name}: only the first hint"
    names = {e.name for e in found}
    for line in text.split("\n"):
        match = hints.FURTHER.match(line)
        if match:
            assert match.group(1) in names, f"{module.source}: a further hint for an unknown exercise: {line}"


@pytest.mark.parametrize("module", GUIDED, ids=lambda m: m.id)
def test_the_first_hint_guides_without_dictating_the_code(module):
    text = _lesson(module)
    for exercise in hints.exercises(module.source, text):
        first = exercise.levels[0].replace(" ", "")
        copied = [call for call in _solution_calls(text, exercise) if call.replace(" ", "") in first]
        assert not copied, f"{exercise.name}: the first hint spells out the solution's code {copied}"


def test_the_student_edition_keeps_every_level_and_inlines_only_the_first():
    module = COURSE.find_module("03_activations")
    text = _lesson(module)
    stub = release.stub_lesson(text, module.source.as_posix()).text
    source_levels = {e.name: e.levels for e in hints.exercises(module.source, text)}
    assert {e.name: e.levels for e in hints.exercises(module.source, stub)} == source_levels
    relu = source_levels["ReLU.forward"]
    raise_line = next(line for line in stub.split("\n") if "raise NotImplementedError" in line and "'relu'" in line)
    assert relu[0] in raise_line.replace('\\"', '"') and relu[1] not in raise_line


def test_tito_hint_reveals_one_level_at_a_time(foundation):
    first = foundation.tito("hint", "relu")
    assert first.returncode == 0, first.stderr
    assert "hint 1 of 2" in first.stdout and "tito hint ReLU.forward --level 2" in first.stdout
    assert "np.maximum" not in first.stdout
    second = foundation.tito("hint", "ReLU.forward", "--level", "2")
    assert second.returncode == 0 and "hint 2 of 2" in second.stdout and "np.maximum" in second.stdout
    assert "Still stuck" not in second.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (("hint", "relu", "--level", "3"), "ReLU.forward has hint levels 1 to 2, not 3."),
        (("hint", "forward"), "'forward' names several exercises"),
        (("hint", "sigmoidd"), "No exercise named 'sigmoidd'."),
    ],
)
def test_tito_hint_mistakes_are_one_line_and_exit_2(foundation, args, words):
    result = foundation.tito(*args)
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr and re.search(r"\S", result.stderr)
