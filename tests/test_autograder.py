"""Gradescope bundle and GitHub Classroom workflow (`tito autograder`), on the Foundation stage.

Three submissions of lessons 01-03:
    honest    every lesson done
    partial   the setup lesson done, one Tensor method still a stub, activations all stubs
    broken    a syntax error in the Tensor lesson

The Gradescope bundle is unpacked into a temporary tree standing in for /autograder and its
run_autograder grades each submission (the bundle's own code runs, not this repository's); the
results.json are checked against Gradescope's specification. The Classroom workflow is read back
with PyYAML, checked against Classroom's conventions, and each test's command is run, in order,
in a learner's clone holding a submission.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tito import release
from tito.autograder import COURSE, TEST_LIST, WORKFLOW
from tito.manifest import load

from .conftest import make_copy
from .test_journey import stub_one_block

LESSONS = ("01_setup", "02_tensor", "03_activations")
SUBMISSIONS = ("honest", "partial", "broken")

# Gradescope's results.json specification: the keys it reads, and the values it accepts.
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}  # fmt: skip
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
             "tags", "visibility", "extra_data"}  # fmt: skip
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def lesson_path(folder: Path, module_id: str) -> Path:
    return folder / "modules" / module_id / f"{module_id.split('_', 1)[1]}.py"


def make_submission(course: Path, folder: Path, kind: str) -> Path:
    for module_id in LESSONS:
        text = lesson_path(course, module_id).read_text()
        if kind == "partial" and module_id == "02_tensor":
            text = stub_one_block(text)[0]
        elif kind == "partial" and module_id == "03_activations":
            text = release.stub_lesson(text, "a.py").text
        elif kind == "broken" and module_id == "02_tensor":
            text = text.replace("#| export\n", "#| export\ndef oops(:\n", 1)
        lesson_path(folder, module_id).parent.mkdir(parents=True, exist_ok=True)
        lesson_path(folder, module_id).write_text(text)
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("autograder")
    copy = make_copy(base / "course", module_count=3)
    submissions = {kind: make_submission(copy.root, base / "submissions" / kind, kind) for kind in SUBMISSIONS}
    return copy, submissions, base


def clean_env(**extra: str) -> dict:
    """The environment without this repository on the path: the bundle must bring its own code."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYTORCH_ROOT")}
    return dict(env, PYTHONDONTWRITEBYTECODE="1", **extra)


