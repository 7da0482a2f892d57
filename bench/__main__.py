"""python -m bench [topic ...]: run bench/bench_<topic>.py files, print a table, write JSON."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import torch

OUT = Path("build") / "bench"


def topics(selected: list[str]) -> list[str]:
    found = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    unknown = set(selected) - set(found)
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}; available: {found}")
    return selected or found


def fmt(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def table(topic: str, measurements) -> Table:
    grid = Table(title=f"bench/{topic}", title_justify="left")
    for column in ("case", "tinytorch ms", "torch ms", "ratio", "goal"):
        grid.add_column(column, justify="left" if column == "case" else "right")
    for m in measurements:
        verdict = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}[m.meets_goal]
        ratio = "-" if m.ratio is None else f"{m.ratio:.2f}x {verdict}"
        goal = "-" if m.goal_ratio is None else f"≤ {m.goal_ratio:g}x"
        grid.add_row(m.name, fmt(m.tinytorch_s), fmt(m.torch_s), ratio, goal)
    return grid


def extras(measurements) -> str:
    """The other figures of each case, one line each, in full (a table column would cut them)."""
    return "\n".join(
        f"  {m.name}: " + ", ".join(f"{k}={v}" for k, v in m.extra.items()) for m in measurements if m.extra
    )


def main(argv: list[str]) -> int:
    console = Console()
    if torch() is None:
        console.print("[yellow]PyTorch is not installed: ratios are left blank (pip install torch==2.13.0)[/]")
    OUT.mkdir(parents=True, exist_ok=True)
    for topic in topics(argv):
        measurements = importlib.import_module(f"bench.bench_{topic}").run()
        console.print(table(topic, measurements))
        console.print(extras(measurements), soft_wrap=True, markup=False)
        report = {"topic": topic, "torch": getattr(torch(), "__version__", None),
                  "cases": [m.as_dict() for m in measurements]}  # fmt: skip
        (OUT / f"{topic}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
