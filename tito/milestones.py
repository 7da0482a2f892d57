"""Milestones: historical results re-run on the learner's own framework (milestones/NN_year_name.py).

This module owns the result a milestone writes (build/milestones/NN.json): the scripts write it
through `MilestoneResult.write`, tito reads it back through `read_result`. It imports only the
standard library, so reading commands stay fast.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tito.export import write_atomic

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
