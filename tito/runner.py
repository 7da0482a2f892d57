"""Run one checkpoint's tests in a fresh Python process and record the result as JSON.

Owns the checkpoint task's action: the pytest command, its environment, its time limits, and
turning the plugin's report into a tito.results.CheckpointResult.

The subprocess isolates the learner's code (a crash or an infinite loop cannot take the build down),
and always imports the package from this course folder. Each test has its own timeout
(pytest-timeout), the whole run another; both end as a recorded failure, never a hang.
The JSON is written whether the tests pass or fail, because doit forgets failed tasks.
"""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tito.export import write_atomic
from tito.manifest import Checkpoint, Course
from tito.results import COLLECTION, CheckpointResult, InvalidResult, PytestReport, Status
from tito.sandbox import tail

TEST_TIMEOUT = float(os.environ.get("TINYTORCH_TEST_TIMEOUT", 120))
RUN_TIMEOUT = float(os.environ.get("TINYTORCH_CHECKPOINT_TIMEOUT", 600))


def count_tests(path: Path) -> int:
    """Test functions defined in a checkpoint file, for k/n when collection itself failed."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):  # ValueError: not UTF-8
        return 0
    return sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body)


def pytest_command(checkpoint: Checkpoint, verbose: bool) -> list[str]:
    return [
        sys.executable, "-m", "pytest", checkpoint.file.as_posix(),
        "-p", "tito.pytest_plugin", "-p", "no:cacheprovider",
        f"--timeout={TEST_TIMEOUT:g}", "--rootdir=.", "-o", "console_output_style=classic",
        "-v" if verbose else "-q", "--tb=short", f"--color={'yes' if verbose and _colour() else 'no'}",
    ]  # fmt: skip


def _colour() -> bool:
    """Colour live output only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(count: int) -> dict[str, str]:
    """The environment that gives a new process's BLAS (OpenBLAS, OpenMP or MKL) `count` threads."""
    return {variable: str(count) for variable in BLAS_THREAD_VARIABLES}


def child_env(root: Path, result_path: Path) -> dict:
    env = dict(os.environ, TITO_RESULT_JSON=str(result_path), PYTHONDONTWRITEBYTECODE="1")
    # Checkpoints use small matrices, where BLAS threads gain little; when several checkpoints run at
    # once (grading a class, two terminals) spinning BLAS threads make each one 5-10x slower.
    for variable, value in blas_threads(1).items():
        env.setdefault(variable, value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root.resolve()), env.get("PYTHONPATH")]))
    return env


def run(course: Course, checkpoint: Checkpoint, live: bool = False) -> CheckpointResult:
    """Run the checkpoint's pytest file, record the result and return it; `live` streams pytest's
    verbose output to the terminal.

    The output goes to a file, not a pipe: a child the learner's code leaves behind cannot keep the
    run (and the build lock) waiting. The run owns its process group: at the end, whatever is left
    in it is killed."""
    root = course.root
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile() as log:
        raw_path = Path(scratch) / "raw.json"
        process = subprocess.Popen(
            pytest_command(checkpoint, verbose=live), cwd=root, env=child_env(root, raw_path),
            stdout=None if live else log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(timeout=RUN_TIMEOUT)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # the timeout, Ctrl-C, or strays left behind by a finished run
            _kill_group(process)
        output = "" if live else tail(log)
        report = read_report(raw_path)
    total = count_tests(root / checkpoint.file)
    result = summarise(checkpoint, report, output, process.returncode, timed_out, total)
    write_atomic(course.build.result(checkpoint), result.dumps())
    return result


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left
    process.wait()


def read_report(path: Path) -> PytestReport | None:
    """The plugin's report, or None when pytest ended before writing a valid one."""
    try:
        return PytestReport.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, InvalidResult):
        return None


def summarise(checkpoint: Checkpoint, report: PytestReport | None, output: str, returncode: int,
              timed_out: bool, defined: int) -> CheckpointResult:  # fmt: skip
    """The run's result; `defined` (the file's test functions) is the total when collection failed."""
    tests = report.tests if report else ()
    collected = [t for t in tests if t.name != COLLECTION]
    total = len(collected) if collected and len(collected) == len(tests) else defined
    passed = sum(t.outcome is Status.PASSED for t in collected)
    if timed_out:
        status, note = Status.TIMEOUT, f"stopped after {RUN_TIMEOUT:g} s (TINYTORCH_CHECKPOINT_TIMEOUT)"
    elif report is None:
        status, note = Status.ERROR, "pytest ended before writing a result"
    elif returncode == 0 and passed == total and total > 0:
        status, note = Status.PASSED, None
    else:
        status, note = Status.FAILED, None
    return CheckpointResult(
        checkpoint=checkpoint.id, name=checkpoint.name, module=checkpoint.module_id, capability=checkpoint.capability,
        status=status, tests_passed=passed, tests_total=max(total, passed),
        duration=report.duration if report else None,
        finished_at=report.finished_at if report else datetime.now(timezone.utc).isoformat(timespec="seconds"),
        note=note, tests=tuple(tests), output=output[-4000:] if status is not Status.PASSED else "",
    )  # fmt: skip


def describe(result: CheckpointResult) -> str:
    """Plain-text summary printed by doit: one line, plus one per failed test."""
    mark = "PASS" if result.passed else "FAIL"
    lines = [
        f"{mark} checkpoint {result.checkpoint} {result.name}: {result.tests_passed}/{result.tests_total} tests passed"
        + (f" ({result.note})" if result.note else "")
    ]
    lines += [f"     x {test.name}: {test.message}" for test in result.failed_tests]
    return "\n".join(lines)


def doit_action(course: Course, checkpoint: Checkpoint):
    """The `checkpoint:NN` task's action: run, print the summary, tell doit whether it passed."""
    from doit.exceptions import TaskFailed

    result = run(course, checkpoint)
    print(describe(result), flush=True)
    if result.passed:
        return True
    return TaskFailed(
        f"checkpoint {checkpoint.id} did not pass. `tito module complete {checkpoint.module_id}` "
        "shows each failure and the lesson line to look at."
    )
