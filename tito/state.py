"""Where the learner is: owns the checkpoint states and their propagation through the course.

This never runs a test and imports only the standard library (no NumPy, doit or framework), so
`tito checkpoint status` answers at once. It works in three steps, the last two pure:

1. `gather` reads each checkpoint's evidence: whether its files exist, its last result
   (tito.results), doit's row for it and which inputs changed since (tito.doit_db).
2. `judge` gives each checkpoint its *own* state from that evidence alone, the way doit would:
   passed  -- its result says passed, doit holds a row for the real task (not a placeholder's), every
              file dependency stored in that row is unchanged (doit's MD5Checker rule), and the
              lessons exporting those files are unchanged since their export ran
   stale   -- it passed before but one of those inputs changed, or doit's row/database is missing
   failed  -- its last run failed (k/n tests)
   never   -- no result yet
   unavailable -- the lesson or checkpoint file does not exist in this copy of the course
3. `propagate` in course order: after a failed / never run / unavailable checkpoint everything is
   locked; after a stale one a passed checkpoint is stale too and a never-run one locked; with every
   earlier checkpoint passed a never-run one is ready.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tito import doit_db
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
    reasons: list[str] = field(default_factory=list)  # why stale / locked / unavailable / failed early

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
        """Module progress: 1 when passed, the fraction of tests that passed when failed, else 0.

        A stale or locked checkpoint counts 0 whatever its old result: it is not verified now, and
        every screen (header, stage bars, timeline) must say the same as the passed count.
        """
        if self.state is Status.PASSED:
            return 1.0
        if self.state is Status.FAILED and self.tests_total:
            return self.tests_passed / self.tests_total
        return 0.0

    @property
    def title(self) -> str:
        """`checkpoint 08 · differentiation (module 09_autograd)`: both numbers, everywhere."""
        return f"checkpoint {self.checkpoint.id} · {self.checkpoint.name} (module {self.module.id})"

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
    def target(self) -> Entry | None:
        """The checkpoint the next step works on: where the learner is, or, when stale checkpoints
        come first, the one `test_target` runs (the stale ones are re-checked on the way)."""
        entry = self.next
        if entry is None or entry.state is Status.UNAVAILABLE:
            return entry
        return self.test_target if entry.state is Status.STALE else entry

    @property
    def next_command(self) -> str | None:
        entry, target = self.next, self.target
        if entry is None or entry.state is Status.UNAVAILABLE:
            return None
        return test_command(target) if entry.state is Status.STALE else complete_command(target.module)

    def stage_count(self, stage: Stage, state: Status) -> int:
        return sum(e.state is state for e in self.stage_entries(stage))

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
                "passed": self.stage_count(stage, Status.PASSED),
                "stale": self.stage_count(stage, Status.STALE),
                "total": len(entries),
                "progress": round(self.stage_progress(stage), 4),
            })  # fmt: skip
        return {"checkpoints": [e.as_json() for e in self.entries], "stages": stages, "next": self.next_command}


def tito_on_path() -> bool:
    """Is `tito` a command the learner can type (an activated .venv)? If not, they use make."""
    return shutil.which("tito") is not None


def complete_command(module: Module) -> str:
    if tito_on_path():
        return f"tito module complete {module.id}"
    return f"make complete MODULE={module.id}"


def test_command(entry: Entry) -> str:
    """Re-check a checkpoint through the graph: `tito checkpoint test NN`, or make's equivalent."""
    return f"tito checkpoint test {entry.checkpoint.id}" if tito_on_path() else complete_command(entry.module)


@dataclass(frozen=True)
class Evidence:
    """What the course's files say about one checkpoint: gathered by `gather`, judged by `judge`."""

    result_file: str  # where its result lives, as the learner sees it
    missing: str | None = None  # its lesson or checkpoint file, when that does not exist
    result: CheckpointResult | None = None
    result_problem: str | None = None  # why there is no result: "missing" or "unreadable (...)"
    database_problem: str | None = None  # why doit's database could not be read
    recorded: bool = False  # doit holds a row for a real run of the checkpoint task
    changed: tuple[str, ...] = ()  # inputs changed since that run, one line each


