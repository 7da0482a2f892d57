"""Where the learner is: each checkpoint's state, from doit's database plus build/checkpoints/*.json.

This never runs a test and imports only the standard library (no NumPy, doit or framework), so
`tito checkpoint status` answers at once. It works in two steps:

1. Each checkpoint's *own* state, judged alone the way doit would:
   passed  -- its JSON says passed, doit holds a row for the real task (not a placeholder's), every
              file dependency stored in that row is unchanged (mtime, then size, then MD5: doit's
              MD5Checker), and the lessons exporting those files are unchanged since their export ran
   stale   -- it passed before but one of those inputs changed, or doit's row/database is missing
   failed  -- its last run failed (k/n tests)
   never   -- no result yet
   unavailable -- the lesson or checkpoint file does not exist in this copy of the course
2. Propagation in course order: after a failed / never run / unavailable checkpoint everything is
   locked; after a stale one a passed checkpoint is stale too and a never-run one locked; with every
   earlier checkpoint passed a never-run one is ready.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tito import database
from tito.manifest import Checkpoint, Course, Module, Stage
from tito.results import CheckpointResult, InvalidResult, Status

STATES = (Status.PASSED, Status.STALE, Status.FAILED, Status.READY, Status.LOCKED, Status.UNAVAILABLE)


@dataclass
class Entry:
    """One checkpoint (and its module) with its state and the evidence for it."""

    checkpoint: Checkpoint
    module: Module
    stage: Stage
    state: Status = Status.READY  # one of STATES
    own: Status = Status.NEVER  # the state judged alone, before propagation
    result: CheckpointResult | None = None  # the last run
    reasons: list[str] = field(default_factory=list)  # why stale / locked / unavailable
    changed: list[str] = field(default_factory=list)  # input files changed since the last pass

    @property
    def tests_passed(self) -> int:
        return self.result.tests_passed if self.result else 0

    @property
    def tests_total(self) -> int:
        return self.result.tests_total if self.result else 0

    @property
    def last_run(self) -> str | None:
        return self.result.finished_at if self.result else None

    @property
    def progress(self) -> float:
        """Module progress: the fraction of the checkpoint's tests that passed last run.

        A locked checkpoint counts 0 whatever its old result: it must be earned again once the
        checkpoints before it pass, and stage progress should not claim otherwise.
        """
        if self.state not in (Status.PASSED, Status.STALE, Status.FAILED) or not self.tests_total:
            return 0.0
        return self.tests_passed / self.tests_total

    @property
    def label(self) -> str:
        if self.state is Status.FAILED:
            return f"failed {self.tests_passed}/{self.tests_total}"
        return "not yet available" if self.state is Status.UNAVAILABLE else self.state.value

    def as_json(self) -> dict:
        return {
            "id": self.checkpoint.id,
            "name": self.checkpoint.name,
            "module": self.module.id,
            "stage": self.stage.name,
            "state": self.state.value,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "last_run": self.last_run,
        }


@dataclass
class Progress:
    course: Course
    entries: list[Entry]
    warnings: list[str]  # one line each: what was found and what to run

    def entry(self, checkpoint: Checkpoint) -> Entry:
        return next(e for e in self.entries if e.checkpoint == checkpoint)

    @property
    def passed(self) -> int:
        return sum(e.state is Status.PASSED for e in self.entries)

    @property
    def next(self) -> Entry | None:
        """The first checkpoint that is not passed: where the learner is."""
        return next((e for e in self.entries if e.state is not Status.PASSED), None)

    @property
    def test_target(self) -> Entry | None:
        """What `tito checkpoint test` runs by default: the first checkpoint that failed or never
        ran (stale ones before it are re-checked on the way), else the last stale one."""
        runnable = [e for e in self.entries if e.state is not Status.UNAVAILABLE]
        first = next((e for e in runnable if e.own in (Status.FAILED, Status.NEVER)), None)
        return first or next((e for e in reversed(runnable) if e.state is not Status.PASSED), None)

    @property
    def next_command(self) -> str | None:
        entry = self.next
        if entry is None or entry.state is Status.UNAVAILABLE:
            return None
        if entry.state is Status.STALE:
            return f"tito checkpoint test {self.test_target.checkpoint.id}"
        return complete_command(entry.module)

    def stage_entries(self, stage: Stage) -> list[Entry]:
        return [e for e in self.entries if e.stage == stage]

    def stage_progress(self, stage: Stage) -> float:
        """The mean of the stage's module progress (so half a module counts as half)."""
        entries = self.stage_entries(stage)
        return sum(e.progress for e in entries) / len(entries) if entries else 0.0

    def as_json(self) -> dict:
        stages = []
        for stage in self.course.stages:
            entries = self.stage_entries(stage)
            stages.append({
                "name": stage.name,
                "capability": stage.capability,
                "checkpoints": [e.checkpoint.id for e in entries],
                "passed": sum(e.state is Status.PASSED for e in entries),
                "total": len(entries),
                "progress": round(self.stage_progress(stage), 4),
            })  # fmt: skip
        return {"checkpoints": [e.as_json() for e in self.entries], "stages": stages, "next": self.next_command}


def complete_command(module: Module) -> str:
    return f"tito module complete {module.id}"


def recorded(tasks: dict, task: str, path: Path) -> dict | None:
    """doit's row for a real run of `task`, whose file dependencies include `path`.

    A module that was a placeholder (no lesson yet) left a row with no dependencies; it proves nothing
    about the real task, and doit itself re-runs the task because its file_dep changed.
    """
    row = tasks.get(task)
    return row if row is not None and path.as_posix() in row.get("deps:", []) else None


