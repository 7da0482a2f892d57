"""python -m bench [--quick] [--threads 1,2] [topic ...]: run bench/bench_<topic>.py files, print
tables, write build/bench/<topic>.json.

Each thread count runs in a fresh worker process whose BLAS (and PyTorch) is limited to that many
threads before NumPy is imported: a BLAS thread pool cannot be resized reliably once it started.
The JSON holds one run per thread count, each with the BLAS library and thread count actually in
effect (read back with threadpoolctl), and how many chunks tinytorch's own pool runs at once.

A topic runs only once every module it uses has passed its checkpoint (found from the bench file's
imports and this runner's, inside functions too, through the course's import graph); the others are
skipped with a line saying which modules they wait for, so `make bench` works at every stage of the
student edition.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import QUICK_VARIABLE, torch
from bench.needs import skip_line, waiting_for
from tito import state
from tito.manifest import load
from tito.runner import BLAS_THREAD_VARIABLES, blas_threads

COURSE = load(Path(__file__).resolve().parents[1])
OUT = COURSE.build.bench
HERE = Path(__file__).parent


def topics(selected: list[str]) -> list[str]:
    found = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    unknown = set(selected) - set(found)
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}; available: {found}")
    return selected or found


def fmt(value, unit: str) -> str:
    """Seconds as milliseconds, bytes as megabytes."""
    if value is None:
        return "-"
    return f"{value / 1e6:.2f} MB" if unit == "bytes" else f"{value * 1e3:.3f} ms"


def table(title: str, measurements) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in ("case", "tinytorch", "torch", "ratio", "goal"):
        grid.add_column(column, justify="left" if column == "case" else "right")
    for m in measurements:
        verdict = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}[m.meets_goal]
        ratio = "-" if m.ratio is None else f"{m.ratio:.2f}x {verdict}"
        goal = "-" if m.goal_ratio is None else f"≤ {m.goal_ratio:g}x"
        grid.add_row(m.name, fmt(m.tinytorch_s, m.unit), fmt(m.torch_s, m.unit), ratio, goal)
    return grid


def extras(measurements) -> str:
    """The other figures of each case, one line each, in full (a table column would cut them)."""
    return "\n".join(
        f"  {m.name}: " + ", ".join(f"{k}={v}" for k, v in m.extra.items()) for m in measurements if m.extra
    )


def blas_in_effect() -> dict:
    """The BLAS library NumPy uses and its thread count, as the running process sees them."""
    from threadpoolctl import threadpool_info  # here, not at the top: the worker sets BLAS's threads first

    from tinytorch.core.setup import get_num_threads, system_info

    return {
        "blas": system_info()["blas"],
        "env": {v: os.environ.get(v) for v in BLAS_THREAD_VARIABLES},
        "tinytorch_threads": get_num_threads(),  # chunks run at once by map_chunks (lesson 01)
        "threadpools": [
            {k: pool.get(k) for k in ("internal_api", "num_threads", "version", "architecture", "filepath")}
            for pool in threadpool_info()
        ],
    }


def worker(topic: str, threads: int) -> dict:
    """Run one topic in this process (already limited to `threads` BLAS threads); return its run record."""
    pt = torch()
    if pt is not None:
        pt.set_num_threads(threads)
    measurements = importlib.import_module(f"bench.bench_{topic}").run()
    console = Console()
    console.print(table(f"bench/{topic}, {threads} thread{'s' if threads > 1 else ''}", measurements))
    console.print(extras(measurements), soft_wrap=True, markup=False)
    return {"threads": threads, "torch_threads": pt.get_num_threads() if pt else None,
            "system": blas_in_effect(), "cases": [m.as_dict() for m in measurements]}  # fmt: skip


def thread_counts(text: str) -> list[int]:
    """'1,2' -> [1, 2], for --threads."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts like 1,2 -- got {text!r}")
    return counts


def run_worker(topic: str, threads: int, quick: bool, result: Path) -> int:
    env = dict(os.environ, **blas_threads(threads), **{QUICK_VARIABLE: "1" if quick else "0"})
    command = [sys.executable, "-m", "bench", "--worker", str(result), f"--threads={threads}", topic]
    return subprocess.run(command, env=env).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="*", help="bench_<topic>.py files to run (default: all)")
    parser.add_argument("--threads", type=thread_counts, default=[1, 2], help="BLAS thread counts (default 1,2)")
    parser.add_argument("--quick", action="store_true", help="call everything once: checks the code, not the speed")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the figures (default {OUT})")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: run one topic, write its record
    args = parser.parse_args(argv)
    if args.worker:
        args.worker.write_text(json.dumps(worker(args.topics[0], args.threads[0])))
        return 0
    if torch() is None:
        Console().print("[yellow]PyTorch is not installed: ratios are left blank (pip install torch==2.13.0)[/]")
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    progress = state.compute(COURSE)
    for topic in topics(args.topics):
        waiting = waiting_for([HERE / f"bench_{topic}.py", Path(__file__)], progress)  # the worker uses setup
        if waiting:
            Console().print(skip_line(f"bench/{topic}", waiting), markup=False)
            continue
        runs = []
        for threads in args.threads:
            result = args.out / f".{topic}.{threads}.json"
            if run_worker(topic, threads, args.quick, result) != 0:
                status = 1
                continue
            runs.append(json.loads(result.read_text()))
            result.unlink()
        report = {"topic": topic, "torch": getattr(torch(), "__version__", None), "quick": args.quick, "runs": runs}
        (args.out / f"{topic}.json").write_text(json.dumps(report, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
