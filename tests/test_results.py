"""The checkpoint result schema (tito.results) and the course layout (tito.manifest): no subprocesses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tito.manifest import load
from tito.results import (
    RUN_STATUSES,
    CheckpointResult,
    Frame,
    InvalidResult,
    PytestReport,
    Status,
    TestRecord,
)

ROOT = Path(__file__).resolve().parents[1]


def record(name: str, outcome: Status = Status.PASSED, **extra) -> TestRecord:
    return TestRecord(name, f"checkpoints/checkpoint_08_x.py::{name}", outcome, 0.25, **extra)


def result(**changes) -> dict:
    failing = record("test_b", Status.FAILED, message="assert 1 == 2",
                     traceback=(Frame("tinytorch/core/tensor.py", 12, "in __add__"),))  # fmt: skip
    data = CheckpointResult(
        checkpoint="08", name="differentiation", module="09_autograd", capability="I can differentiate",
        status=Status.FAILED, tests_passed=1, tests_total=2, duration=1.5, finished_at="2026-12-01T17:00:00+00:00",
        tests=(record("test_a"), failing), output="1 failed",
    ).to_json()  # fmt: skip
    data.update(changes)
    return data


def test_a_result_survives_the_round_trip_through_json():
    data = result()
    parsed = CheckpointResult.from_json(json.loads(json.dumps(data)))
    assert parsed.to_json() == data
    assert parsed.status is Status.FAILED and not parsed.passed
    assert [t.name for t in parsed.failed_tests] == ["test_b"]
    assert parsed.failed_tests[0].traceback == (Frame("tinytorch/core/tensor.py", 12, "in __add__"),)


def test_a_result_written_before_the_schema_still_reads():
    """Files from earlier runs omit message/traceback for passing tests; they stay readable."""
    data = result(status="passed", tests_passed=1, tests_total=1)
    data["tests"] = [{"name": "test_a", "nodeid": "x::test_a", "outcome": "passed", "duration": 0.1}]
    parsed = CheckpointResult.from_json(data)
    assert parsed.passed and parsed.tests[0].message == "" and parsed.tests[0].traceback == ()


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"tests_passed": 3}, "3/2 tests passed is impossible"),
        ({"tests_passed": -1}, "impossible"),
        ({"tests_passed": 2, "tests_total": 2}, "says 2 tests passed but records 1"),
        ({"status": "passed"}, "status passed with 1/2"),
        ({"status": "locked"}, "'locked' is not one of"),
        ({"status": "PASSED"}, "'PASSED' is not one of"),
        ({"tests_total": "2"}, "'tests_total' is str, not int"),
        ({"tests_total": True}, "'tests_total' is bool, not int"),
        ({"duration": "fast"}, "'duration' is str"),
        ({"tests": "all"}, "'tests' is str, not list"),
        ({"tests": [{"name": "t", "nodeid": "t", "outcome": "won", "duration": 0}]}, "'won' is not one of"),
        ({"tests": [{"name": "t", "nodeid": "t", "outcome": "passed", "duration": -1}]}, "negative duration"),
        ({"tests": [{"name": "t", "nodeid": "t", "outcome": "failed", "duration": 0, "traceback": [{"path": 3, "line": 1}]}]},
         "'path' is int"),
    ],
)
def test_an_invalid_result_is_refused_with_the_reason(changes, complaint):
    with pytest.raises(InvalidResult, match=complaint):
        CheckpointResult.from_json(result(**changes))


def test_a_missing_key_and_a_non_object_are_refused():
    data = result()
    del data["finished_at"]
    with pytest.raises(InvalidResult, match="'finished_at' is missing"):
        CheckpointResult.from_json(data)
    with pytest.raises(InvalidResult, match="not a JSON object"):
        CheckpointResult.from_json([data])


def test_reading_tells_a_missing_file_from_a_damaged_one(tmp_path):
    path = tmp_path / "08.json"
    with pytest.raises(FileNotFoundError):
        CheckpointResult.read(path)
    path.write_bytes(b"{not json")
    with pytest.raises(InvalidResult):
        CheckpointResult.read(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidResult):
        CheckpointResult.read(path)
    path.write_text(CheckpointResult.from_json(result()).dumps())
    assert CheckpointResult.read(path).tests_total == 2


def test_the_pytest_report_round_trips():
    report = PytestReport((record("test_a"), record("test_b", Status.SKIPPED, message="no torch")), 0.5, "now")
    assert PytestReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_status_words_are_the_json_words():
    assert str(Status.SYNTAX_ERROR) == "syntax error" and f"{Status.PASSED}" == "passed"
    assert json.dumps({"s": Status.LOCKED}) == '{"s": "locked"}'
    assert {s.value for s in RUN_STATUSES} == {"passed", "failed", "timeout", "error"}


def test_the_layout_puts_everything_generated_under_build():
    course = load(ROOT)
    checkpoint = course.find_checkpoint("8")
    assert course.root == ROOT and course.build.dir == ROOT / "build"
    assert course.relative(course.build.result(checkpoint)) == "build/checkpoints/08.json"
    generated = [course.build.db, course.build.lock, course.build.imports, course.build.notebooks,
                 course.build.release, course.build.grade, course.build.bench, course.build.tinygpt,
                 course.build.mutants]  # fmt: skip
    assert all(path.parent == course.build.dir for path in generated)
    assert course.relative(course.build.mutation_report(course.find_module("3"))) == "build/mutants/03.json"
    assert len(set(generated)) == len(generated)


def test_a_course_moved_elsewhere_keeps_its_modules(tmp_path):
    course = load(ROOT)
    moved = course.at(tmp_path)
    assert moved.modules == course.modules and moved.build.dir == tmp_path.resolve() / "build"
    assert not moved.available(course.modules[0]) and course.available(course.modules[0])
    assert moved.missing_file(course.modules[0]) == course.modules[0].source
