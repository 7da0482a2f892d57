"""A quiet doit reporter for learners: one line per task that ran, each failure once.

Owns what `make` and `tito` show of a doit run; the failures themselves come from tito.failures.

`make` and `tito` set TINYTORCH_REPORT=quiet, and dodo.py then names `QuietReporter` in DOIT_CONFIG;
plain `doit` keeps doit's own console reporter (and `--reporter` still chooses any other).

What it prints, instead of doit's `.  task` lines, `TaskFailed` / `UnmetDependency` blocks and the
captured output dumped again at the end:

    exported 16 lessons (01_setup … 16_tinygpt)
    ✗ module 01_setup · checkpoint 00 environment: 0/6 tests passed
        ✗ test_seed: modules/01_setup/setup.py:88 set_seed — NotImplementedError: seed random …
        2 tests stop at the same stub: modules/01_setup/setup.py:120 time_it — NotImplementedError: …
    ⏭ 15 checkpoints not run (01–15): they need checkpoint:00 to pass first

Checkpoint lines come from the result the runner recorded (build/checkpoints/NN.json), through the
same failure analysis as `tito module complete`, so both say the same thing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENVIRONMENT = "TINYTORCH_REPORT"
QUIET = "quiet"  # make: the report is all the learner sees of the build
HEADINGS = "headings"  # tito: one line per task; tito's own failure report follows, so no failure lines
MAX_GROUPS = 3  # failure groups listed per checkpoint; the rest are counted


def requested() -> bool:
    """Did `make` or `tito` ask for the quiet report?"""
    return os.environ.get(ENVIRONMENT) in (QUIET, HEADINGS)


def verbosity(loud: int) -> int:
    """A task's verbosity: its own for plain doit; 0 (output captured) when this reporter speaks for it."""
    return 0 if requested() else loud


class QuietReporter:
    desc = "one line per task that ran, each failure once (used by make and tito)"

    def __init__(self, outstream, options):
        from tito import terminal

        self.console = terminal.console(outstream)
        self.exported: list[str] = []
        self.unmet: list[tuple[str, str]] = []  # (task, the failed task it waited for)
        self.ran = self.failed = 0
        self.runtime_errors: list[str] = []
        self._course = None

    # ---------------------------------------------------------------------------------- doit's hooks

    def _nothing_to_say(self, *args):
        """The hooks where doit's own reporter prints a line per task, ran or not: here, silence."""

    initialize = get_status = execute_task = skip_uptodate = skip_ignore = teardown_task = _nothing_to_say

    def add_success(self, task):
        if not task.actions:
            return  # a placeholder for a module not yet in the course
        self.ran += 1
        if task.name.startswith("export:"):
            self.exported.append(task.name.split(":", 1)[1])
        elif task.name.startswith("checkpoint:"):
            self.checkpoint_lines(task.name)
        else:
            self.line(f"✓ {task.name}")

    def add_failure(self, task, fail):
        from doit.exceptions import UnmetDependency

        if isinstance(fail, UnmetDependency):
            if task.actions:  # a group task (`checkpoint`) waits for its members, which are counted
                self.unmet.append((task.name, fail.message.strip().splitlines()[-1]))
            return
        self.ran += 1
        self.failed += 1
        self.flush_exports()
        if task.name.startswith("checkpoint:") and self.checkpoint_lines(task.name):
            return
        message = fail.get_msg().strip() if fail.traceback else fail.message.strip()
        first, *rest = message.splitlines() or [""]
        self.line(f"✗ {task.name}: {first}", style="red")
        for extra in rest:
            self.line(f"    {extra}")

    def cleanup_error(self, exception):
        sys.stderr.write(exception.get_msg())

    def runtime_error(self, msg):
        self.runtime_errors.append(msg)

    def complete_run(self):
        self.flush_exports()
        if self.unmet:
            self.line(skipped_line(self.unmet), style="dim")
        if not self.ran and not self.unmet:
            self.line("✓ everything is up to date", style="green")
        for message in self.runtime_errors:
            self.line(message.strip(), style="red")

    # ------------------------------------------------------------------------------------- printing

    def line(self, text: str, style: str | None = None, clip: bool = False) -> None:
        """One line; `clip` cuts it at the terminal's width instead of wrapping it."""
        self.console.print(text, style=style, markup=False, no_wrap=clip, overflow="ellipsis" if clip else None)

    def flush_exports(self) -> None:
        """Exports are one quick step repeated per lesson: one line for all that ran so far."""
        if self.exported:
            names = self.exported[0] if len(self.exported) == 1 else f"{self.exported[0]} … {self.exported[-1]}"
            count = f"{len(self.exported)} lessons" if len(self.exported) > 1 else "lesson"
            self.line(f"exported {count} ({names})")
            self.exported = []

    def course(self):
        from tito.manifest import load

        if self._course is None:
            self._course = load(Path.cwd())  # doit runs in the course root
        return self._course

    def checkpoint_lines(self, task_name: str) -> bool:
        """The checkpoint's recorded result as one line plus its failure groups; False without one."""
        from tito import failures, state

        self.flush_exports()
        course = self.course()
        checkpoint = course.find_checkpoint(task_name.split(":", 1)[1])
        entry = state.compute(course).entry(checkpoint)
        if entry.result is None:
            return False
        module, result = entry.module, entry.result
        passed = result.passed
        mark, style = ("✓", "green") if passed else ("✗", "red")
        heading = f"{mark} module {module.id} · checkpoint {checkpoint.id} {checkpoint.name}: "
        heading += f"{entry.tests_passed}/{entry.tests_total} tests passed"
        if result.note:
            heading += f" ({result.note})"
        self.line(heading, style=style)
        if passed or os.environ.get(ENVIRONMENT) == HEADINGS:
            return True
        groups = failures.grouped(failures.failures(course, entry))
        for group in groups[:MAX_GROUPS]:
            self.line(f"    {failures.group_line(group)}", clip=True)
        if len(groups) > MAX_GROUPS:
            hidden = sum(len(g) for g in groups[MAX_GROUPS:])
            self.line(f"    … and {hidden} more failing tests: `{state.complete_command(module)}` lists them all",
                      style="dim")  # fmt: skip
        return True


def skipped_line(unmet: list[tuple[str, str]]) -> str:
    """`⏭ 15 checkpoints not run (01–15): they need checkpoint:00 to pass first`."""
    ids = [task.split(":", 1)[1] for task, _ in unmet]
    blockers = sorted({blocker for _, blocker in unmet} - {task for task, _ in unmet})
    kind = "checkpoints" if all(task.startswith("checkpoint:") for task, _ in unmet) else "tasks"
    span = ids[0] if len(ids) == 1 else f"{ids[0]}–{ids[-1]}"
    need = ", ".join(blockers) or "an earlier task"
    return f"⏭ {len(unmet)} {kind if len(unmet) > 1 else kind[:-1]} not run ({span}): waiting for {need} to pass first"