# --- Gradescope ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(course):
    copy, _, base = course
    out = base / "autograder.zip"
    result = copy.tito("autograder", "gradescope", str(out), timeout=600)  # runs the reference twice
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def graded(course, bundle):
    """Each submission's results.json, from the bundle's run_autograder in its own /autograder tree."""
    _, submissions, base = course
    found = {}
    for kind, submission in submissions.items():
        root = base / f"gradescope-{kind}"
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(root / "source")
        shutil.copytree(submission, root / "submission")
        result = subprocess.run(
            ["bash", str(root / "source" / "run_autograder")], cwd=root, capture_output=True, text=True,
            timeout=400, env=clean_env(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        found[kind] = json.loads((root / "results" / "results.json").read_text())
    return found


def check_specification(results: dict) -> None:
    """results.json as Gradescope's autograder specification describes it."""
    assert set(results) <= TOP_KEYS, set(results) - TOP_KEYS
    assert isinstance(results["output"], str) and results["output"]
    assert results["visibility"] in VISIBILITY and results["stdout_visibility"] in VISIBILITY
    assert isinstance(results["execution_time"], int) and results["execution_time"] > 0
    assert isinstance(results["extra_data"], dict)
    for test in results["tests"]:
        assert set(test) <= TEST_KEYS, set(test) - TEST_KEYS
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITY and test["status"] in ("passed", "failed")
        assert all(isinstance(tag, str) for tag in test["tags"])
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_the_bundle_holds_the_scripts_the_course_and_no_solution(course, bundle):
    copy, _, _ = course
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        lessons = {n: archive.read(n).decode() for n in names if n.startswith(f"{COURSE}/modules/") and n.endswith(".py")}
        checkpoint = archive.read(f"{COURSE}/checkpoints/checkpoint_01_foundation.py")
        setup = archive.read("setup.sh").decode()
        requirements = archive.read("requirements.txt").decode().split()
    assert {"setup.sh", "run_autograder", "requirements.txt", "reference.json", f"{COURSE}/modules/course.toml"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert len(lessons) == len(LESSONS)
    assert all("### BEGIN SOLUTION" not in text and "NotImplementedError" in text for text in lessons.values())
    assert checkpoint == copy.path("checkpoints/checkpoint_01_foundation.py").read_bytes()
    assert "bubblewrap" in setup and "requirements.txt" in setup
    assert {r.split(">")[0].split(";")[0] for r in requirements} >= {"numpy", "doit", "rich", "pytest", "pytest-timeout"}
    with zipfile.ZipFile(bundle) as archive:
        archive.extract("setup.sh", bundle.parent / "syntax")
    assert subprocess.run(["bash", "-n", str(bundle.parent / "syntax" / "setup.sh")]).returncode == 0


def test_results_follow_gradescopes_specification(graded):
    for results in graded.values():
        check_specification(results)
        assert [t["number"] for t in results["tests"]] == ["00", "01", "02"]
        assert all(t["tags"] == ["Foundation"] for t in results["tests"])
        assert results["extra_data"]["peak_memory_mb"] > 0


def test_an_honest_submission_gets_every_point_and_no_next_step(graded):
    honest = graded["honest"]
    assert all(t["score"] == t["max_score"] > 0 and t["status"] == "passed" for t in honest["tests"])
    assert "Capabilities unlocked: 3 of 3" in honest["output"]
    assert "Next step: none" in honest["output"]


def test_a_partial_submission_gets_partial_credit_and_is_told_what_next(graded):
    partial = graded["partial"]
    setup, tensor, activations = partial["tests"]
    assert setup["score"] == setup["max_score"]
    assert 0 < tensor["score"] < tensor["max_score"] and "NotImplementedError" in tensor["output"]
    assert activations["score"] == 0 and activations["output"].startswith("locked")
    assert "Capabilities unlocked: 1 of 3" in partial["output"]
    assert "Next step: checkpoint 01" in partial["output"] and "modules/02_tensor/tensor.py" in partial["output"]


def test_a_broken_submission_names_its_syntax_error(graded):
    broken = graded["broken"]
    assert [t["status"] for t in broken["tests"]] == ["passed", "failed", "failed"]
    assert broken["tests"][1]["output"].startswith("syntax error")
    assert "Problem: modules/02_tensor/tensor.py:" in broken["output"]
    assert broken["score"] == broken["tests"][0]["max_score"]


# --- GitHub Classroom --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classroom(course):
    copy, _, base = course
    edition = base / "release"
    release.build_release(load(copy.root), edition)
    result = copy.tito("autograder", "classroom", "--release", str(edition), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[test]')")
    return edition, yaml.safe_load((edition / WORKFLOW).read_text()), json.loads((edition / TEST_LIST).read_text())


def test_mistakes_are_one_line_and_exit_code_3(course, tmp_path):
    copy, _, _ = course
    no_release = copy.tito("autograder", "classroom", "--release", str(tmp_path / "nowhere"))
    assert no_release.returncode == 3 and "run `make release` first" in no_release.stderr
    unwritable = copy.tito("autograder", "gradescope", "/proc/autograder.zip")
    assert unwritable.returncode == 3 and unwritable.stderr.startswith("tito autograder: ")
    for result in (no_release, unwritable):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def grader_steps(workflow: dict) -> list[dict]:
    return [s for s in workflow["jobs"]["run-autograding-tests"]["steps"] if "autograding-command-grader" in s.get("uses", "")]


def test_the_workflow_follows_classroom_conventions(classroom):
    _, workflow, _ = classroom
    assert "push" in workflow["on"]  # PyYAML reads the quoted "on" key as a string
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    job = workflow["jobs"]["run-autograding-tests"]
    assert job["runs-on"] == "ubuntu-latest" and "github-classroom[bot]" in job["if"]
    assert job["steps"][0]["uses"].startswith("actions/checkout@")
    graders = grader_steps(workflow)
    assert [s["id"] for s in graders] == ["checkpoint-00", "checkpoint-01", "checkpoint-02"]
    for step in graders:
        assert step["uses"] == "classroom-resources/autograding-command-grader@v1"
        assert {"test-name", "command", "timeout", "max-score"} <= set(step["with"])
        assert isinstance(step["with"]["timeout"], int) and 0 < step["with"]["timeout"] <= 360
    reporter = job["steps"][-1]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    assert reporter["with"]["runners"].split(",") == [s["id"] for s in graders]
    assert reporter["env"] == {f"{s['id'].upper()}_RESULTS": f"${{{{steps.{s['id']}.outputs.result}}}}" for s in graders}


def test_points_match_tito_grade_and_the_test_list(classroom, graded):
    _, workflow, tests = classroom
    points = [s["with"]["max-score"] for s in grader_steps(workflow)]
    assert points == [t["max_score"] for t in graded["honest"]["tests"]]
    assert [t["points"] for t in tests["tests"]] == points
    assert [t["run"] for t in tests["tests"]] == [s["with"]["command"] for s in grader_steps(workflow)]


def test_each_command_passes_exactly_where_tito_grade_passes(classroom, course, graded, tmp_path):
    kind = "partial"  # passes checkpoint 00, fails 01 and, because of it, 02
    edition, workflow, _ = classroom
    clone = tmp_path / "clone"
    shutil.copytree(edition, clone)
    shutil.copytree(course[1][kind] / "modules", clone / "modules", dirs_exist_ok=True)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is this interpreter
    passed = []
    for step in grader_steps(workflow):
        result = subprocess.run(["bash", "-c", step["with"]["command"]], cwd=clone, capture_output=True, text=True,
                                timeout=60 * step["with"]["timeout"], env=clean_env(PATH=path))  # fmt: skip
        passed.append(result.returncode == 0)
    assert passed == [t["status"] == "passed" for t in graded[kind]["tests"]] == [True, False, False]