@dataclass(frozen=True)
class Judgement:
    own: Status
    reasons: list[str] = field(default_factory=list)
    warning: str | None = None  # for the learner's terminal: a damaged or missing file


def judge(checkpoint: Checkpoint, evidence: Evidence) -> Judgement:
    """The checkpoint's own state from its evidence alone (no files read)."""
    if evidence.missing is not None:
        return Judgement(Status.UNAVAILABLE, [f"{evidence.missing} does not exist"])
    result, path = evidence.result, evidence.result_file
    if result is None:
        rebuild = f"result treated as unknown; run `tito checkpoint test {checkpoint.id}` to rebuild it"
        warning = None
        if evidence.result_problem != "missing":
            warning = f"warning: {path} is {evidence.result_problem}: {rebuild}"
        elif evidence.recorded:
            warning = f"warning: {path} is missing although doit recorded checkpoint {checkpoint.id} as passed: {rebuild}"
        if evidence.recorded:
            return Judgement(Status.STALE, [f"{path} is {evidence.result_problem}"], warning)
        return Judgement(Status.NEVER, [], warning)
    if not result.passed:
        return Judgement(Status.FAILED, [result.note] if result.note else [])
    if evidence.database_problem is not None:
        return Judgement(Status.STALE, [evidence.database_problem])
    if not evidence.recorded:
        return Judgement(Status.STALE, ["this pass is not recorded in doit's database"])
    return Judgement(Status.STALE if evidence.changed else Status.PASSED, list(evidence.changed))


def gather(course: Course, database: doit_db.Database | None, problem: str | None, module: Module) -> Evidence:
    """Read what judging the module's checkpoint needs: its files, its result, doit's rows."""
    checkpoint = module.checkpoint
    result_file = course.relative(course.build.result(checkpoint))
    missing = course.missing_file(module)
    if missing is not None:
        return Evidence(result_file, missing=missing.as_posix())
    result, result_problem = read_result(course, checkpoint)
    row = database.recorded(checkpoint.task, checkpoint.file) if database is not None else None
    judged_on_inputs = row is not None and result is not None and result.passed
    changed = tuple(changed_inputs(course, database, row)) if judged_on_inputs else ()
    return Evidence(result_file, None, result, result_problem, problem, row is not None, changed)


def changed_inputs(course: Course, database: doit_db.Database, row: doit_db.Row) -> list[str]:
    """The checkpoint's inputs changed since doit recorded it: its own file deps, and the lessons
    behind the exported files it uses (a lesson edited but not yet exported is a change too)."""
    changed = [f"{path} changed" for path in row.changed_files(course.root)]
    for path in row.file_deps:
        module = exporting_module(course, path)
        if module is None:
            continue
        export_row = database.recorded(module.export_task, module.source)
        if export_row is None:
            changed.append(f"{module.source.as_posix()} changed (its last export failed or never ran)")
            continue
        changed += [f"{source} changed (not exported yet)" for source in export_row.changed_files(course.root)]
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
        database: doit_db.Database | None = doit_db.read(course)
        problem = None
    except doit_db.CorruptDatabase as error:
        database, problem = None, str(error)
        warnings.append(f"warning: {error}: results treated as unknown; run `tito checkpoint test` to rebuild it")
    stage_of = {m.id: s for s in course.stages for m in s.modules}
    entries = []
    for module in course.modules:
        evidence = gather(course, database, problem, module)
        judgement = judge(module.checkpoint, evidence)
        entries.append(Entry(module.checkpoint, module, stage_of[module.id], own=judgement.own,
                             result=evidence.result, reasons=judgement.reasons))
        warnings += [judgement.warning] if judgement.warning else []
    propagate(entries)
    return Progress(course, entries, warnings)
