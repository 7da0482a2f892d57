"""Every screen tells the same truth, fits the terminal, and ends with something the learner can type.

One Foundation copy is built once (checkpoints 00-02 pass); a comment-only edit to the Tensor lesson
then makes 01 and 02 stale, the scenario where screens used to disagree.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from tito.cli import CLOSED_PIPE

from .conftest import CourseCopy, make_copy

WIDTHS = (60, 80, 120)
SCREENS = {
    "status": ("checkpoint", "status"),
    "detailed": ("checkpoint", "status", "--detailed"),
    "timeline": ("checkpoint", "timeline"),
    "horizontal": ("checkpoint", "timeline", "--horizontal"),
    "unlock": ("checkpoint", "unlock"),
}
WITH_TITO = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # an activated .venv
NEXT_STEP = re.compile(r"(Next|Run): (tito checkpoint test \d\d|tito module complete \w+)|Every checkpoint passed")


def screen(course: CourseCopy, name: str, width: int = 120, env: dict | None = None) -> str:
    result = course.tito(*SCREENS[name], env={"COLUMNS": str(width), "NO_COLOR": "1", **WITH_TITO, **(env or {})})
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> CourseCopy:
    course = make_copy(tmp_path_factory.mktemp("screens") / "course", module_count=3)
    assert course.doit().returncode == 0
    return course


@pytest.fixture(scope="module")
def stale(built, tmp_path_factory) -> CourseCopy:
    """The built copy after a comment-only edit inside an export cell of the Tensor lesson."""
    copy = CourseCopy(tmp_path_factory.mktemp("stale") / "course")
    shutil.copytree(built.root, copy.root, ignore=shutil.ignore_patterns(".lock"))
    lesson = copy.path("modules/02_tensor/tensor.py")
    lesson.write_text(lesson.read_text().replace("#| export\n", "#| export\n# a note to myself\n", 1))
    return copy


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", SCREENS)
def test_each_screen_fits_the_terminal_and_ends_with_a_step(stale, name, width):
    text = screen(stale, name, width)
    lines = text.rstrip("\n").splitlines()
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, f"{len(too_wide)} lines wider than {width}:\n" + "\n".join(too_wide)
    assert NEXT_STEP.search(lines[-1]), f"the last line is not a next step: {lines[-1]!r}"
    if name == "status":
        assert len(lines) <= 50, f"status at {width} columns is {len(lines)} lines (133 when it wrapped capabilities)"


def test_every_screen_agrees_on_a_stale_course(stale):
    data = json.loads(stale.tito("checkpoint", "status", "--json", env=WITH_TITO).stdout)
    states = {c["id"]: c["state"] for c in data["checkpoints"]}
    assert (states["00"], states["01"], states["02"]) == ("passed", "stale", "stale")
    foundation = next(s for s in data["stages"] if s["name"] == "Foundation")
    assert (foundation["passed"], foundation["stale"], foundation["total"]) == (1, 2, 3)
    assert foundation["progress"] == pytest.approx(1 / 3, abs=1e-3), "stale counts as not passed, like the header"
    assert data["next"] == "tito checkpoint test 02"

    counts = "1 of 16 checkpoints passed, 2 stale"
    status, timeline, horizontal, unlock = (screen(stale, n) for n in ("status", "timeline", "horizontal", "unlock"))
    assert counts in status and counts in timeline
    for text in (status, horizontal):
        assert re.search(r"Foundation\s+\S+ 33%\s+1/3 checkpoints passed, 2 stale", text), text
    assert "Foundation · 33% ·" in timeline
    assert "Next to unlock: checkpoint 02 · intelligence" in unlock, "the checkpoint the next step works on"
    assert "checkpoint 00 passed" in unlock and "checkpoint 01 stale: re-checked on the way" in unlock
    for text in (status, timeline, horizontal, unlock):
        assert "tito checkpoint test 02" in text.splitlines()[-1]


def test_without_tito_on_the_path_the_steps_are_make_commands(stale):
    environment = {"COLUMNS": "120", "PATH": os.defpath}
    for name in SCREENS:
        text = stale.tito(*SCREENS[name], env=environment).stdout
        assert text.rstrip().splitlines()[-1].endswith("make complete MODULE=03_activations"), (name, text)


def test_one_unit_for_tests_everywhere(stale):
    data = json.loads(stale.tito("checkpoint", "status", "--json", env=WITH_TITO).stdout)
    total = next(c["tests_total"] for c in data["checkpoints"] if c["id"] == "02")
    assert f"all {total} tests of checkpoints/checkpoint_02_intelligence.py passing" in screen(stale, "unlock")
    assert f"{total}/{total}" in screen(stale, "status"), "status counts the same test cases"


def test_checkpoint_test_with_everything_passed_is_not_an_error(built, tmp_path):
    copy = CourseCopy(tmp_path / "course")
    shutil.copytree(built.root, copy.root, ignore=shutil.ignore_patterns(".lock"))
    result = copy.tito("checkpoint", "test", env={"COLUMNS": "120", **WITH_TITO})
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "checkpoint 03 · components (module 04_layers) is not yet available" in result.stdout


def test_checkpoint_commands_accept_module_names(built, tmp_path):
    copy = CourseCopy(tmp_path / "course")
    shutil.copytree(built.root, copy.root, ignore=shutil.ignore_patterns(".lock"))
    by_module = copy.tito("checkpoint", "test", "tensor", env={"COLUMNS": "120"})
    assert by_module.returncode == 0, by_module.stdout + by_module.stderr
    assert "Checkpoint 01 · foundation passed (module 02_tensor)" in by_module.stdout
    unknown = copy.tito("checkpoint", "run", "autograd")
    assert unknown.returncode == 3 and "Module 09_autograd is not yet available" in unknown.stderr


def test_a_closed_pipe_ends_quietly(built):
    result = built.run("sh", "-c", f"'{sys.executable}' -m tito checkpoint status --json | head -1")
    assert result.stdout == "{\n" and result.stderr == "", result.stderr


@pytest.mark.parametrize("name", sorted(SCREENS))
def test_every_screen_ends_with_141_when_its_reader_is_gone(built, name):
    read, write = os.pipe()
    os.close(read)  # the reader left before the first line: every write fails
    try:
        result = subprocess.run([sys.executable, "-m", "tito", *SCREENS[name]], cwd=built.root, stdout=write,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(built.root)})  # fmt: skip
    finally:
        os.close(write)
    assert result.returncode == CLOSED_PIPE and result.stderr == "", result.stderr


@pytest.mark.parametrize("environment", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONIOENCODING": "ascii"}])
def test_an_ascii_only_terminal_gets_ascii(built, environment):
    for name in SCREENS:
        result = built.run(sys.executable, "-m", "tito", *SCREENS[name], env={"COLUMNS": "80", **environment})
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert result.stdout.isascii() and "checkpoint" in result.stdout


@pytest.mark.parametrize("environment", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_when_asked(built, environment):
    result = built.run(sys.executable, "-m", "tito", "checkpoint", "status", env={"FORCE_COLOR": "1", **environment})
    assert result.returncode == 0 and not re.search(r"\x1b\[[0-9;]*3[0-7]m", result.stdout), result.stdout[:300]


def test_the_timeline_tree_and_horizontal_agree_with_status_at_every_width(stale):
    for width in WIDTHS:
        assert "1 of 16 checkpoints passed, 2 stale" in " ".join(screen(stale, "timeline", width).split())
