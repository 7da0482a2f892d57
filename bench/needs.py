"""Which modules a benchmark script needs, and whether the learner has finished them.

A script needs every module whose exported file its imports reach (inside functions too, through
the course's import graph). It can run once each of those modules has passed its checkpoint; before
that its code is a stub, and the benchmark is skipped with a line saying what it waits for.
"""
from __future__ import annotations

from pathlib import Path

from tito import deps, state
from tito.manifest import Module


def waiting_for(scripts: list[Path], progress: state.Progress) -> list[Module]:
    """The modules the scripts use whose checkpoints have not passed, in course order (a stale one
    passed before and is being re-checked: its code is finished, so it counts as done)."""
    used = set()
    for script in scripts:
        used |= deps.reachable_targets(progress.course, script.read_text(encoding="utf-8"), everywhere=True)
    done = ("passed", "stale")
    return [e.module for e in progress.entries if set(e.module.exports) & used and e.state not in done]


def skip_line(what: str, waiting: list[Module]) -> str:
    """`⏭ bench/optim skipped: waits for 09_autograd … 11_training to pass their checkpoints`."""
    span = waiting[0].id if len(waiting) == 1 else f"{waiting[0].id} … {waiting[-1].id}"
    return f"⏭ {what} skipped: waits for {span} to pass"