def file_changed(root: Path, path: str, stored) -> bool:
    """doit's MD5Checker: same mtime -> unchanged; else different size -> changed; else compare MD5."""
    try:
        stat = os.stat(root / path)
        mtime, size, md5 = stored
    except (OSError, TypeError, ValueError):
        return True
    if stat.st_mtime == mtime:
        return False
    if stat.st_size != size:
        return True
    return hashlib.md5((root / path).read_bytes()).hexdigest() != md5


def changed_inputs(course: Course, tasks: dict, row: dict) -> list[str]:
    """The checkpoint's inputs changed since doit recorded it: its own file deps, and the lessons
    behind the exported files it uses (a lesson edited but not yet exported is a change too)."""
    changed = []
    for path in row.get("deps:", []):
        if file_changed(course.root, path, row.get(path)):
            changed.append(f"{path} changed")
        module = exporting_module(course, path)
        if module is None:
            continue
        export_row = recorded(tasks, module.export_task, module.source)
        if export_row is None:
            changed.append(f"{module.source.as_posix()} changed (its last export failed or never ran)")
            continue
        for source in export_row.get("deps:", []):
            if file_changed(course.root, source, export_row.get(source)):
                changed.append(f"{source} changed (not exported yet)")
    return list(dict.fromkeys(changed))


def exporting_module(course: Course, path: str) -> Module | None:
    """`tinytorch/core/tensor.py` -> the module exporting core.tensor."""
    parts = Path(path).with_suffix("").parts
    if len(parts) < 2 or parts[0] != "tinytorch":
        return None
    return course.module_for_target(".".join(parts[1:]))


def read_result(course: Course, checkpoint: Checkpoint) -> tuple[CheckpointResult | None, str | None]:
    """The checkpoint's last result, or (None, why it could not be used)."""
    try:
        return CheckpointResult.read(course.build.result(checkpoint)), None
    except FileNotFoundError:
        return None, "missing"
    except InvalidResult as error:
        return None, f"unreadable ({error})"


def own_state(entry: Entry, course: Course, tasks: dict | None, warnings: list[str]) -> None:
    """Fill entry.own/result/reasons/changed, judging this checkpoint alone."""
    checkpoint, module = entry.checkpoint, entry.module
    missing = course.missing_file(module)
    if missing is not None:
        entry.own, entry.reasons = Status.UNAVAILABLE, [f"{missing.as_posix()} does not exist"]
        return
    result, problem = read_result(course, checkpoint)
    row = recorded(tasks, checkpoint.task, checkpoint.file) if tasks is not None else None
    entry.result = result
    rebuild = f"run `tito checkpoint test {checkpoint.id}` to rebuild it"
    if result is None:
        path = course.relative(course.build.result(checkpoint))
        if problem != "missing":
            warnings.append(f"warning: {path} is {problem}: result treated as unknown; {rebuild}")
        elif row is not None:
            warnings.append(f"warning: {path} is missing although doit recorded checkpoint {checkpoint.id} "
                            f"as passed: result treated as unknown; {rebuild}")  # fmt: skip
        if row is not None:
            entry.own, entry.reasons = Status.STALE, [f"{path} is {problem}"]
        return
    if not result.passed:
        entry.own = Status.FAILED
        if result.note:
            entry.reasons = [result.note]
        return
    if tasks is None:
        entry.own, entry.reasons = Status.STALE, [f"{course.relative(course.build.db)} is unreadable"]
    elif row is None:
        entry.own, entry.reasons = Status.STALE, ["this pass is not recorded in doit's database"]
    else:
        entry.changed = changed_inputs(course, tasks, row)
        entry.own = Status.STALE if entry.changed else Status.PASSED
        entry.reasons = list(entry.changed)


def propagate(entries: list[Entry]) -> None:
    blocker = stale_before = None
    for entry in entries:
        if entry.own is Status.UNAVAILABLE:
            entry.state = Status.UNAVAILABLE
        elif blocker is not None:
            entry.state = Status.LOCKED
            entry.reasons = [f"checkpoint {blocker.checkpoint.id} is {blocker.label}", *entry.reasons]
        elif entry.own is Status.NEVER:
            entry.state = Status.LOCKED if stale_before else Status.READY
            if stale_before:
                entry.reasons = [f"checkpoint {stale_before.checkpoint.id} needs re-checking first"]
        elif entry.own is Status.PASSED and stale_before is not None:
            entry.state = Status.STALE
            entry.reasons = [f"an earlier checkpoint ({stale_before.checkpoint.id}) needs re-checking"]
        else:
            entry.state = entry.own
        if blocker is None and entry.state in (Status.FAILED, Status.READY, Status.LOCKED, Status.UNAVAILABLE):
            blocker = entry
        if stale_before is None and entry.state is Status.STALE:
            stale_before = entry


def compute(course: Course) -> Progress:
    warnings: list[str] = []
    try:
        tasks: dict | None = database.read_tasks(course)
    except database.CorruptDatabase as error:
        tasks = None
        warnings.append(f"warning: {error}: results treated as unknown; run `tito checkpoint test` to rebuild it")
    stage_of = {m.id: s for s in course.stages for m in s.modules}
    entries = [Entry(m.checkpoint, m, stage_of[m.id]) for m in course.modules]
    for entry in entries:
        own_state(entry, course, tasks, warnings)
    propagate(entries)
    return Progress(course, entries, warnings)
