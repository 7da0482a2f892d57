"""The quiet doit report (tito.reporter) that make and tito ask for; plain doit keeps doit's own."""
from __future__ import annotations

import re

import pytest

from .conftest import CourseCopy

QUIET = {"TINYTORCH_REPORT": "quiet", "COLUMNS": "80"}


@pytest.fixture
def stubs(student_foundation) -> CourseCopy:
    return student_foundation


def test_the_quiet_report_says_each_thing_once(stubs):
    result = stubs.doit("--continue", env=QUIET)
    lines = result.stdout.splitlines()

    assert result.returncode != 0
    assert lines[0] == "exported 3 lessons (01_setup … 03_activations)"
    assert re.fullmatch(r"✗ module 01_setup · checkpoint 00 environment: 0/\d+ tests passed", lines[1]), lines[1]
    assert lines[-1] == "⏭ 2 checkpoints not run (01–02): waiting for checkpoint:00 to pass first"
    assert not {"UnmetDependency", "TaskFailed", "did not pass"} & set(result.stdout.split()), result.stdout
    assert sum("NotImplementedError" in line for line in lines) <= 3, "at most three failure groups, clipped"
    assert all(len(line) <= 80 for line in lines)
    assert result.stderr == ""


def test_identical_failures_are_one_line(stubs):
    result = stubs.doit("--continue", env=QUIET)
    # checkpoint 00 has two tests of time_it, both stopping at its one stub
    grouped = [line for line in result.stdout.splitlines() if "2 tests stop at the same stub" in line]
    assert len(grouped) == 1 and "setup.py:" in grouped[0] and "time_it" in grouped[0], result.stdout


def test_a_build_with_nothing_to_do_says_so_in_one_line(stubs):
    stubs.doit("--continue", "export", env=QUIET)
    again = stubs.doit("export", env=QUIET)
    assert again.returncode == 0 and again.stdout == "✓ everything is up to date\n"


def test_an_export_error_is_reported_once_with_its_line(stubs):
    lesson = stubs.path("modules/02_tensor/tensor.py")
    lesson.write_text(lesson.read_text() + "\n# %%\ndef broken(:\n")
    result = stubs.doit("export", env=QUIET)
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗ export:02_tensor")]
    assert result.returncode != 0 and len(failed) == 1, result.stdout
    assert "modules/02_tensor/tensor.py:" in failed[0] and "syntax error" in failed[0]
    assert result.stdout.count("syntax error") == 1


def test_plain_doit_keeps_its_own_reporter(stubs):
    result = stubs.doit("--continue", env={"COLUMNS": "80"})
    assert ".  export:01_setup" in result.stdout and "UnmetDependency - taskid:checkpoint:01" in result.stdout
