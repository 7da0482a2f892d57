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

DB_FILE = Path("build") / ".doit.db"


class CorruptDatabase(Exception):
    pass


def read_tasks(root: Path = Path(".")) -> dict[str, dict]:
    """task name -> stored data; {} when there is no database yet. Raises CorruptDatabase."""
    path = root / DB_FILE
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("select task_id, task_data from doit").fetchall()
        return {task: json.loads(data) for task, data in rows}
    except (sqlite3.Error, ValueError) as error:
        raise CorruptDatabase(f"{DB_FILE} is unreadable ({error})") from None


def quarantine_if_corrupt(root: Path = Path(".")) -> Path | None:
    """Move an unreadable database aside so doit can start afresh; return where it went."""
    try:
        read_tasks(root)
        return None
    except CorruptDatabase as error:
        aside = root / DB_FILE.with_name(f".doit.db.corrupt-{int(time.time())}")
        (root / DB_FILE).rename(aside)
        print(f"{error}; moved it to {aside.relative_to(root)}. Every task will be checked again.", file=sys.stderr)
        return aside
