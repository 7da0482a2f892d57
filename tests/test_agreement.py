"""Lessons and checkpoints agree: what a checkpoint demands of the learner is stated in the lesson."""
from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT
from tito import manifest

COURSE = manifest.load(ROOT)


def _expected_errors(checkpoint_text: str) -> set[str]:
    """The exception names of every `pytest.raises(...)` in a checkpoint."""
    names = set()
    for node in ast.walk(ast.parse(checkpoint_text)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.raises" and node.args:
            names |= set(re.findall(r"[A-Za-z_]\w*", ast.unparse(node.args[0])))
    return names


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.id)
def test_every_error_a_checkpoint_expects_is_named_in_its_lesson(module):
    lesson = (ROOT / module.source).read_text(encoding="utf-8")
    expected = _expected_errors((ROOT / module.checkpoint.file).read_text(encoding="utf-8"))
    unstated = sorted(name for name in expected if not re.search(rf"\b{name}\b", lesson))
    assert not unstated, f"{module.checkpoint.file} expects {unstated}, which {module.source} never mentions"


def test_the_check_finds_what_it_looks_for():
    text = "def test_x():\n    with pytest.raises((KeyError, ValueError), match='x'):\n        pass\n"
    assert _expected_errors(text) == {"KeyError", "ValueError"}
