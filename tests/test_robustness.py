"""Damaged local files: each gets a message naming the file (and line or byte), and the rest of the
graph keeps working. No traceback in any of them."""
from __future__ import annotations

import codecs
import os
import stat
import subprocess
from pathlib import Path

import pytest

from .conftest import CourseCopy, make_copy

TENSOR = "modules/02_tensor/tensor.py"


def no_traceback(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.fixture
def two(tmp_path) -> CourseCopy:
    """Modules 01 and 02, not built yet."""
    return make_copy(tmp_path / "course", module_count=2)


def test_a_byte_that_is_not_utf8_names_its_line_and_the_rest_still_builds(two):
    lesson = two.path(TENSOR)
    data = lesson.read_bytes()
    line = data[: data.index(b"#| export")].count(b"\n") + 1
    lesson.write_bytes(data.replace(b"#| export", b"#| export\n# caf\xe9", 1))  # Latin-1, in a comment

    listed = no_traceback(two.doit("list"))
    assert listed.returncode == 0 and "export" in listed.stdout

    built = no_traceback(two.doit("--continue", env={"TINYTORCH_REPORT": "quiet", "COLUMNS": "200"}))
    assert built.returncode != 0
    assert f"{TENSOR}:{line + 1}: byte 0xe9" in built.stdout and "not UTF-8" in built.stdout, built.stdout
    assert "✓ module 01_setup · checkpoint 00 environment" in built.stdout, "the rest of the graph still runs"
    complete = no_traceback(two.tito("module", "complete", "tensor", env={"COLUMNS": "200"}))
    assert complete.returncode == 1 and f"{TENSOR}:{line + 1}: byte 0xe9" in complete.stdout, complete.stdout


def test_a_byte_order_mark_is_not_a_syntax_error(two):
    assert two.doit("export:02_tensor").returncode == 0
    plain = two.path("tinytorch/core/tensor.py").read_bytes()
    lesson = two.path(TENSOR)
    lesson.write_bytes(codecs.BOM_UTF8 + lesson.read_bytes())

    again = no_traceback(two.doit("export:02_tensor"))

    assert again.returncode == 0, again.stdout
    assert two.path("tinytorch/core/tensor.py").read_bytes() == plain, "the same export, mark or not"


def test_a_hand_edited_export_is_regenerated_from_the_lesson(two):
    assert two.doit("checkpoint:00").returncode == 0
    exported = two.path("tinytorch/core/setup.py")
    original = exported.read_text()
    exported.write_text(original.replace("def set_seed(", "def set_seed_broken(", 1))

    rebuilt = no_traceback(two.doit("checkpoint:00"))

    assert rebuilt.returncode == 0, rebuilt.stdout
    assert ".  export:01_setup" in rebuilt.stdout
    assert exported.read_text() == original
    assert "-- checkpoint:00" in rebuilt.stdout, "the restored file is what the checkpoint passed with"
    assert ".  export:01_setup" not in two.doit("checkpoint:00").stdout, "once restored, it is up to date"


@pytest.mark.parametrize("content", ["[1, 2]", '{"modules/01_setup/setup.py": 3}', "not json"])
def test_an_import_cache_of_the_wrong_shape_is_rebuilt(two, content):
    cache = two.path("build/.imports.json")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)

    listed = no_traceback(two.doit("list"))

    assert listed.returncode == 0 and "warning: build/.imports.json is" in listed.stderr, listed.stderr
    assert no_traceback(two.doit("export")).returncode == 0
    assert "build/.imports.json" not in two.doit("list").stderr, "rebuilt: no warning the second time"


def test_doit_list_status_on_a_corrupt_database_says_so(two):
    assert two.doit("export").returncode == 0
    database = two.path("build/.doit.db")
    database.write_bytes(b"this is not an sqlite database" * 100)

    listed = no_traceback(two.doit("list", "--status", "--all"))

    assert listed.returncode == 0
    assert "build/.doit.db is unreadable" in listed.stderr and "not up to date" in listed.stderr
    assert "R export:01_setup" in listed.stdout, "every task shown as to be run"
    assert database.read_bytes().startswith(b"this is not"), "a reading command leaves it in place"


def fake_venv(root: Path) -> Path:
    """A .venv whose `python` only records how it was called (no network, no real install)."""
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> "{root}/calls.log"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return root / ".venv"


def test_make_install_repairs_a_venv_copied_from_another_folder(two):
    venv = fake_venv(two.root)
    (venv / ".installed").write_text("/somewhere/else/tinytorch\n")
    os.utime(venv / ".installed")  # newer than pyproject.toml: only the folder is wrong

    result = two.run("make", "install")

    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv was made for /somewhere/else/tinytorch: reinstalling TinyTorch" in result.stdout
    calls = two.path("calls.log").read_text()
    assert "-m pip install --quiet --force-reinstall --no-deps -e ." in calls
    assert (venv / ".installed").read_text().strip() == str(two.root)
    again = two.run("make", "install")
    assert again.stdout == "make: Nothing to be done for 'install'.\n", again.stdout
