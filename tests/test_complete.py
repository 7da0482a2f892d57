"""Judging a checkpoint (tito.state.judge) and diagnosing a build (tito.complete.diagnose): pure
functions on evidence and states, so every branch is tested here without files or subprocesses."""
from __future__ import annotations

import pytest

from tito import complete, state
from tito.export import ExportError
from tito.manifest import load
from tito.results import CheckpointResult, Status, TestRecord

from .conftest import ROOT

COURSE = load(ROOT)
CHECKPOINT = COURSE.modules[2].checkpoint
RESULT_FILE = "build/checkpoints/02.json"


def run_result(status: Status, passed: int, total: int, note: str | None = None) -> CheckpointResult:
    tests = [TestRecord(f"test_{i}", f"x::test_{i}", Status.PASSED if i < passed else Status.FAILED, 0.1)
             for i in range(total)]  # fmt: skip
    return CheckpointResult(CHECKPOINT.id, CHECKPOINT.name, "03_activations", "I can", status, passed, total,
                            1.0, "2026-12-01T17:00:00+00:00", note, tuple(tests))  # fmt: skip


PASSED = run_result(Status.PASSED, 3, 3)


@pytest.mark.parametrize(
    "evidence, own, reason, warning",
    [
        (state.Evidence(RESULT_FILE, missing="modules/03_activations/activations.py"), Status.UNAVAILABLE,
         "modules/03_activations/activations.py does not exist", None),
        (state.Evidence(RESULT_FILE, result_problem="missing"), Status.NEVER, None, None),
        (state.Evidence(RESULT_FILE, result_problem="missing", recorded=True), Status.STALE,
         f"{RESULT_FILE} is missing", "missing although doit recorded checkpoint 02 as passed"),
        (state.Evidence(RESULT_FILE, result_problem="unreadable (bad)"), Status.NEVER, None,
         f"{RESULT_FILE} is unreadable (bad): result treated as unknown"),
        (state.Evidence(RESULT_FILE, result=run_result(Status.FAILED, 1, 3)), Status.FAILED, None, None),
        (state.Evidence(RESULT_FILE, result=run_result(Status.TIMEOUT, 0, 3, note="stopped after 600 s")),
         Status.FAILED, "stopped after 600 s", None),
        (state.Evidence(RESULT_FILE, result=PASSED, database_problem="build/.doit.db is unreadable (x)"),
         Status.STALE, "build/.doit.db is unreadable (x)", None),
        (state.Evidence(RESULT_FILE, result=PASSED), Status.STALE, "not recorded in doit's database", None),
        (state.Evidence(RESULT_FILE, result=PASSED, recorded=True, changed=("tinytorch/core/tensor.py changed",)),
         Status.STALE, "tinytorch/core/tensor.py changed", None),
        (state.Evidence(RESULT_FILE, result=PASSED, recorded=True), Status.PASSED, None, None),
    ],
)
def test_a_checkpoint_is_judged_from_its_evidence_alone(evidence, own, reason, warning):
    judgement = state.judge(CHECKPOINT, evidence)
    assert judgement.own is own
    assert (reason in judgement.reasons[0]) if reason else judgement.reasons == []
    assert (warning in judgement.warning and "tito checkpoint test 02" in judgement.warning) if warning \
        else judgement.warning is None  # fmt: skip


def progress(*own: Status, results: dict[int, CheckpointResult] | None = None) -> state.Progress:
    """A course whose first checkpoints have these own states (the rest never ran), propagated."""
    stage_of = {m.id: s for s in COURSE.stages for m in s.modules}
    entries = []
    for index, module in enumerate(COURSE.modules):
        mine = own[index] if index < len(own) else Status.NEVER
        result = (results or {}).get(index)
        entries.append(state.Entry(module.checkpoint, module, stage_of[module.id], own=mine, result=result,
                                   reasons=["modules/x does not exist"] if mine is Status.UNAVAILABLE else []))
    state.propagate(entries)
    return state.Progress(COURSE, entries, [])


MODULE = COURSE.modules[2]  # checkpoint 02
ERROR = ExportError("modules/02_tensor/tensor.py", 7, "syntax error: invalid syntax")


def test_a_passed_checkpoint_is_celebrated_whatever_doit_returned():
    outcome = complete.diagnose(progress(Status.PASSED, Status.PASSED, Status.PASSED), MODULE, 1, None)
    assert isinstance(outcome, complete.Passed) and outcome.entry.checkpoint == MODULE.checkpoint


def test_an_export_error_comes_before_any_test_failure():
    outcome = complete.diagnose(progress(Status.PASSED, Status.FAILED), MODULE, 1, ERROR)
    assert outcome == complete.ExportFailed(ERROR)
    assert (outcome.error.path, outcome.error.line) == ("modules/02_tensor/tensor.py", 7)


def test_the_first_failed_checkpoint_is_the_culprit_and_blocks_the_target():
    states = progress(Status.PASSED, Status.FAILED, results={1: run_result(Status.FAILED, 1, 3)})
    outcome = complete.diagnose(states, MODULE, 1, None)
    assert isinstance(outcome, complete.CheckpointFailed)
    assert outcome.culprit.checkpoint.id == "01" and outcome.blocked_target.checkpoint.id == "02"
    own = complete.diagnose(progress(Status.PASSED, Status.PASSED, Status.FAILED), MODULE, 1, None)
    assert own.culprit.checkpoint.id == "02" and own.blocked_target is None


def test_a_pass_behind_a_missing_module_stays_locked_but_is_not_a_failure():
    outcome = complete.diagnose(progress(Status.PASSED, Status.UNAVAILABLE, Status.PASSED), MODULE, 0, None)
    assert isinstance(outcome, complete.PassedButLocked) and outcome.culprit.checkpoint.id == "01"


def test_doit_stopping_without_a_failure_to_show_is_reported_as_such():
    outcome = complete.diagnose(progress(Status.PASSED, Status.PASSED, Status.NEVER), MODULE, 2, None)
    assert outcome == complete.DoitStopped(2, "before checkpoint 02 could run")


def test_inputs_changed_during_the_run_ask_for_another_run():
    outcome = complete.diagnose(progress(Status.PASSED, Status.STALE, Status.PASSED), MODULE, 0, None)
    assert isinstance(outcome, complete.NotUpToDate) and outcome.culprit.checkpoint.id == "01"


def test_an_export_outcome_is_none_on_success_and_says_why_otherwise():
    assert complete.export_outcome(0, None, MODULE) is None
    assert complete.export_outcome(1, ERROR, MODULE) == complete.ExportFailed(ERROR)
    assert complete.export_outcome(1, None, MODULE) == complete.DoitStopped(1, "while exporting 03_activations")


def test_an_export_error_is_data_and_reads_as_path_line_message():
    assert str(ERROR) == "modules/02_tensor/tensor.py:7: syntax error: invalid syntax"
    assert str(ExportError("modules/x.py", 0, "the lesson file does not exist")) == \
        "modules/x.py: the lesson file does not exist"  # fmt: skip
