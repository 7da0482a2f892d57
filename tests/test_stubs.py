"""A checkpoint tests the learner's code, not the code the lesson gives them.

For each module k: the solutions of every other module, the student edition (release stub) of k.
Checkpoint k must then pass zero test cases: a test that passes on the stub pays for nothing.
"""
from __future__ import annotations

import pytest

from tito import manifest, mutants, release
from tests.conftest import ROOT

COURSE = manifest.load(ROOT)


@pytest.fixture(scope="module")
def workspace():
    space = mutants.Workspace(COURSE)
    yield space
    space.remove()


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.id)
def test_checkpoint_passes_nothing_on_the_release_stub(workspace, module):
    lesson = (ROOT / module.source).read_text(encoding="utf-8")
    stub = release.stub_lesson(lesson, module.source.as_posix()).text
    outcome = workspace.run(module, stub, first_failure=False, timeout=600)
    assert outcome.failed, f"{module.checkpoint.file} ran no test against the stub"
    assert outcome.passed == [], f"{module.checkpoint.file}: these pass on the untouched stub: {outcome.passed}"
