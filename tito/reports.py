"""The files a class run leaves: the JSON report and Gradescope's results.json, one per learner.

Written by the grader alone, once every learner is graded, each file atomically (a temporary file
renamed into place), so a report is either the previous one or the complete new one. The Rich table
lives in tito.views.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tito.export import write_atomic
from tito.manifest import Course
from tito.results import Status
from tito.scoring import Grade


class Unwritable(ValueError):
    """An output path the grader could not write to; checked before any grading starts."""


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise Unwritable(f"cannot write to {folder}: {error.strerror or error}") from None


def graded_ids(grades: list[Grade], course: Course) -> list[str]:
    return [c.id for c in course.checkpoints if any(c.id in g.cells for g in grades)]


def report(grades: list[Grade], course: Course, limits: dict) -> dict:
    return {
        "checkpoints": graded_ids(grades, course),
        "limits": limits,
        "learners": [
            {
                "learner": g.learner,
                "score": g.score,
                "max_score": g.max_score,
                "checkpoints_passed": sum(c.status == Status.PASSED for c in g.cells.values()),
                "duration": g.duration,
                "timed_out": g.timed_out,
                "problems": g.problems,
                "broken": g.broken,
                "checkpoints": {cid: {**asdict(cell), "points": cell.points} for cid, cell in g.cells.items()},
                "log_tail": g.log_tail,
            }
            for g in grades
        ],
    }


def gradescope(grade: Grade, course: Course) -> dict:
    """Gradescope's results.json: one test per checkpoint, worth its number of test functions."""
    tests = []
    for checkpoint in course.checkpoints:
        cell = grade.cells.get(checkpoint.id)
        if cell is None:
            continue
        lines = [f"{cell.status}: {cell.passed}/{cell.total} test cases verified", *([cell.note] if cell.note else [])]
        lines += [f"✗ {t['name']}: {t['message']}" for t in cell.failed_tests]
        tests.append({
            "name": f"Checkpoint {checkpoint.id} · {checkpoint.name}: {checkpoint.capability}",
            "score": cell.points,
            "max_score": cell.max_points,
            "status": "passed" if cell.status == Status.PASSED else "failed",
            "output": "\n".join(lines),
        })  # fmt: skip
    summary = "\n".join(grade.problems) or "All lessons were found and compiled."
    if grade.timed_out:
        summary += f"\nThe build was stopped after {grade.duration:.0f} s (time limit)."
    return {"score": grade.score, "output": summary, "tests": tests, "visibility": "visible"}


def write(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_all(grades: list[Grade], course: Course, limits: dict, json_path: Path, gradescope_dir: Path | None) -> dict:
    """Write the JSON report (and the Gradescope files); the report, for the dashboard."""
    data = report(grades, course, limits)
    write(json_path, data)
    if gradescope_dir is not None:
        for g in grades:
            write(gradescope_dir / g.learner / "results.json", gradescope(g, course))
    return data
