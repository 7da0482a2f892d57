"""Shared fixtures: a temporary copy of the course to run doit and tito on, as a learner would."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tito.manifest import load

ROOT = Path(__file__).resolve().parents[1]
TOOLING = ["dodo.py", "pyproject.toml", "Makefile", "tito", "tinytorch", "bench", "milestones"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
MAKE_RECURSION = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")  # what make passes down to the makes it starts


@dataclass
class CourseCopy:
    """A copy of the course in a temporary folder, with helpers to run commands inside it."""

    root: Path

    def run(self, *args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = dict(os.environ, PYTHONPATH=str(self.root), PYTHONDONTWRITEBYTECODE="1", **(env or {}))
        # a learner's shell: no course of ours, and no enclosing make (`make test` runs these tests; a
        # make started inside it would print "Entering directory" lines no learner sees)
        for variable in ("TINYTORCH_ROOT", *MAKE_RECURSION):
            environment.pop(variable, None)
        return subprocess.run(
            args, cwd=self.root, env=environment, capture_output=True, text=True, timeout=timeout
        )

    def doit(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "doit", *args, **kwargs)

    def tito(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "tito", *args, **kwargs)

    def path(self, relative: str) -> Path:
        return self.root / relative

    def edit(self, relative: str, old: str, new: str) -> None:
        """Replace text in a file (exactly once), as a learner's edit."""
        path = self.path(relative)
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {relative}"
        path.write_text(text.replace(old, new))


def _copy(relative: str | Path, destination: Path) -> None:
    """A file or folder of the course, when it exists, to the same place under `destination`."""
    source = ROOT / relative
    if source.is_dir():
        shutil.copytree(source, destination / relative, ignore=IGNORE)
    elif source.is_file():
        shutil.copy2(source, destination / relative)


def make_copy(destination: Path, module_count: int | None = None) -> CourseCopy:
    """Copy the tooling and the first `module_count` lessons with their checkpoints (all by default).

    Exported files and build/ are not copied: the copy starts like a fresh clone.
    """
    destination.mkdir(parents=True)
    for name in TOOLING:
        _copy(name, destination)
    for exported in (destination / "tinytorch" / "core").glob("*.py"):
        if exported.name != "__init__.py":
            exported.unlink()
    (destination / "modules").mkdir()
    shutil.copy2(ROOT / "modules" / "course.toml", destination / "modules" / "course.toml")
    (destination / "checkpoints").mkdir()
    for module in load(ROOT).modules[:module_count]:  # the manifest pairs each lesson with its checkpoint
        _copy(module.source.parent, destination)
        _copy(module.checkpoint.file, destination)
    for extra in (ROOT / "checkpoints").glob("conftest.py"):
        shutil.copy2(extra, destination / "checkpoints" / extra.name)
    return CourseCopy(destination)


@pytest.fixture
def foundation(tmp_path) -> CourseCopy:
    """A fresh copy holding the Foundation stage (modules 01-03, checkpoints 00-02)."""
    return make_copy(tmp_path / "course", module_count=3)


@pytest.fixture
def student_foundation(tmp_path) -> CourseCopy:
    """The Foundation stage of the student edition, untouched: every solution a stub."""
    from tito import release

    course = make_copy(tmp_path / "course", module_count=3)
    release.build_release(load(course.root), tmp_path / "learner")
    return CourseCopy(tmp_path / "learner")
