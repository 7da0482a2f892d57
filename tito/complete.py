"""What a build through doit came to, as a value: owns the decisions of `tito module complete`,
`tito checkpoint test` and the export step of `tito checkpoint run`.

`unrecorded` names the checkpoint tasks doit must forget before a run (its database and the result
files disagree); `diagnose` turns the state after the run into one outcome below, and
`export_outcome` does the same for an export. Nothing here prints or starts a process: `tito.cli`
maps each outcome to a view and an exit code, and tests/test_complete.py covers every branch.
"""
from __future__ import annotations

from dataclasses import dataclass

from tito import doit_db, state
from tito.export import ExportError
from tito.manifest import Course, Module
from tito.results import Status
from tito.state import Entry, Progress


@dataclass(frozen=True)
class Passed:
    entry: Entry


@dataclass(frozen=True)
class ExportFailed:
    error: ExportError  # the first lesson, up to the module, that cannot be exported


@dataclass(frozen=True)
class CheckpointFailed:
    culprit: Entry  # the first checkpoint, up to the module's, that is not passed
    blocked_target: Entry | None  # the module's checkpoint, when the culprit is an earlier one


@dataclass(frozen=True)
class PassedButLocked:
    """The checkpoint's own tests pass, but an earlier module is not yet written (a course in progress)."""

    target: Entry
    culprit: Entry


@dataclass(frozen=True)
class DoitStopped:
    returncode: int
    during: str  # "before checkpoint 08 could run", "while exporting 09_autograd"


@dataclass(frozen=True)
class NotUpToDate:
    """Nothing failed, yet the culprit is not passed: its inputs changed while it ran."""

    culprit: Entry


Outcome = Passed | ExportFailed | CheckpointFailed | PassedButLocked | DoitStopped | NotUpToDate


def unrecorded(course: Course, upto: Module) -> list[str]:
    """Checkpoint tasks (up to `upto`'s) that doit records as passed although their result file is
    missing, unreadable or failed (`tito checkpoint run` writes it outside doit): doit must forget
    them, or it would wrongly call them up to date."""
    try:
        database = doit_db.read(course)
    except doit_db.CorruptDatabase:
        return []  # dodo.py moves it aside and every task runs again
    names = []
    for module in course.modules[: upto.index + 1]:
        checkpoint = module.checkpoint
        if course.available(module) and database.recorded(checkpoint.task, checkpoint.file):
            result, _ = state.read_result(course, checkpoint)
            if result is None or not result.passed:
                names.append(checkpoint.task)
    return names


def diagnose(progress: Progress, module: Module, returncode: int, export_error: ExportError | None) -> Outcome:
    """After `doit checkpoint:NN` ended with `returncode`: why the module's checkpoint is (not) passed."""
    target = progress.entry(module.checkpoint)
    if target.state is Status.PASSED:
        return Passed(target)
    if export_error is not None:
        return ExportFailed(export_error)
    culprit = next(e for e in progress.entries[: module.index + 1] if e.state is not Status.PASSED)
    if culprit.state is Status.FAILED:
        return CheckpointFailed(culprit, target if culprit is not target else None)
    if culprit.state is Status.UNAVAILABLE and target.own is Status.PASSED:
        return PassedButLocked(target, culprit)
    if returncode:
        return DoitStopped(returncode, f"before checkpoint {module.checkpoint.id} could run")
    return NotUpToDate(culprit)


def after_build(course: Course, module: Module, returncode: int) -> tuple[Progress, Outcome]:
    """Read the state the build left and diagnose it."""
    from tito import failures  # imports the exporter: only needed when something went wrong

    progress = state.compute(course)
    passed = progress.entry(module.checkpoint).state is Status.PASSED
    export_error = None if passed else failures.export_problem(course, module)
    return progress, diagnose(progress, module, returncode, export_error)


def export_outcome(returncode: int, export_error: ExportError | None, module: Module) -> Outcome | None:
    """After `doit export:...` ended with `returncode`: None when it succeeded."""
    if not returncode:
        return None
    if export_error is not None:
        return ExportFailed(export_error)
    return DoitStopped(returncode, f"while exporting {module.id}")
