"""The grader's own pieces, without a sandbox: instrumenting checkpoints, reading evidence
defensively, the verdict, reading files back without following links, the table's width."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from tito import evidence, scoring, views
from tito.evidence import InvalidEvidence, Reference, TestEvidence
from tito.manifest import load
from tito.results import CheckpointResult, Status, TestRecord

from .conftest import ROOT

CHECKPOINTS = sorted((ROOT / "checkpoints").glob("checkpoint_*.py"))


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.stem)
def test_every_checkpoint_instruments_without_moving_a_line(path):
    source = path.read_text(encoding="utf-8")
    instrumented = evidence.instrument(source, str(path))
    assert len(instrumented.splitlines()) == len(source.splitlines())
    for before, after in zip(source.splitlines(), instrumented.splitlines()):
        assert after.replace("__evidence__(", "").count(")") >= before.count(")")
    assert instrumented.count("__evidence__(") >= source.count("def test_")


def test_what_is_recorded():
    source = (
        "def test_x():\n"
        "    assert f(1).shape == (2, 3)\n"
        "    assert 0 < g() <= limit\n"
        "    np.testing.assert_allclose(h(x).data, expected, rtol=1e-6)\n"
        "    assert np.allclose(k(), 1.0)\n"
        "    assert flag and not other\n"
    )
    out = evidence.instrument(source).splitlines()
    assert out[1] == "    assert __evidence__(2, f(1).shape) == (2, 3)"
    assert out[2] == "    assert 0 < __evidence__(3, g()) <= __evidence__(3, limit)"
    assert out[3] == "    np.testing.assert_allclose(__evidence__(4, h(x).data), expected, rtol=1e-6)"
    assert out[4] == "    assert np.allclose(__evidence__(5, k()), 1.0)"
    assert out[5] == "    assert __evidence__(6, flag) and not __evidence__(6, other)"


def record(nodeid: str, **fields) -> str:
    return json.dumps({"t": nodeid, **fields})


@pytest.mark.parametrize("data, why", [
    (b"\xff\xfe", "not UTF-8"),
    (b"[" * 100000, "not JSON"),
    (b'{"t": "a", "l": "x", "v": 1}', "not an evidence record"),
    (b'{"t": "a", "l": 1, "v": NaN}', "not JSON"),
    (b'{"t": "a", "end": false}', "not an evidence record"),
    (b'{"t": 5, "end": true}', "not an evidence record"),
    (b'{"t": "a", "l": 1, "v": [[[[[[[[[[1]]]]]]]]]]}', "not an evidence record"),
    (b"x" * (evidence.MAX_BYTES + 1), "larger than"),
])  # fmt: skip
def test_malformed_evidence_is_rejected_with_a_reason(data, why):
    with pytest.raises(InvalidEvidence, match=why):
        evidence.parse(data)


def test_parse_groups_records_by_test():
    data = "\n".join([record("a", l=3, v=1.5), record("a", end=True), record("b", l=4, v=None)]).encode()
    tests = evidence.parse(data)
    assert tests["a"].values == [(3, 1.5)] and tests["a"].ends == 1
    assert tests["b"].values == [(4, None)] and tests["b"].ends == 0


def array(values, sums=None):
    return {"shape": [len(values)], "kind": "n", "values": values, "sums": sums}


@pytest.mark.parametrize("mine, reference, volatile, expected", [
    (1.0, 1.0004, False, True),
    (1.0, 1.01, False, False),
    (1.0, 1.01, True, True),
    (True, 1, False, False),
    (1, True, False, False),
    ("a", "a", False, True),
    ("a", None, False, False),
    (array([1.0, 2.0]), array([1.0, 2.0000001]), False, True),
    (array([1.0, 2.0]), array([1.0, 2.1]), False, False),
    (array([1.0, 2.0]), array([1.0, 2.0, 3.0]), True, False),
    ({"shape": [2], "kind": "n", "values": [0.0], "sums": [1.0, 2.0]},
     {"shape": [2], "kind": "n", "values": [0.0], "sums": [1.5, 2.0]}, False, True),
    ({"type": "Tensor"}, {"type": "Tensor"}, False, True),
    ({"raised": False}, {"raised": True}, False, False),
])  # fmt: skip
def test_agreement(mine, reference, volatile, expected):
    assert evidence.agree(mine, reference, volatile) is expected


def reference(*values) -> Reference:
    test = TestEvidence([(10 + i, v) for i, v in enumerate(values)], 1)
    return Reference({"t": test}, {})


@pytest.mark.parametrize("mine, why", [
    (None, "did not finish"),
    (TestEvidence([(10, 1.0), (11, 2.0)], 0), "did not finish"),
    (TestEvidence([(10, 1.0), (11, 2.0), (10, 1.0), (11, 2.0)], 2), "reported 2 times"),
    (TestEvidence([(10, 1.0)], 1), "checked 1 values where the reference checks 2"),
    (TestEvidence([(10, 1.0), (11, 3.0)], 1), "line 11 differs"),
    (TestEvidence([(10, 1.0), (12, 2.0)], 1), "line 11 differs"),
    (TestEvidence([(10, 1.0), (11, 2.0)], 1), None),
])  # fmt: skip
def test_verdict(mine, why):
    found = evidence.verdict(reference(1.0, 2.0), "t", mine)
    assert found == why if why is None else why in found


def test_volatile_positions_come_from_two_reference_runs():
    first = {"t": TestEvidence([(1, 0.25), (2, 7)], 1)}
    second = {"t": TestEvidence([(1, 0.75), (2, 7)], 1)}
    assert Reference.from_runs(first, second).volatile == {"t": frozenset({0})}


def test_a_value_that_differs_at_all_between_the_reference_runs_is_volatile():
    # two timings of a 10 ms sleep on a quiet machine: within the agreement tolerance of each other,
    # yet a third run (the learner's) lands anywhere nearby
    first = {"t": TestEvidence([(1, 0.010159551), (2, {"shape": [2], "sums": [1.0, 2.0]})], 1)}
    second = {"t": TestEvidence([(1, 0.010159602), (2, {"shape": [2], "sums": [1.0, 2.0]})], 1)}
    reference = Reference.from_runs(first, second)
    assert reference.volatile == {"t": frozenset({0})}
    assert evidence.verdict(reference, "t", TestEvidence([(1, 0.0102), (2, {"shape": [2], "sums": [1.0, 2.0]})], 1)) is None
    assert "line 2 differs" in evidence.verdict(reference, "t", TestEvidence([(1, 0.0102), (2, {"shape": [3], "sums": [1.0, 2.0]})], 1))


def test_read_back_follows_no_link(tmp_path):
    work = tmp_path / "work"
    (work / "build").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (work / "build" / "plain.json").write_text("{}")
    (work / "build" / "link.json").symlink_to(secret)
    (work / "linked").symlink_to(tmp_path)
    os.mkfifo(work / "build" / "fifo")
    assert scoring.read_back(work, Path("build/plain.json"), 100) == b"{}"
    assert scoring.read_back(work, Path("build/link.json"), 100) is None
    assert scoring.read_back(work, Path("linked/secret.txt"), 100) is None
    assert scoring.read_back(work, Path("build/fifo"), 100) is None
    assert scoring.read_back(work, Path("build/missing.json"), 100) is None
    assert len(scoring.read_back(work, Path("build/plain.json"), 1)) == 2  # the caller sees it is too large


def test_failure_messages_come_only_from_a_valid_result_and_are_cleaned():
    def test(name, outcome, message=""):
        return TestRecord(name, f"c.py::{name}", Status(outcome), 0.1, message)

    result = CheckpointResult("00", "environment", "01_setup", "I can", Status.FAILED, 1, 2, 0.2, "now",
                              tests=(test("test_a", "failed", "\x1b[2Jboom\x07"), test("test_b", "passed")))
    assert scoring.failure_messages(result.dumps().encode()) == {"test_a": "[2Jboom", "test_b": ""}
    forged = {**result.to_json(), "tests_passed": 99}
    assert scoring.failure_messages(json.dumps(forged).encode()) == {}
    assert scoring.failure_messages(b'{"tests": "\xff"}') == {}
    assert scoring.failure_messages(None) == {}


def fake_grade(name: str, course, status: str = "passed") -> scoring.Grade:
    cells = {c.id: scoring.Cell(Status(status), 3, 3, 3) for c in course.checkpoints}
    return scoring.Grade(name, cells, [], 1.0, False)


def test_the_table_is_a_stage_summary_at_100_columns_and_the_full_grid_when_wide():
    course = load(ROOT)
    grades = [fake_grade("a-learner-with-a-long-name", course), fake_grade("b", course, "failed")]
    for width, stages in ((100, True), (220, False)):
        out = Console(file=io.StringIO(), width=width, emoji=False)
        out.print(views.grade_table(grades, course, width))
        text = out.file.getvalue()
        assert max(len(line) for line in text.splitlines()) <= width
        assert ("Foundation" in text) is stages and ("15" in text.splitlines()[2]) is not stages
