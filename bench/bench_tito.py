"""How fast tito answers: `tito checkpoint status` and a no-op `doit` on a fully built copy of the course.

Both are measured as a learner meets them: a fresh Python process each time (subprocess), so the
figures include interpreter start-up and imports. Goals: status ≤ 0.25 s, no-op doit ≤ 0.5 s.
There is no PyTorch counterpart, so the ratio column stays blank.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Measurement, median_time
from tito.manifest import load

STATUS_GOAL_S = 0.25
DOIT_GOAL_S = 0.5


def _runner(root: Path, *args: str):
    env = dict(os.environ, PYTHONPATH=str(root), COLUMNS="120")  # bytecode is cached, as for a learner
    env.pop("TINYTORCH_ROOT", None)

    def call():
        quiet = subprocess.DEVNULL
        return subprocess.run([sys.executable, *args], cwd=root, env=env, stdout=quiet, stderr=quiet)

    return call, env


def timed(call, repeat: int = 10, warmup: int = 2) -> tuple[float, float]:
    """(median wall seconds, mean CPU seconds of the child process): CPU time barely moves when
    other work loads the machine, so it tells what the wall time would be on an idle one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = median_time(call, repeat=repeat, warmup=warmup)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (repeat + warmup)
    return wall, cpu


def fresh_copy(destination: Path, source: Path = Path(".")) -> None:
    """This course as a fresh clone has it: no build/, no .venv, no exported package files."""
    ignore = shutil.ignore_patterns("build", ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache")
    shutil.copytree(source, destination, ignore=ignore)
    for module in load(destination).modules:
        for path in module.exported_files:
            (destination / path).unlink(missing_ok=True)


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="bench-tito-") as scratch:
        root = Path(scratch) / "course"
        fresh_copy(root)  # every lesson this checkout has
        build, env = _runner(root, "-m", "doit", "--continue")
        build()
        everything_passes = build().returncode == 0  # the second run: is plain `doit` a no-op?
        status = subprocess.run([sys.executable, "-m", "tito", "checkpoint", "status", "--json"],
                                cwd=root, env=env, capture_output=True, text=True)  # fmt: skip
        checkpoints = json.loads(status.stdout)["checkpoints"]
        passed = [c["id"] for c in checkpoints if c["state"] == "passed"]
        available = [c["id"] for c in checkpoints if c["state"] != "unavailable"]
        if everything_passes:
            noop_args = ("-m", "doit")
        else:  # a failing checkpoint would re-run every time: time the part that is up to date
            noop_args = ("-m", "doit", f"checkpoint:{passed[-1]}" if passed else "export")
        figures = {"passed": f"{len(passed)} of {len(available)} available checkpoints"}
        tito_s, tito_cpu = timed(_runner(root, "-m", "tito", "checkpoint", "status")[0])
        doit_s, doit_cpu = timed(_runner(root, *noop_args)[0])
    status_goal = {"goal_s": STATUS_GOAL_S, "meets_goal": tito_s <= STATUS_GOAL_S, "cpu_s": round(tito_cpu, 3)}
    doit_goal = {"goal_s": DOIT_GOAL_S, "meets_goal": doit_s <= DOIT_GOAL_S, "cpu_s": round(doit_cpu, 3)}
    return [
        Measurement("tito checkpoint status", tito_s, extra={**status_goal, **figures}),
        Measurement(f"no-op {' '.join(noop_args[1:])}", doit_s, extra=doit_goal),
    ]
