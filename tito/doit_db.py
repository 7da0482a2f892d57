"""doit's state database, behind one module: all tito knows about how doit stores its state.

doit keeps build/.doit.db (sqlite3 backend): a table `doit(task_id, task_data)` with one row per task
that last *succeeded*, a JSON object mapping each file dependency to [mtime, size, md5] plus
bookkeeping keys such as "deps:" (the task's file_dep list). A failed task's row is removed.
Whether a file changed is doit's MD5Checker rule: same mtime -> unchanged; else a different size ->
changed; else compare MD5. This module reads rows and applies that rule, for doit versions pinned in
pyproject.toml; tests/test_doit_db.py checks its answers against doit's own `doit.dependency` on
real files, so a doit upgrade that changes either fails a test instead of misleading a learner.
Readers take no lock (tito.lock is for writers).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tito.manifest import Course

DEPS = "deps:"  # the row key listing the task's file dependencies


class CorruptDatabase(Exception):
    pass


@dataclass(frozen=True)
class Row:
    """doit's record of a task's last successful run."""

    task: str
    data: dict

    @property
    def file_deps(self) -> list[str]:
        return list(self.data.get(DEPS, []))

    def changed_files(self, root: Path) -> list[str]:
        """The file dependencies doit would call changed (relative paths, in the row's order)."""
        return [path for path in self.file_deps if file_changed(root / path, self.data.get(path))]


@dataclass(frozen=True)
class Database:
    rows: dict[str, Row]

    def recorded(self, task: str, path: Path) -> Row | None:
        """doit's row for a real run of `task`, whose file dependencies include `path`.

        A module that was a placeholder (no lesson yet) left a row with no dependencies; it proves
        nothing about the real task, and doit itself re-runs the task because its file_dep changed.
        """
        row = self.rows.get(task)
        return row if row is not None and path.as_posix() in row.file_deps else None


def read(course: Course) -> Database:
    """The database as doit left it; empty when there is none yet. Raises CorruptDatabase."""
    path = course.build.db
    if not path.exists():
        return Database({})
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = conn.execute("select task_id, task_data from doit").fetchall()
        return Database({task: Row(task, json.loads(data)) for task, data in found})
    except (sqlite3.Error, ValueError) as error:
        raise CorruptDatabase(f"{course.relative(path)} is unreadable ({error})") from None


def file_changed(path: Path, stored) -> bool:
    """doit's MD5Checker on one file and its stored [mtime, size, md5]; a missing file changed."""
    try:
        stat = os.stat(path)
        mtime, size, md5 = stored
    except (OSError, TypeError, ValueError):
        return True
    if stat.st_mtime == mtime:
        return False
    if stat.st_size != size:
        return True
    return hashlib.md5(path.read_bytes()).hexdigest() != md5


def quarantine_if_corrupt(course: Course) -> Path | None:
    """Move an unreadable database aside so doit can start afresh; return where it went."""
    try:
        read(course)
        return None
    except CorruptDatabase as error:
        db = course.build.db
        aside = db.with_name(f"{db.name}.corrupt-{int(time.time())}")
        db.rename(aside)
        print(f"{error}; moved it to {course.relative(aside)}. Every task will be checked again.", file=sys.stderr)
        return aside


def stand_in_if_corrupt(course: Course) -> Path | None:
    """For commands that only read (`doit list --status`): an unreadable database is reported and
    left where it is (moving it needs the build lock); doit gets an empty stand-in, so every task
    truthfully shows as not known to be up to date. Returns the stand-in's path, or None."""
    try:
        read(course)
        return None
    except CorruptDatabase as error:
        print(f"{error}: every task is shown as not up to date; the next build moves it aside.", file=sys.stderr)
    folder = Path(tempfile.mkdtemp(prefix="tinytorch-doit-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder / "stand-in.db"
