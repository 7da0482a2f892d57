"""Grading a class (`tito.grade`): every submission graded in isolation, none able to stop the run.

One grading run over six learners of the Foundation stage (checkpoints 00-02), through the command
line, with short limits:

    good      a repository with every lesson done
    partial   just the lesson folders: setup done, one Tensor method still a stub, activations all
              stubs, plus a doctored checkpoint of its own that must be ignored
    broken    a syntax error in the Tensor lesson
    hanging   an infinite loop when the setup module is imported
    greedy    asks for 16 GiB when imported (the memory limit must stop it)
    missing   an empty folder
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tito import release

from .conftest import make_copy
from .test_journey import stub_one_block

TIMEOUT = 45  # seconds per learner: the hanging one costs this much
LESSONS = ("01_setup", "02_tensor", "03_activations")
IMPORT_LINE = "#| export\nimport os\n"  # the first export cell of the setup lesson


def lesson_files(course: Path, module_id: str) -> Path:
    return course / "modules" / module_id


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_submissions(course: Path, folder: Path) -> None:
    source = {m: (lesson_files(course, m) / f"{m.split('_', 1)[1]}.py").read_text() for m in LESSONS}

    def lesson(learner: str, module_id: str, text: str, repository: bool = True) -> None:
        base = folder / learner / "modules" if repository else folder / learner
        write(base / module_id / f"{module_id.split('_', 1)[1]}.py", text)

    for module_id, text in source.items():
        lesson("good", module_id, text)
        broken = text.replace("#| export\n", "#| export\ndef oops(:\n", 1)
        lesson("broken", module_id, broken if module_id == "02_tensor" else text)
        hanging = text.replace(IMPORT_LINE, IMPORT_LINE + "while True:\n    pass\n", 1)
        lesson("hanging", module_id, hanging if module_id == "01_setup" else text)
        hog = text.replace(IMPORT_LINE, "#| export\nimport numpy\n_HOG = numpy.empty(2**31)  # 16 GiB\nimport os\n", 1)
        lesson("greedy", module_id, hog if module_id == "01_setup" else text)
    lesson("partial", "01_setup", source["01_setup"], repository=False)
    lesson("partial", "02_tensor", stub_one_block(source["02_tensor"])[0], repository=False)
    lesson("partial", "03_activations", release.stub_lesson(source["03_activations"], "a.py").text, repository=False)
    doctored = "def test_everything_passes():\n    assert True\n"
    write(folder / "partial" / "checkpoints" / "checkpoint_01_foundation.py", doctored)
    write(folder / "good" / "tinytorch" / "core" / "tensor.py", "raise SystemExit('a stale export must be ignored')\n")
    (folder / "missing").mkdir()
    assert "while True" in (folder / "hanging/modules/01_setup/setup.py").read_text()
    assert "_HOG" in (folder / "greedy/modules/01_setup/setup.py").read_text()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    course = make_copy(base / "course", module_count=3)
    make_submissions(course.root, base / "submissions")
    result = course.run(
        sys.executable, "-m", "tito.grade", str(base / "submissions"), "--jobs", "3",
        "--timeout", str(TIMEOUT), "--test-timeout", "20", "--memory-mb", "3072",
        "--json", "build/grade/report.json", "--gradescope", "build/grade/gradescope",
        timeout=TIMEOUT * 4, env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(course.path("build/grade/report.json").read_text())
    return course, result, {learner["learner"]: learner for learner in report["learners"]}, report


def statuses(learner: dict) -> dict[str, str]:
    return {cid: cell["status"] for cid, cell in learner["checkpoints"].items()}


def test_every_learner_gets_a_row(graded):
    _, result, learners, report = graded
    assert sorted(learners) == ["broken", "good", "greedy", "hanging", "missing", "partial"]
    assert report["checkpoints"] == ["00", "01", "02"]
    for name in learners:
        assert name in result.stdout
    assert "TinyTorch grades" in result.stdout and "✅ 6/6" in result.stdout


def test_a_good_submission_passes_everything(graded):
    good = graded[2]["good"]
    assert statuses(good) == {"00": "passed", "01": "passed", "02": "passed"}
    assert good["score"] == good["max_score"] > 0 and good["problems"] == []


def test_a_partial_submission_gets_partial_credit_and_its_own_checkpoints_are_ignored(graded):
    partial = graded[2]["partial"]
    assert statuses(partial) == {"00": "passed", "01": "failed", "02": "locked"}
    cell = partial["checkpoints"]["01"]
    assert 0 < cell["passed"] < cell["total"], "one stub left: some tests pass, some fail"
    assert cell["failed_tests"] and all("NotImplementedError" in t["message"] for t in cell["failed_tests"])
    assert 0 < partial["score"] < partial["max_score"]


def test_a_broken_submission_names_the_syntax_error(graded):
    broken = graded[2]["broken"]
    assert statuses(broken) == {"00": "passed", "01": "syntax error", "02": "locked"}
    assert broken["checkpoints"]["01"]["note"].startswith("modules/02_tensor/tensor.py:")
    assert any("syntax error" in p for p in broken["problems"])


def test_a_hanging_submission_is_stopped_at_the_timeout(graded):
    hanging = graded[2]["hanging"]
    assert hanging["timed_out"] is True
    assert statuses(hanging) == {"00": "timeout", "01": "locked", "02": "locked"}
    assert TIMEOUT <= hanging["duration"] < TIMEOUT + 20
    assert "timeout" in hanging["checkpoints"]["00"]["note"] or "stopped" in hanging["checkpoints"]["00"]["note"]


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to find leftover processes")
def test_no_process_outlives_the_grading(graded):
    leftovers = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if "tinytorch-grade-" in os.readlink(cwd):
                leftovers.append(cwd.parent.name)
        except OSError:
            continue
    assert leftovers == [], f"processes still running in a grading folder: {leftovers}"


def test_the_memory_limit_stops_a_greedy_submission(graded):
    greedy = graded[2]["greedy"]
    assert statuses(greedy)["00"] == "failed" and greedy["score"] == 0
    assert "MemoryError" in json.dumps(greedy["checkpoints"]["00"])


def test_an_empty_submission_is_all_missing(graded):
    missing = graded[2]["missing"]
    assert set(statuses(missing).values()) == {"missing"}
    assert missing["problems"] == ["lessons missing: 01_setup, 02_tensor, 03_activations"]
    assert missing["score"] == 0


def test_gradescope_results_per_learner(graded):
    course, _, learners, _ = graded
    for name, learner in learners.items():
        results = json.loads(course.path(f"build/grade/gradescope/{name}/results.json").read_text())
        assert [t["name"].split(":")[0] for t in results["tests"]] == [
            "Checkpoint 00 · environment", "Checkpoint 01 · foundation", "Checkpoint 02 · intelligence"
        ]  # fmt: skip
        assert all({"name", "score", "max_score", "output"} <= set(t) for t in results["tests"])
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
        assert results["score"] == pytest.approx(learner["score"])
    good = json.loads(course.path("build/grade/gradescope/good/results.json").read_text())
    assert all(t["score"] == t["max_score"] and t["status"] == "passed" for t in good["tests"])


def test_a_missing_submissions_folder_is_a_usage_error(tmp_path):
    course = make_copy(tmp_path / "course", module_count=1)
    result = course.run(sys.executable, "-m", "tito.grade", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "is not a folder of submissions" in result.stderr
