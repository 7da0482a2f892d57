"""The learner's journey, end to end, on a fresh copy of the student edition.

A learner clones the release: nothing passes yet. For the first modules, one at a time, the test
drops in the instructor's lesson (standing for the learner's finished work) and runs
`tito module complete`: the checkpoint passes, the celebration names its capability, the next one
becomes ready. Editing an early lesson makes the later checkpoints stale and the build re-runs exactly
those. The rest of the course takes the fast path: every remaining lesson at once, one `doit`, and
every checkpoint must pass, so the whole chain is covered. Separately, a half-done module fails
with a report naming the failing test and the stub, and a notebook edit syncs back to its lesson.
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

from tito import release
from tito.manifest import Module, load

from .conftest import CourseCopy, make_copy

END_TO_END = 3  # modules completed one by one with `tito module complete`; the rest take the fast path
WIDE = {"COLUMNS": "250"}  # Rich wraps at 80 columns in a pipe; the assertions look for whole lines


def executed(result: subprocess.CompletedProcess) -> list[str]:
    """Tasks doit ran (`.  name`); up-to-date ones print `-- name`."""
    return re.findall(r"^\.  (\S+)", result.stdout, flags=re.MULTILINE)


def states(learner: CourseCopy) -> dict[str, str]:
    result = learner.tito("checkpoint", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return {c["id"]: c["state"] for c in json.loads(result.stdout)["checkpoints"]}


def first_make(learner: CourseCopy) -> subprocess.CompletedProcess:
    """`make` as a learner types it at an 80-column terminal, with this interpreter's environment
    standing for the `.venv` that `make install` would create (`-o install`: do not rebuild it)."""
    environment = {"COLUMNS": "80", "PATH": os.defpath}  # `tito` is not on a make user's PATH
    return learner.run("make", "-o", "install", f"BIN={Path(sys.executable).parent}", env=environment, timeout=600)


def available(root: Path) -> list[Module]:
    return [m for m in load(root).modules if (root / m.source).is_file() and (root / m.checkpoint.file).is_file()]


def drop_in(course: CourseCopy, learner: CourseCopy, module: Module) -> None:
    """The learner's finished lesson: the instructor's solution file."""
    shutil.copyfile(course.root / module.source, learner.root / module.source)


@pytest.fixture
def course(tmp_path) -> CourseCopy:
    return make_copy(tmp_path / "course")


def student_edition(course: CourseCopy, destination: Path) -> CourseCopy:
    release.build_release(load(course.root), destination)
    return CourseCopy(destination)


@pytest.mark.timeout(1200)
def test_the_learners_journey(course, tmp_path):
    learner = student_edition(course, tmp_path / "learner")
    modules = available(learner.root)
    ids = [m.checkpoint.id for m in modules]
    assert len(modules) >= END_TO_END

    # a fresh clone: the first checkpoint is ready, every other one locked (or not yet in the course)
    fresh = states(learner)
    assert fresh[ids[0]] == "ready"
    assert all(fresh[i] == "locked" for i in ids[1:])
    assert set(fresh.values()) <= {"ready", "locked", "unavailable"}

    # `make` on the untouched release builds (every stub exports), passes nothing, and says so briefly
    first = first_make(learner)
    shown = (first.stdout + first.stderr).splitlines()
    assert first.returncode != 0
    assert len(shown) <= 25, "\n".join(shown)
    assert f"exported {len(modules)} lessons" in first.stdout, first.stdout
    assert "UnmetDependency" not in first.stdout and "TaskFailed" not in first.stdout
    assert f"not run ({ids[1]}–{ids[-1]}): waiting for checkpoint:{ids[0]}" in first.stdout
    assert f"Next: make complete MODULE={modules[0].id}" in first.stdout, "the timeline ends with a typable step"
    assert all(len(line) <= 80 for line in shown), "nothing wider than the terminal"
    # at this stage every benchmark waits, and says for what
    benches = learner.run(sys.executable, "-m", "bench", "architecture", "training", "optim", "inference", "tinygpt")
    assert benches.returncode == 0 and benches.stdout.count("skipped: waits for 01_setup") == 5, benches.stdout
    gpt = learner.run(sys.executable, "-m", "bench.train_tinygpt", "--iters", "30", "--warmup", "3")
    assert gpt.returncode == 1 and f"skipped: waits for 01_setup … {modules[-1].id} to pass" in gpt.stderr
    after_make = states(learner)
    assert "passed" not in after_make.values()
    assert after_make[ids[0]] == "failed" and all(after_make[i] == "locked" for i in ids[1:])

    # the first modules one by one, as the learner finishes each
    for index, module in enumerate(modules[:END_TO_END]):
        drop_in(course, learner, module)
        done = learner.tito("module", "complete", module.id, timeout=300, env=WIDE)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Checkpoint {module.checkpoint.id} · {module.checkpoint.name} passed" in done.stdout
        assert module.checkpoint.capability in done.stdout, "the celebration names the capability"
        now = states(learner)
        assert all(now[i] == "passed" for i in ids[: index + 1])
        if index + 1 < len(ids):
            assert now[ids[index + 1]] == "ready"
            assert f"Next module: {modules[index + 1].id}" in done.stdout
            assert all(now[i] == "locked" for i in ids[index + 2 :])

    # editing an early lesson's exported code makes exactly the checkpoints that use it stale
    tensor = load(learner.root).find_module("02_tensor")
    lesson = learner.path(tensor.source.as_posix())
    text = lesson.read_text()
    lesson.write_text(text.replace("#| export\n", "#| export\n# the learner's own note\n", 1))
    stale = states(learner)
    assert stale["00"] == "passed"
    assert stale["01"] == "stale" and stale["02"] == "stale"
    rebuilt = learner.doit("--continue", timeout=300)
    ran = executed(rebuilt)
    assert "export:02_tensor" in ran and "export:01_setup" not in ran and "export:03_activations" not in ran
    assert {"checkpoint:01", "checkpoint:02"} <= set(ran) and "checkpoint:00" not in ran, rebuilt.stdout
    assert all(states(learner)[i] == "passed" for i in ("00", "01", "02"))

    # the fast path: every remaining lesson at once (even one whose checkpoint is not written yet:
    # later checkpoints may use it); one build; every checkpoint passes
    for module in load(course.root).modules[END_TO_END:]:
        if (course.root / module.source).is_file():
            drop_in(course, learner, module)
    whole = learner.doit("--continue", timeout=1000)
    assert whole.returncode == 0, whole.stdout[-6000:] + whole.stderr[-3000:]
    for module in modules:
        result = json.loads(load(learner.root).build.result(module.checkpoint).read_text())
        assert result["status"] == "passed", f"checkpoint {module.checkpoint.id}: {result['tests']}"
    final = states(learner)
    for module in modules:  # passed, or locked only behind a module this course does not have yet
        blocked = any(final[m.checkpoint.id] == "unavailable" for m in load(learner.root).modules[: module.index])
        assert final[module.checkpoint.id] == ("locked" if blocked else "passed")
    last = [m for m in modules if final[m.checkpoint.id] == "passed"][-1]  # the last one, once the course is whole
    again = learner.tito("module", "complete", last.id, timeout=300, env=WIDE)
    assert again.returncode == 0 and last.checkpoint.capability in again.stdout
    assert executed(learner.doit("--continue", timeout=300)) == [], "everything is up to date"


def stub_one_block(text: str, which: int = -1) -> tuple[str, int, str]:
    """The solution with one block (the last by default) turned into its stub, as the release does.

    Returns the text, the stub's line number and the hint.
    """
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == "### BEGIN SOLUTION"]
    begin = begins[which]
    end = next(i for i in range(begin, len(lines)) if lines[i].strip() == "### END SOLUTION")
    hint_match = re.match(r"^\s*### HINT:\s?(.*?)\s*$", lines[begin - 1])
    hint = hint_match.group(1) if hint_match else release.DEFAULT_HINT
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    stub = f"{indent}raise NotImplementedError({json.dumps(hint, ensure_ascii=False)})"
    return "\n".join(lines[:begin] + [stub] + lines[end + 1 :]), begin + 1, hint


def test_a_half_done_module_names_the_failing_test_and_the_stub(course, tmp_path):
    learner = student_edition(course, tmp_path / "learner")
    setup = load(learner.root).modules[0]
    half_done, stub_line, hint = stub_one_block((course.root / setup.source).read_text())
    learner.path(setup.source.as_posix()).write_text(half_done)

    result = learner.tito("module", "complete", setup.id, timeout=300, env=WIDE)

    assert result.returncode != 0
    record = json.loads(load(learner.root).build.result(setup.checkpoint).read_text())
    failed = [t["name"] for t in record["tests"] if t["outcome"] == "failed"]
    assert failed and record["tests_passed"] > 0, "one stub left: some tests fail, not all"
    assert f"Checkpoint {setup.checkpoint.id} · {setup.checkpoint.name} failed" in result.stdout
    for name in failed:
        assert name in result.stdout, f"the report names the failing test {name}"
    assert f"{setup.source.as_posix()}:{stub_line}" in result.stdout, "the report points at the stub"
    assert "NotImplementedError" in result.stdout and hint in result.stdout
    assert states(learner)[setup.checkpoint.id] == "failed"


def test_a_notebook_edit_syncs_back_to_the_lesson_and_the_graph_notices(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    learner = student_edition(make_copy(tmp_path / "course", module_count=1), tmp_path / "learner")
    setup = load(learner.root).modules[0]
    assert learner.doit(f"export:{setup.id}", f"notebook:{setup.id}", timeout=120).returncode == 0
    notebook_path = learner.path(f"build/notebooks/{setup.id}.ipynb")
    notebook = nbformat.read(notebook_path, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "def set_seed" in c.source)
    cell.source = cell.source.replace("    global _generator\n", "    global _generator\n    # written in Jupyter\n")
    nbformat.write(notebook, notebook_path)

    synced = learner.run(sys.executable, "-m", "jupytext", "--sync", f"build/notebooks/{setup.id}.ipynb")

    assert synced.returncode == 0, synced.stdout + synced.stderr
    lesson = learner.path(setup.source.as_posix()).read_text()
    assert "    global _generator\n    # written in Jupyter\n" in lesson, "the notebook edit reached the lesson"
    assert not learner.path(f"build/notebooks/{setup.id}.py").exists(), "no stray paired copy next to the notebook"
    assert f"export:{setup.id}" in executed(learner.doit(f"export:{setup.id}", timeout=120)), "the graph notices"
