"""Hints in levels: the first points at the idea, the next ones say more, one level at a time.

Level 1 is the `### HINT:` line (or lines) right above an exercise's `### BEGIN SOLUTION`; the
student edition keeps it there and puts it in the stub's `NotImplementedError`. Further levels live
at the end of the lesson, in its "More hints" markdown cell, one line each:

    # - `ReLU.forward` 2: what level 2 says

so a learner reading the exercise sees only the first hint; `tito hint NAME --level N` shows the
others on request (they are not secret: the cell is plain text in both editions).
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from tito.manifest import Course

FIRST = re.compile(r"^\s*### HINT:\s?(.*?)\s*$")
FURTHER = re.compile(r"^# - `([\w.]+)` (\d+): (.*\S)\s*$")


@dataclass(frozen=True)
class Exercise:
    name: str  # the enclosing function, e.g. "ReLU.forward"
    lesson: Path
    line: int  # the first hint's line
    levels: tuple[str, ...]  # level 1 first

    @property
    def names(self) -> set[str]:
        """What a learner may type: `ReLU.forward`, the class `ReLU` or the method `forward` (when unique)."""
        parts = self.name.lower().split(".")
        return {self.name.lower(), parts[0], parts[-1]}


def _functions(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function, outer ones first."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    found.append((child.lineno, child.end_lineno, name))
                visit(child, name + ".")

    visit(tree, "")
    return found


def exercises(lesson: Path, text: str) -> list[Exercise]:
    """Each exercise of a lesson (instructor's or student's edition) with its hint levels."""
    functions = _functions(ast.parse(text))
    lines = text.split("\n")
    further: dict[str, dict[int, str]] = {}
    for line in lines:
        match = FURTHER.match(line)
        if match:
            further.setdefault(match.group(1), {})[int(match.group(2))] = match.group(3)
    found = []
    for number, line in enumerate(lines, start=1):
        if not FIRST.match(line) or (number > 1 and FIRST.match(lines[number - 2])):
            continue  # only the first line of a group of `### HINT:` lines starts an exercise
        group = []
        for following in lines[number - 1 :]:
            if not FIRST.match(following):
                break
            group.append(FIRST.match(following).group(1))
        inside = [f for f in functions if f[0] <= number <= f[1]]
        name = inside[-1][2] if inside else "<module>"
        more = further.get(name, {})
        levels = (" ".join(group), *(more[level] for level in sorted(more)))
        found.append(Exercise(name, lesson, number, levels))
    return found


def all_exercises(course: Course) -> list[Exercise]:
    found = []
    for module in course.modules:
        path = course.root / module.source
        if path.is_file():
            found += exercises(module.source, path.read_text(encoding="utf-8"))
    return found


class NoSuchExercise(LookupError):
    def __init__(self, name: str, matches: list[Exercise], suggestions: list[str]):
        self.name, self.matches, self.suggestions = name, matches, suggestions
        if matches:
            listed = ", ".join(f"{e.name} ({e.lesson.as_posix()})" for e in matches)
            message = f"'{name}' names several exercises: {listed}. Type the full name."
        else:
            hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
            message = f"No exercise named '{name}'.{hint}"
        super().__init__(message)


def find(course: Course, name: str) -> Exercise:
    """The exercise a learner means by `name` (case-insensitive), or NoSuchExercise."""
    every = all_exercises(course)
    key = name.strip().lower()
    exact = [e for e in every if e.name.lower() == key]
    matches = exact or [e for e in every if key in e.names]
    if len(matches) == 1:
        return matches[0]
    known = sorted({e.name for e in every})
    raise NoSuchExercise(name, matches, difflib.get_close_matches(name, known, n=3, cutoff=0.5))
