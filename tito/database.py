"""doit's state database (sqlite3 backend, build/.doit.db): read it, and survive it being corrupt.

doit stores one row per task that last *succeeded*: a JSON object mapping each file dependency to
[mtime, size, md5], plus bookkeeping keys such as "deps:". A failed task's row is removed.
"""
from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

from tito.manifest import Course


class CorruptDatabase(Exception):
    pass


def read_tasks(course: Course) -> dict[str, dict]:
    """task name -> stored data; {} when there is no database yet. Raises CorruptDatabase."""
    path = course.build.db
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("select task_id, task_data from doit").fetchall()
        return {task: json.loads(data) for task, data in rows}
    except (sqlite3.Error, ValueError) as error:
        raise CorruptDatabase(f"{course.relative(path)} is unreadable ({error})") from None


def quarantine_if_corrupt(course: Course) -> Path | None:
    """Move an unreadable database aside so doit can start afresh; return where it went."""
    try:
        read_tasks(course)
        return None
    except CorruptDatabase as error:
        db = course.build.db
        aside = db.with_name(f"{db.name}.corrupt-{int(time.time())}")
        db.rename(aside)
        print(f"{error}; moved it to {course.relative(aside)}. Every task will be checked again.", file=sys.stderr)
        return aside
