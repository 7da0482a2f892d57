"""Milestones: historical results re-run on the learner's own framework (milestones/NN_year_name.py).

This module owns the result a milestone writes (build/milestones/NN.json): the scripts write it
through `MilestoneResult.write`, tito reads it back through `read_result`. It also says what a
milestone needs (the checkpoints of the modules its script imports, derived like a checkpoint's
dependencies), whether it is locked, ready or achieved, and runs it. Standard library only, so
reading commands stay fast.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tito.export import write_atomic
from tito.manifest import Checkpoint, Course, Milestone
from tito.runner import child_env
from tito.state import Entry, Progress

MODES = ("quick", "full")


@dataclass(frozen=True)
class Check:
    """One figure a milestone must reach: what was measured, the goal in words, and whether it was met."""

    name: str  # "test accuracy"
    value: float
    shown: str  # the value as the learner reads it: "97.8 %"
    goal: str  # "≥ 97.5 %"
    met: bool


@dataclass
class MilestoneResult:
    number: str  # "03"
    mode: str  # one of MODES
    checks: list[Check]
    figures: dict = field(default_factory=dict)  # every other measured number, by name
    seconds: float = 0.0  # wall time of the whole run
    picture: str | None = None  # the PNG, when matplotlib was installed
    finished: str = ""  # ISO time, UTC

    @property
    def achieved(self) -> bool:
        return bool(self.checks) and all(check.met for check in self.checks)

    @property
    def headline(self) -> str:
        """The first check, as one line: "97.8 % test accuracy"."""
        first = self.checks[0]
        return f"{first.shown} {first.name}"

    def as_json(self) -> dict:
        return {**asdict(self), "achieved": self.achieved, "headline": self.headline}

    def write(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n")


def read_result(path: Path) -> MilestoneResult | None:
    """The result stored at `path`; None when it is missing or damaged (a damaged file is no result)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        checks = [Check(**check) for check in raw["checks"]]
        result = MilestoneResult(
            str(raw["number"]), raw["mode"], checks, dict(raw["figures"]), float(raw["seconds"]),
            raw["picture"], str(raw["finished"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.mode in MODES and checks else None


# --------------------------------------------------------------------------- in the course's graph

LOCKED, READY, ACHIEVED = "locked", "ready", "achieved"


@dataclass
class MilestoneState:
    """A milestone as the learner sees it: what it needs, whether that is there, and its last result."""

    milestone: Milestone
    needs: list[Checkpoint]  # the checkpoints of every module its script imports, in course order
    missing: list[Entry]  # those not passed yet
    result: MilestoneResult | None

    @property
    def unlocked_by(self) -> Checkpoint | None:
        return self.needs[-1] if self.needs else None

    @property
    def state(self) -> str:
        if self.missing:
            return LOCKED
        return ACHIEVED if self.result and self.result.achieved and self.result.mode == "full" else READY

    @property
    def label(self) -> str:
        """"achieved: 98.6 % test accuracy", "ready (last quick run reached: ...)", "locked until checkpoint 10 passes"."""
        if self.state == LOCKED:
            return f"locked until checkpoint {self.unlocked_by.id} passes"
        if self.state == ACHIEVED:
            return f"achieved: {self.result.headline}"
        if self.result:
            verdict = "reached" if self.result.achieved else "missed"
            return f"ready (last {self.result.mode} run {verdict}: {self.result.headline})"
        return "ready"


def needed_checkpoints(course: Course, file_deps: list[str]) -> list[Checkpoint]:
    """The checkpoints of the modules whose exported files are among `file_deps`, in course order."""
    used = set(file_deps)
    return [m.checkpoint for m in course.modules if any(p.as_posix() in used for p in m.exported_files)]


def states(progress: Progress) -> list[MilestoneState]:
    """Every milestone of the course with what it needs, judged against the checkpoints' states."""
    from tito.deps import all_milestone_file_deps

    course = progress.course
    file_deps = all_milestone_file_deps(course)
    found = []
    for milestone in course.milestones:
        needs = needed_checkpoints(course, file_deps.get(milestone.id, []))
        missing = [progress.entry(c) for c in needs if progress.entry(c).state != "passed"]
        result = read_result(course.build.milestone_result(milestone.number))
        found.append(MilestoneState(milestone, needs, missing, result))
    return found


def command(milestone: Milestone, quick: bool = False) -> list[str]:
    """The milestone's script in this Python, full mode unless quick."""
    return [sys.executable, milestone.script.as_posix(), *(["--quick"] if quick else [])]


def run(milestone: Milestone, course: Course, quick: bool = False) -> int:
    """Run the script from the course root, its output straight to the terminal; its exit code."""
    env = child_env(course.root, course.build.milestone_result(milestone.number))
    return subprocess.run(command(milestone, quick), cwd=course.root, env=env).returncode


def doit_action(milestone: Milestone, course: Course) -> bool:
    """The doit action of milestone:NN_name: the full run; the task fails when the goal is missed."""
    return run(milestone, course) == 0
