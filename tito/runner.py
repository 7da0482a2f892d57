"""Run one checkpoint's tests in a fresh Python process and record the result as JSON.

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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tito.export import write_atomic
from tito.manifest import Checkpoint

TEST_TIMEOUT = float(os.environ.get("TINYTORCH_TEST_TIMEOUT", 120))
RUN_TIMEOUT = float(os.environ.get("TINYTORCH_CHECKPOINT_TIMEOUT", 600))


@dataclass
class Outcome:
    result: dict

    @property
    def passed(self) -> bool:
        return self.result["status"] == "passed"


def count_tests(path: Path) -> int:
    """Test functions defined in a checkpoint file, for k/n when collection itself failed."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
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


def child_env(root: Path, result_path: Path) -> dict:
    env = dict(os.environ, TITO_RESULT_JSON=str(result_path), PYTHONDONTWRITEBYTECODE="1")
    # Checkpoints use small matrices, where BLAS threads gain little; when several checkpoints run at
    # once (grading a class, two terminals) spinning BLAS threads make each one 5-10x slower.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(variable, "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root.resolve()), env.get("PYTHONPATH")]))
    return env


def run(checkpoint: Checkpoint, root: Path = Path("."), live: bool = False) -> Outcome:
    """Run the checkpoint's pytest file; `live` streams pytest's verbose output to the terminal."""
    with tempfile.TemporaryDirectory() as scratch:
        raw_path = Path(scratch) / "raw.json"
        process = subprocess.Popen(
            pytest_command(checkpoint, verbose=live), cwd=root, env=child_env(root, raw_path),
            stdout=None if live else subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            timed_out = True
        except KeyboardInterrupt:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        raw = json.loads(raw_path.read_text()) if raw_path.exists() else None
    result = summarise(checkpoint, raw, output or "", process.returncode, timed_out)
    path = root / checkpoint.result_file
    write_atomic(path, json.dumps(result, indent=2) + "\n")
    return Outcome(result)


def summarise(checkpoint: Checkpoint, raw: dict | None, output: str, returncode: int, timed_out: bool) -> dict:
    tests = raw["tests"] if raw else []
    collected = [t for t in tests if t["name"] != "collection"]
    total = len(collected) if collected and len(collected) == len(tests) else count_tests(checkpoint.file)
    passed = sum(t["outcome"] == "passed" for t in collected)
    if timed_out:
        status, note = "timeout", f"stopped after {RUN_TIMEOUT:g} s (TINYTORCH_CHECKPOINT_TIMEOUT)"
    elif raw is None:
        status, note = "error", "pytest ended before writing a result"
    elif returncode == 0 and passed == total and total > 0:
        status, note = "passed", None
    else:
        status, note = "failed", None
    return {
        "checkpoint": checkpoint.id,
        "name": checkpoint.name,
        "module": checkpoint.module_id,
        "capability": checkpoint.capability,
        "status": status,
        "tests_passed": passed,
        "tests_total": total,
        "duration": raw["duration"] if raw else None,
        "finished_at": raw["finished_at"] if raw else datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "note": note,
        "tests": tests,
        "output": output[-4000:] if status != "passed" else "",
    }


def describe(result: dict) -> str:
    """Plain-text summary printed by doit: one line, plus one per failed test."""
    mark = "PASS" if result["status"] == "passed" else "FAIL"
    lines = [
        f"{mark} checkpoint {result['checkpoint']} {result['name']}: "
        f"{result['tests_passed']}/{result['tests_total']} tests passed"
        + (f" ({result['note']})" if result["note"] else "")
    ]
    for test in result["tests"]:
        if test["outcome"] == "failed":
            lines.append(f"     x {test['name']}: {test.get('message', '')}")
    return "\n".join(lines)


def doit_action(checkpoint: Checkpoint):
    """The `checkpoint:NN` task's action: run, print the summary, tell doit whether it passed."""
    from doit.exceptions import TaskFailed

    outcome = run(checkpoint)
    print(describe(outcome.result), flush=True)
    if outcome.passed:
        return True
    return TaskFailed(
        f"checkpoint {checkpoint.id} did not pass. `tito module complete {checkpoint.module_id}` "
        "shows each failure and the lesson line to look at."
    )
