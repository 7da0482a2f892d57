"""The six milestones in quick mode: each must learn for real, write its result and draw its pictures."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tito import deps, milestones, release
from tito.manifest import load
from tito.milestones import Check, MilestoneResult, read_result
from tito.runner import blas_threads

from .conftest import CourseCopy, make_copy

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "milestones").glob("[0-9][0-9]_*.py"))
sys.path.insert(0, str(ROOT / "milestones"))
import kit  # noqa: E402  (the milestones' shared helpers live beside them, not in a package)


def run_milestone(script: Path, out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **blas_threads(1), **(env or {})}
    return subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=280)  # fmt: skip


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_there_are_six_milestones_in_historical_order():
    years = [int(script.stem.split("_")[1]) for script in SCRIPTS]
    assert [s.stem[:2] for s in SCRIPTS] == ["01", "02", "03", "04", "05", "06"]
    assert years == sorted(years) == [1957, 1969, 1986, 1998, 2017, 2018]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.stem)
def test_each_milestone_reaches_its_quick_goal(script, tmp_path):
    done = run_milestone(script, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = read_result(tmp_path / f"{script.stem[:2]}.json")
    assert result is not None and result.mode == "quick" and result.achieved
    assert all(check.met for check in result.checks) and result.seconds > 0
    assert "🏆 milestone achieved" in done.stdout and result.headline in done.stdout
    if has_matplotlib():
        assert result.picture and Path(result.picture).stat().st_size > 5000


def test_without_matplotlib_a_milestone_still_runs_and_says_how_to_get_a_png(tmp_path):
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker.parent), str(ROOT)])}
    done = run_milestone(SCRIPTS[0], tmp_path / "out", env)
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed" in done.stdout
    assert read_result(tmp_path / "out" / "01.json").picture is None
    assert not list((tmp_path / "out").glob("*.png"))


def fake_cifar(folder: Path, per_batch: int = 40) -> None:
    """CIFAR-10 files in the real pickle format, with an easy rule: the class sets the mean colour."""
    generator = np.random.default_rng(0)
    palette = generator.integers(0, 220, (10, 3))

    def batch(name):
        labels = generator.integers(0, 10, per_batch)
        images = palette[labels][:, :, None] + generator.integers(0, 30, (per_batch, 3, 1024))
        data = {b"data": images.astype(np.uint8).reshape(per_batch, -1), b"labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(data))

    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch(name)
    names = [n.encode() for n in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


def test_lenet_runs_the_same_recipe_on_cifar10_when_a_local_copy_is_named(tmp_path):
    fake_cifar(tmp_path / "cifar-10-batches-py")
    done = run_milestone(ROOT / "milestones" / "04_1998_lenet.py", tmp_path / "out", {"CIFAR10_DIR": str(tmp_path)})
    result = read_result(tmp_path / "out" / "04.json")
    assert result is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert result.figures["cifar10_train_images"] == 200 and result.figures["cifar10_test_images"] == 40
    cifar = next(check for check in result.checks if check.name == "CIFAR-10 test accuracy")
    assert cifar.value == result.figures["cifar10_test_accuracy"] and 0.0 <= cifar.value <= 1.0
    assert done.returncode == (0 if result.achieved else 1)


def test_a_missed_goal_is_recorded_and_exits_one(tmp_path):
    missed = [Check("test accuracy", 0.5, "50.0 %", "≥ 97.5 %", False)]
    out = ["--quick", "--out", str(tmp_path)]
    assert kit.main("03_1986_backprop.py", "1986 · Title\n\nA story.", lambda run: missed, out) == kit.MISSED
    result = read_result(tmp_path / "03.json")
    assert result is not None and not result.achieved and result.headline == "50.0 % test accuracy"


@pytest.mark.parametrize("damage", ["", "{", '{"number": "01"}', '{"number": "01", "mode": "slow", "checks": []}'])
def test_a_damaged_result_file_is_no_result(tmp_path, damage):
    path = tmp_path / "01.json"
    path.write_text(damage)
    assert read_result(path) is None
    assert read_result(tmp_path / "missing.json") is None


def test_a_result_survives_the_round_trip(tmp_path):
    result = MilestoneResult("02", "full", [Check("MLP accuracy on XOR", 1.0, "100.0 %", "100 %", True)], {"steps": 5}, 1.5)
    result.write(tmp_path / "02.json")
    assert read_result(tmp_path / "02.json") == result


def render(renderable, colour: bool) -> str:
    console = Console(width=80, color_system="truecolor" if colour else None, force_terminal=colour, record=True)
    console.print(renderable)
    return console.export_text(styles=False)


def test_a_heatmap_is_half_blocks_in_colour_and_a_character_ramp_without():
    values = np.array([[0.0, 1.0], [0.5, 0.25], [1.0, 0.0]])
    assert render(kit.heatmap(values), colour=True).splitlines() == ["▀▀", "▀▀"]  # 3 rows: two lines
    assert render(kit.heatmap(values), colour=False).splitlines() == [" @", "=:", "@ "]


# ------------------------------------------------------------------------------ in the course's graph


def test_a_milestone_needs_the_checkpoints_of_what_its_script_imports():
    course = load(ROOT)
    file_deps = deps.all_milestone_file_deps(course)
    assert set(file_deps) == {m.id for m in course.milestones}
    perceptron, transformer = file_deps["01_perceptron"], file_deps["05_transformer"]
    assert perceptron[:2] == ["milestones/01_1957_perceptron.py", "milestones/kit.py"]
    assert "tinytorch/core/layers.py" in perceptron and "tinytorch/core/tinygpt.py" not in perceptron
    assert "tinytorch/core/tinygpt.py" in transformer
    needs = {m: [c.id for c in milestones.needed_checkpoints(course, d)] for m, d in file_deps.items()}
    assert needs["01_perceptron"][-1] == "03" and needs["05_transformer"][-1] == "15"
    assert needs["06_mlperf"][-1] == "14" and {"11", "13"} <= set(needs["06_mlperf"])  # compression, benchmarking


def test_doit_has_a_milestone_task_each_outside_the_default_build(foundation):
    listed = foundation.doit("list", "--all")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.startswith("milestone:")] == [
        f"milestone:{m.id}" for m in load(ROOT).milestones]  # fmt: skip
    info = foundation.doit("info", "milestone:01_perceptron")
    assert "checkpoint:03" in info.stdout and "milestones/kit.py" in info.stdout
    assert "milestone" not in dodo_default_tasks()


def dodo_default_tasks() -> list[str]:
    import ast
    import re

    return ast.literal_eval(re.search(r'"default_tasks": (\[.*?\])', (ROOT / "dodo.py").read_text()).group(1))


def test_the_student_edition_says_what_a_locked_milestone_needs(tmp_path):
    course = make_copy(tmp_path / "course")
    release.build_release(load(course.root), Path("build/release"))
    student = CourseCopy(course.root / "build" / "release")
    activated = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # tito is on PATH
    done = student.tito("milestone", "run", "1957", env=activated)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Milestone 01 · 1957 The Perceptron uses checkpoints 00, 01, 02, 03" in " ".join(done.stdout.split())
    assert "00 environment (01_setup)" in done.stdout and "Run: tito module complete 01_setup" in done.stdout
    with_make = student.tito("milestone", "run", "1957", env={"PATH": os.defpath})  # no tito to type
    assert "Run: make complete MODULE=01_setup" in with_make.stdout, with_make.stdout
    wide = {"COLUMNS": "200"}  # one table row, one tree line per milestone
    listed = student.tito("milestone", "list", env=wide)
    assert listed.returncode == 0 and listed.stdout.count("locked until checkpoint") == 6
    timeline = student.tito("checkpoint", "timeline", env=wide)
    assert "🏆 milestone 01 · 1957 The Perceptron · locked until checkpoint 03 passes" in timeline.stdout
    unknown = student.tito("milestone", "run", "lenat")
    assert unknown.returncode == 2 and "Did you mean lenet" in unknown.stderr


def fake_state(result: MilestoneResult | None, missing=()) -> milestones.MilestoneState:
    course = load(ROOT)
    return milestones.MilestoneState(course.milestones[2], list(course.checkpoints[:12]), list(missing), result)


def test_a_milestone_is_achieved_by_a_full_run_that_reached_its_goal():
    reached = [Check("test accuracy", 0.986, "98.6 %", "≥ 97.5 %", True)]
    assert fake_state(MilestoneResult("03", "full", reached)).label == "achieved: 98.6 % test accuracy"
    quick = fake_state(MilestoneResult("03", "quick", reached))
    assert quick.state == "ready" and quick.label == "ready (last quick run reached: 98.6 % test accuracy)"
    missed = [Check("test accuracy", 0.9, "90.0 %", "≥ 97.5 %", False)]
    assert fake_state(MilestoneResult("03", "full", missed)).state == "ready"
    assert fake_state(None).label == "ready"
    locked = fake_state(MilestoneResult("03", "full", reached), missing=["an entry"])
    assert locked.state == "locked" and locked.label == "locked until checkpoint 11 passes"


def test_an_error_in_the_learners_code_is_reported_in_one_place_not_as_a_traceback(tmp_path, capsys):
    def body(run):
        raise ValueError("matmul: shapes (2, 3) and (4, 5) do not align")

    assert kit.entry("02_1969_xor.py", "1969 · Title\n\nA story.", body, ["--quick", "--out", str(tmp_path)]) == kit.MISSED
    shown = " ".join(capsys.readouterr().out.split())
    assert "The milestone stopped: ValueError: matmul: shapes (2, 3) and (4, 5) do not align" in shown
    assert 'raise ValueError("matmul' in shown and "Traceback" not in shown
    assert not (tmp_path / "02.json").exists()


def test_a_closed_pipe_ends_a_milestone_quietly(tmp_path):
    program = ("import sys; sys.path.insert(0, 'milestones'); import kit; "
               "sys.exit(kit.entry('01_x.py', 'T\\n\\nS', lambda run: [run.say(str(i)) for i in range(20000)]))")  # fmt: skip
    pipeline = f"{sys.executable} -c \"{program}\" --out {tmp_path} | head -n 1"
    done = subprocess.run(["bash", "-c", pipeline], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.stdout.startswith("╭") and done.stderr == ""
