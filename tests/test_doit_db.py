"""tito.doit_db against doit itself: doit writes its database and judges the files with its own
checker (doit.dependency), and tito must agree, file by file. A doit release that changes how it
stores or checks dependencies fails here rather than misleading a learner's `tito checkpoint status`."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from doit.dependency import Dependency, MD5Checker, SqliteDB
from doit.task import Task

from tito import doit_db
from tito.manifest import load

from .conftest import ROOT

FILES = {  # name -> what happens to it after doit records the task
    "unchanged.py": None,
    "touched.py": "touch",  # new mtime, same bytes: doit compares the MD5 and calls it unchanged
    "same_size.py": "same size",  # new bytes of the same length
    "grown.py": "grown",
    "deleted.py": "delete",
}


def _change(path, how: str) -> None:
    stat = path.stat()
    if how == "delete":
        path.unlink()
        return
    if how == "same size":
        path.write_text(path.read_text().replace("1", "2"))
    elif how == "grown":
        path.write_text(path.read_text() + "y = 3\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


@pytest.fixture
def course(tmp_path, monkeypatch):
    course = load(ROOT).at(tmp_path)
    course.build.dir.mkdir()
    monkeypatch.chdir(tmp_path)  # doit stores file_dep paths as given, relative to where it runs
    return course


def _doit(course) -> Dependency:
    return Dependency(SqliteDB, str(course.build.db), checker_cls=MD5Checker)


def test_changed_files_agree_with_doits_own_checker(course):
    for name in FILES:
        (course.root / name).write_text("x = 1\n")
    task = Task("checkpoint:99", actions=None, file_dep=list(FILES))
    recorder = _doit(course)
    recorder.save_success(task)
    recorder.close()
    for name, how in FILES.items():
        if how:
            _change(course.root / name, how)

    row = doit_db.read(course).recorded("checkpoint:99", Path("unchanged.py"))
    ours = set(row.changed_files(course.root))
    status = _doit(course).get_status(task, {task.name: task}, get_log=True)
    theirs = set(status.reasons["changed_file_dep"]) | set(status.reasons["missing_file_dep"])
    assert ours == theirs == {"same_size.py", "grown.py", "deleted.py"}
    assert sorted(row.file_deps) == sorted(FILES)


def test_a_placeholder_row_proves_nothing_and_an_absent_database_is_empty(course):
    assert doit_db.read(course).rows == {}
    recorder = _doit(course)
    recorder.save_success(Task("checkpoint:98", actions=None))  # a task with no file_dep
    recorder.close()
    database = doit_db.read(course)
    assert "checkpoint:98" in database.rows
    assert database.recorded("checkpoint:98", Path("checkpoints/checkpoint_98_x.py")) is None


def test_a_corrupt_database_is_reported_then_moved_aside(course, capsys):
    course.build.db.write_bytes(b"not sqlite" * 100)
    with pytest.raises(doit_db.CorruptDatabase, match="build/.doit.db is unreadable"):
        doit_db.read(course)
    aside = doit_db.quarantine_if_corrupt(course)
    assert aside is not None and aside.exists() and not course.build.db.exists()
    assert "Every task will be checked again" in capsys.readouterr().err
    assert doit_db.quarantine_if_corrupt(course) is None  # nothing left to move


def test_a_database_without_doits_table_is_corrupt(course):
    sqlite3.connect(course.build.db).execute("create table other (x)").connection.commit()
    with pytest.raises(doit_db.CorruptDatabase):
        doit_db.read(course)
