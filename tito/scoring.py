"""Scoring a graded run: from what came back out of a learner's sandbox to a row of cells.

Owns the grade of each checkpoint. Its inputs are untrusted (everything in a learner's temporary
course could have been written by the learner's code); they are read with `read_back` (no symbolic
links followed, sizes capped) and judged by tito.evidence against the instructor's reference runs.
A learner's own result files only contribute failure messages, shown as such, never a verdict.

A checkpoint is worth its number of test functions (the same for every learner); a learner earns
that times the fraction of the reference's test cases whose evidence verified. Checkpoints unlock in
order as for the learner: after one that did not pass (by this verdict), the rest are locked.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tito.evidence import InvalidEvidence, Reference, TestEvidence, parse, verdict
from tito.manifest import Course, Module
from tito.results import CheckpointResult, InvalidResult, Status
from tito.sandbox import CONTROL

RESULT_BYTES = 2**20  # of a learner's own result file read for its failure messages
MESSAGE = 300  # characters of one failure message kept


@dataclass
class Cell:
    """One learner's grade for one checkpoint: `passed` of the reference's `total` test cases verified."""

    status: Status
    passed: int
    total: int
    max_points: int
    note: str = ""
    failed_tests: list[dict] = field(default_factory=list)  # {"name", "message"}

    @property
    def points(self) -> float:
        return round(self.max_points * self.passed / self.total, 2) if self.total else 0.0


@dataclass
class Grade:
    learner: str
    cells: dict[str, Cell]  # checkpoint id -> cell
    problems: list[str]  # about the submission itself: missing lessons, syntax errors
    duration: float
    timed_out: bool
    log_tail: str = ""
    broken: str = ""  # grading itself failed for this learner (not the learner's fault): why

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.cells.values()), 2)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.cells.values())


@dataclass
class Collected:
    """What came back from one sandboxed run, read before its temporary course was deleted."""

    evidence: dict[str, dict[str, TestEvidence] | InvalidEvidence]  # checkpoint id ->
    messages: dict[str, dict[str, str]]  # checkpoint id -> test name -> the learner's own failure message


def read_back(work: Path, relative: Path, limit: int) -> bytes | None:
    """At most `limit`+1 bytes of a regular file under `work`, reached without following a symbolic
    link at any step (a learner's run may have replaced any folder by a link to anywhere); None when
    there is no such file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        folder = os.open(work, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in relative.parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        handle = os.open(relative.parts[-1], flags | os.O_NONBLOCK, dir_fd=folder)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES, errno.ENXIO):
            return None
        raise
    finally:
        os.close(folder)
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(handle).st_mode):  # a FIFO or a device: nothing to read
            return None
        return stream.read(limit + 1)


def collect(copy: Course, modules: list[Module], evidence_dir: Path) -> Collected:
    """Read what a run left in its temporary course `copy` (the course at the temporary folder)."""
    work, evidence, messages = copy.root, {}, {}
    for module in modules:
        checkpoint = module.checkpoint
        data = read_back(work, evidence_dir / f"{checkpoint.file.stem}.jsonl", RESULT_BYTES * 16)
        try:
            evidence[checkpoint.id] = parse(data) if data is not None else {}
        except InvalidEvidence as error:
            evidence[checkpoint.id] = error
        result_file = Path(copy.relative(copy.build.result(checkpoint)))
        messages[checkpoint.id] = failure_messages(read_back(work, result_file, RESULT_BYTES))
    return Collected(evidence, messages)


def failure_messages(data: bytes | None) -> dict[str, str]:
    """The learner's own messages by test name ("" for a test it says passed), from its result file
    when that is a valid CheckpointResult (tito.results); hints only, never a verdict."""
    if not data or len(data) > RESULT_BYTES:
        return {}
    try:
        result = CheckpointResult.from_json(json.loads(data.decode("utf-8")))
    except (ValueError, InvalidResult, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    return {clean(t.name): clean(t.message) if t.failed else "" for t in result.tests}


def clean(text: str) -> str:
    """A learner's text, safe to print: no control characters (terminal escapes), bounded."""
    return CONTROL.sub("", text).strip()[:MESSAGE]


def clean(text: str) -> str:
    """A learner's text, safe to print: no control characters (terminal escapes), bounded."""
    return CONTROL.sub("", text).strip()[:MESSAGE]


def score(modules: list[Module], references: dict[str, Reference], points: dict[str, int],
          collected: Collected, problems: dict[str, str], timed_out: bool, timeout: float) -> dict[str, Cell]:  # fmt: skip
    """Each graded checkpoint's cell."""
    cells: dict[str, Cell] = {}
    blocked, stopped_here = False, timed_out
    for module in modules:
        checkpoint = module.checkpoint
        reference, worth = references[checkpoint.id], points[checkpoint.id]
        total = len(reference.tests)
        problem = problems.get(module.id)
        if problem == "missing":
            cell = Cell(Status.MISSING, 0, total, worth, f"{module.source.as_posix()} was not submitted")
        elif problem:
            cell = Cell(Status.SYNTAX_ERROR, 0, total, worth, problem)
        elif blocked:
            cell = Cell(Status.LOCKED, 0, total, worth, "not counted: an earlier checkpoint did not pass")
        else:
            cell = _judged(reference, worth, collected.evidence[checkpoint.id], collected.messages[checkpoint.id],
                           stopped_here, timeout)  # fmt: skip
            stopped_here = stopped_here and cell.status == Status.PASSED  # the time ran out in the first unfinished one
        cells[checkpoint.id] = cell
        blocked = blocked or cell.status != Status.PASSED
    return cells


def _judged(reference: Reference, worth: int, evidence, messages: dict[str, str], timed_out: bool,
            timeout: float) -> Cell:  # fmt: skip
    total = len(reference.tests)
    if isinstance(evidence, InvalidEvidence):
        return Cell(Status.ERROR, 0, total, worth, f"evidence file rejected: {evidence}")
    failed = []
    for nodeid in reference.tests:
        why = verdict(reference, nodeid, evidence.get(nodeid))
        if why is not None:
            name = nodeid.split("::")[-1]
            failed.append({"name": name, "message": messages.get(name) or why, "verdict": why})
    passed = total - len(failed)
    if passed == total:
        return Cell(Status.PASSED, passed, total, worth)
    claimed = sum(not messages.get(t["name"], "x") for t in failed)
    note = f"{claimed} tests its own run reported as passed are not verified by their evidence" if claimed else ""
    ran = bool(evidence) or bool(messages)
    if timed_out:
        return Cell(Status.TIMEOUT, passed, total, worth, f"the run was stopped after {timeout:g} s (time limit)", failed)
    if not ran:
        return Cell(Status.ERROR, 0, total, worth, "no test of this checkpoint ran (see log_tail)", failed)
    return Cell(Status.FAILED, passed, total, worth, note, failed)


def describe_problems(problems: dict[str, str]) -> list[str]:
    missing = [module_id for module_id, problem in problems.items() if problem == "missing"]
    lines = [f"lessons missing: {', '.join(missing)}"] if missing else []
    return lines + [problem for problem in problems.values() if problem != "missing"]
