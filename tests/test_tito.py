"""tito, driven as a learner drives it: real commands in subprocesses on temporary copies of the course.

One copy is built once per module (`built`) and only read; tests that edit or run things work on a
clone of it (a copy that keeps mtimes, so doit's database stays valid) or on a fresh copy.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, CourseCopy, make_copy
from tito import runner, state
from tito.manifest import load
from tito.results import Status

# `tito` on the PATH, as in an activated .venv: screens then name tito commands (make ones otherwise)
ENV = {"COLUMNS": "120", "NO_COLOR": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
TENSOR = "modules/02_tensor/tensor.py"
POW_DOC = '"""x ** p for a number p (a tensor exponent is not supported).'  # the docstring's first line
NEG = 'return Tensor.from_op(-self.data, "neg", (self,))'
FOUNDATION = runner.count_tests(ROOT / "checkpoints" / "checkpoint_01_foundation.py")  # its number of tests
CHECKPOINT_KEYS = {"id", "name", "module", "stage", "state", "tests_passed", "tests_total", "last_run"}


def tito(course: CourseCopy, *args: str, env: dict | None = None, timeout: float = 300):
    """Run tito in the copy; whatever happens, it must not end in a traceback."""
    result = course.tito(*args, env={**ENV, **(env or {})}, timeout=timeout)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def states(course: CourseCopy) -> dict[str, str]:
    result = tito(course, "checkpoint", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {c["id"]: c["state"] for c in json.loads(result.stdout)["checkpoints"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> CourseCopy:
    """The Foundation copy after `doit`: checkpoints 00-02 passed. Read it, never change it."""
    course = make_copy(tmp_path_factory.mktemp("built") / "course", module_count=3)
    result = course.doit(env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return course


@pytest.fixture
def clone(built, tmp_path) -> CourseCopy:
    """A private copy of the built course (copy2 keeps mtimes, so doit still sees it up to date)."""
    shutil.copytree(built.root, tmp_path / "clone", ignore=shutil.ignore_patterns(".lock"))
    return CourseCopy(tmp_path / "clone")


# ------------------------------------------------------------------------------------------ states


def test_fresh_copy_has_the_first_checkpoint_ready_and_the_rest_locked(foundation):
    assert states(foundation) == {
        "00": "ready", "01": "locked", "02": "locked",
        **{f"{n:02d}": "unavailable" for n in range(3, 16)},
    }  # fmt: skip
    result = tito(foundation, "checkpoint", "status")
    assert result.returncode == 0 and result.stderr == ""  # no build/ yet: nothing to warn about
    assert "🚀 ready" in result.stdout and "🔒 locked" in result.stdout and "not yet available" in result.stdout
    assert "Next: tito module complete 01_setup" in result.stdout
    unlock = tito(foundation, "checkpoint", "unlock")
    assert "Next to unlock: checkpoint 00 · environment" in unlock.stdout
    assert "tito module complete 01_setup" in unlock.stdout


def test_after_doit_every_available_checkpoint_passed(built):
    assert [states(built)[n] for n in ("00", "01", "02")] == ["passed"] * 3
    result = tito(built, "checkpoint", "status")
    assert "3 of 16 checkpoints passed" in result.stdout
    assert "Foundation  ████████████ 100%" in result.stdout
    assert "04_layers is not yet available" in result.stdout


def test_status_json_schema(built):
    result = tito(built, "checkpoint", "status", "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"checkpoints", "stages", "next"}
    assert [c["id"] for c in data["checkpoints"]] == [f"{n:02d}" for n in range(16)]
    first = data["checkpoints"][0]
    assert set(first) == CHECKPOINT_KEYS
    assert first["name"] == "environment" and first["module"] == "01_setup" and first["stage"] == "Foundation"
    assert first["state"] == "passed" and first["tests_passed"] == first["tests_total"] > 0
    datetime.fromisoformat(first["last_run"])
    for checkpoint in data["checkpoints"]:
        assert set(checkpoint) == CHECKPOINT_KEYS and checkpoint["state"] in state.STATES
    assert [s["name"] for s in data["stages"]] == [
        "Foundation", "Neural Architecture", "Training", "Inference Deployment", "Language Models",
    ]  # fmt: skip
    assert data["stages"][0]["passed"] == 3 and data["stages"][0]["progress"] == 1.0
    assert data["next"] is None  # 04_layers is not in this copy


def test_detailed_status_lists_every_test(built):
    result = tito(built, "checkpoint", "status", "--detailed")
    record = json.loads(built.path("build/checkpoints/01.json").read_text())
    for test in record["tests"]:
        assert test["name"] in result.stdout
    assert "last run" in result.stdout


def test_timeline_vertical_and_horizontal(built):
    tree = tito(built, "checkpoint", "timeline").stdout
    assert "├── 🎯 Foundation · 100%" in tree and "└── 🎯 Language Models · 0%" in tree
    assert "✅ 02_tensor Tensor → checkpoint 01 foundation · passed" in tree
    line = tito(built, "checkpoint", "timeline", "--horizontal").stdout
    assert "🎯 Foundation ████████████ 100%" in line
    assert "✅ Setup 100% ── ✅ Tensor 100% ── ✅ Activations 100%" in line
    assert "⏳ Layers 0% ── ⏳ Dense Networks 0%" in line


def test_editing_an_exported_cell_makes_dependent_checkpoints_stale(clone):
    clone.edit(TENSOR, POW_DOC, '"""x ** p, for a number p only.')
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed", "stale", "stale"]
    detailed = tito(clone, "checkpoint", "status", "--detailed").stdout
    assert f"{TENSOR} changed (not exported yet)" in detailed
    assert tito(clone, "module", "complete", "02_tensor", "--skip-test").returncode == 0
    assert "tinytorch/core/tensor.py changed" in tito(clone, "checkpoint", "status", "--detailed").stdout
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed", "stale", "stale"]
    assert "Next: tito checkpoint test 02" in tito(clone, "checkpoint", "status").stdout
    result = tito(clone, "checkpoint", "test")  # default: re-check up to the last stale checkpoint
    assert result.returncode == 0, result.stdout
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed"] * 3


def test_a_lesson_added_after_a_build_is_ready(clone):
    """doit stored a row for the placeholder task; it must not count as a pass of the real one."""
    lesson, checkpoint = ROOT / "modules" / "04_layers", ROOT / "checkpoints" / "checkpoint_03_components.py"
    if not (lesson.is_dir() and checkpoint.is_file()):
        pytest.skip("module 04_layers is not written yet")
    shutil.copytree(lesson, clone.path("modules/04_layers"), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(checkpoint, clone.path("checkpoints"))
    result = tito(clone, "checkpoint", "status")
    assert result.stderr == "" and "Next: tito module complete 04_layers" in result.stdout
    assert [states(clone)[n] for n in ("02", "03", "04")] == ["passed", "ready", "unavailable"]


def test_a_broken_function_gives_a_focused_failure_report(clone):
    clone.edit(TENSOR, NEG, "return Tensor.from_op(-self.data + undefined_name, \"neg\", (self,))")
    result = tito(clone, "module", "complete", "tensor")
    assert result.returncode == 1
    assert f"Checkpoint 01 · foundation failed (module 02_tensor): {FOUNDATION - 1}/{FOUNDATION} tests passed" in result.stdout
    assert "✗ test_reflected_operators" in result.stdout
    assert "NameError: name 'undefined_name' is not defined" in result.stdout
    lesson_line = 1 + clone.path(TENSOR).read_text().splitlines().index(
        '    return Tensor.from_op(-self.data + undefined_name, "neg", (self,))'
    )
    assert f"look at {TENSOR}:{lesson_line} (in _neg)" in result.stdout
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed", "failed", "locked"]
    assert f"failed {FOUNDATION - 1}/{FOUNDATION}" in tito(clone, "checkpoint", "status").stdout


def test_a_wrong_value_points_at_the_lesson_definition_used(clone):
    clone.edit(TENSOR, 'self.data**exponent, "pow"', 'self.data**exponent + 1, "pow"')
    result = tito(clone, "checkpoint", "test", "1")
    assert result.returncode == 1
    assert "✗ test_reflected_operators" in result.stdout
    pow_line = 1 + clone.path(TENSOR).read_text().splitlines().index("def _pow(self, exponent):")
    assert f"look at {TENSOR}:{pow_line} (in _pow)" in result.stdout
    assert "test    checkpoints/checkpoint_01_foundation.py:" in result.stdout


def test_an_export_syntax_error_names_the_lesson_line(clone):
    clone.edit(TENSOR, NEG, 'return Tensor.from_op(-self.data, "neg", (self,)')
    result = tito(clone, "module", "complete", "2")
    assert result.returncode == 1
    broken = '    return Tensor.from_op(-self.data, "neg", (self,)'
    line = 1 + clone.path(TENSOR).read_text().splitlines().index(broken)
    assert f"Export failed" in result.stdout and f"{TENSOR}:{line}: syntax error" in result.stdout
    assert tito(clone, "module", "complete", "2", "--skip-test").returncode == 1


def test_a_hanging_checkpoint_is_stopped_and_reported_failed(clone):
    clone.edit(
        "checkpoints/checkpoint_02_intelligence.py",
        "def test_relu_known_values():\n",
        "def test_relu_known_values():\n    while True:\n        pass\n",
    )
    result = tito(clone, "module", "complete", "03", env={"TINYTORCH_TEST_TIMEOUT": "2"}, timeout=120)
    assert result.returncode == 1
    assert "✗ test_relu_known_values" in result.stdout and "Timeout" in result.stdout
    assert states(clone)["02"] == "failed"


def test_checkpoint_run_directly(clone):
    verbose = tito(clone, "checkpoint", "run", "01", "--verbose")  # pytest -v, each test live
    assert verbose.returncode == 0 and "test_reflected_operators" in verbose.stdout and "PASSED" in verbose.stdout
    assert f"passed: {FOUNDATION}/{FOUNDATION}" in verbose.stdout
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed"] * 3
    clone.edit(TENSOR, 'self.data**exponent, "pow"', 'self.data**exponent + 1, "pow"')
    failed = tito(clone, "checkpoint", "run", "1")  # the lesson is exported first, so the edit counts
    assert failed.returncode == 1 and f"failed (module 02_tensor): {FOUNDATION - 1}/{FOUNDATION}" in failed.stdout
    assert "test_reflected_operators" in failed.stdout and "❌ failed" in failed.stdout
    assert states(clone)["01"] == "failed"
    clone.edit(TENSOR, 'self.data**exponent + 1, "pow"', 'self.data**exponent, "pow"')
    # doit still holds 01's old row; tito makes it re-run instead of trusting it
    assert tito(clone, "checkpoint", "test", "01").returncode == 0
    assert states(clone)["01"] == "passed"


# ------------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "args, expected",
    [
        (("module", "complete", "nope"), "Unknown module 'nope'."),
        (("module", "complete", ""), "No module name given."),
        (("module", "complete", "tensr"), "Unknown module 'tensr'. Did you mean tensor"),
        (("checkpoint", "run", "99"), "Unknown checkpoint '99'. Did you mean 09?"),
        (("checkpoint", "run", "x"), "Unknown checkpoint 'x'."),
        (("checkpoint", "test", "foundaton"), "Unknown checkpoint 'foundaton'. Did you mean foundation?"),
    ],
)
def test_unknown_names_get_suggestions_and_exit_2(built, args, expected):
    result = tito(built, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert result.stderr.splitlines()[1].startswith("Valid ")


def test_modules_not_yet_available_are_refused(built):
    for args in (("module", "complete", "04_layers"), ("checkpoint", "run", "8"), ("checkpoint", "test", "5")):
        result = tito(built, *args)
        assert result.returncode == 3 and "is not yet available" in result.stderr


def test_help_version_and_usage_errors(built):
    main = tito(built, "--help")
    assert main.returncode == 0 and "exit codes:" in main.stdout and "lock timed out" in main.stdout
    for args in (("checkpoint",), ("checkpoint", "status"), ("checkpoint", "timeline"), ("checkpoint", "test"),
                 ("checkpoint", "run"), ("checkpoint", "unlock"), ("module",), ("module", "complete")):  # fmt: skip
        assert tito(built, *args, "--help").returncode == 0
    assert tito(built, "--version").stdout.strip().startswith("tito 0.")
    assert tito(built, "checkpoint", "bogus").returncode == 2
    assert tito(built, "module", "complete").returncode == 2


# ---------------------------------------------------------------------------- damaged build state


def test_a_corrupt_database_is_survived_and_rebuilt(clone):
    clone.path("build/.doit.db").write_bytes(b"this is not sqlite" * 100)
    result = tito(clone, "checkpoint", "status")
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1 and "build/.doit.db is unreadable" in result.stderr
    assert "tito checkpoint test" in result.stderr
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["stale"] * 3
    assert tito(clone, "checkpoint", "test").returncode == 0
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed"] * 3


def test_a_corrupt_or_missing_result_file_is_survived(clone):
    clone.path("build/checkpoints/01.json").write_text("{not json")
    result = tito(clone, "checkpoint", "status")
    assert result.returncode == 0 and "build/checkpoints/01.json is unreadable" in result.stderr
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed", "stale", "stale"]
    clone.path("build/checkpoints/01.json").unlink()
    assert "01.json is missing" in tito(clone, "checkpoint", "status").stderr
    assert tito(clone, "module", "complete", "02").returncode == 0  # doit is told to forget its row
    assert states(clone)["01"] == "passed"


def test_two_module_completes_at_once_both_finish(clone):
    clone.edit(TENSOR, POW_DOC, '"""x ** p, for a number p only.')
    env = {**ENV, "PYTHONPATH": str(clone.root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "tito", "module", "complete", "03_activations"]
    runs = [
        subprocess.Popen(command, cwd=clone.root, env={**os.environ, **env}, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=240)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all("Checkpoint 02 · intelligence passed" in output for output in outputs)
    assert sum("✓ module 02_tensor · checkpoint 01" in output for output in outputs) == 1  # the second found it done
    assert [states(clone)[n] for n in ("00", "01", "02")] == ["passed"] * 3


def test_a_held_lock_times_out_clearly(clone):
    clone.path("build/.lock").touch()
    with open(clone.path("build/.lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another build is running
        for args in (("module", "complete", "02"), ("checkpoint", "run", "01")):
            result = tito(clone, *args, env={"TINYTORCH_LOCK_TIMEOUT": "1"})
            assert result.returncode == 3, result.stdout + result.stderr
            assert "gave up waiting for another TinyTorch build" in result.stderr
        assert tito(clone, "checkpoint", "status").returncode == 0  # readers take no lock


# --------------------------------------------------------------------------------- speed and imports


def test_status_imports_no_numpy_doit_jupytext_or_framework(built):
    code = (
        "import sys, io, contextlib\n"
        "from tito.cli import main\n"
        "for args in (['checkpoint', 'status', '--detailed'], ['checkpoint', 'status', '--json'],\n"
        "             ['checkpoint', 'timeline', '--horizontal']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(args) == 0\n"
        "heavy = ('numpy', 'doit', 'jupytext', 'tinytorch', 'pytest')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = built.run(sys.executable, "-c", code, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------- propagation rules


def _entries(*own: str) -> list[state.Entry]:
    course = load(Path(__file__).resolve().parents[1])
    stage = course.stages[0]
    entries = []
    for module, own_state in zip(course.modules, own):
        entries.append(state.Entry(module.checkpoint, module, stage, own=Status(own_state)))
    return entries


@pytest.mark.parametrize(
    "own, expected",
    [
        (("passed", "never", "never"), ["passed", "ready", "locked"]),
        (("passed", "failed", "passed"), ["passed", "failed", "locked"]),
        (("stale", "passed", "never"), ["stale", "stale", "locked"]),
        (("passed", "stale", "failed", "passed"), ["passed", "stale", "failed", "locked"]),
        (("passed", "unavailable", "passed"), ["passed", "unavailable", "locked"]),
        (("never", "unavailable", "never"), ["ready", "unavailable", "locked"]),
    ],
)
def test_propagation(own, expected):
    entries = _entries(*own)
    state.propagate(entries)
    assert [e.state for e in entries] == expected
