"""Rich rendering for tito: small functions that turn a `state.Progress` into tables, trees and panels.

Owns every screen, the icons and the colours of the status words.

Every view says its state in words next to the icon, so the output reads the same without colour
(NO_COLOR, pipes, screen readers). Rich is imported here only, and only the parts used.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tito.manifest import Module
from tito.results import RUN_STATUSES, CheckpointResult, Status
from tito.state import Entry, Progress, complete_command

if TYPE_CHECKING:  # tito.failures imports the exporter: only failure reports need it
    from collections.abc import Sequence

    from tito.export import ExportError
    from tito.failures import Failure, Place
    from tito.milestones import MilestoneState

ICONS = {
    Status.PASSED: "✅", Status.STALE: "🔄", Status.FAILED: "❌", Status.READY: "🚀", Status.LOCKED: "🔒",
    Status.UNAVAILABLE: "⏳",
}  # fmt: skip
STYLES = {
    Status.PASSED: "green", Status.STALE: "yellow", Status.FAILED: "red", Status.READY: "cyan",
    Status.LOCKED: "dim", Status.UNAVAILABLE: "dim",
}  # fmt: skip
TEST_MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-"}
MILESTONE_STYLES = {"achieved": "bold green", "ready": "cyan", "locked": "dim"}
BAR_WIDTH = 12
MESSAGE_LINES = 8  # of a failed test's message in the failure report
WIDE = 100  # columns from which the status table has room for the capability column

_console: Console | None = None


def console() -> Console:
    """The one Console tito prints with (tito.terminal: any width, encoding, colour setting)."""
    global _console
    if _console is None:
        from tito import terminal

        _console = terminal.console()
    return _console


# ------------------------------------------------------------------------------------ small pieces


def percent(fraction: float) -> str:
    return f"{math.floor(fraction * 100 + 1e-9)}%"  # floored: 99.9% is not done


def bar(fraction: float, width: int = BAR_WIDTH) -> Text:
    """`████████▓▓▓▓`: done cells, then the cells still to go."""
    done = round(fraction * width)
    return Text.assemble(("█" * done, "green"), ("▓" * (width - done), "dim"))


def state_text(entry: Entry) -> Text:
    return Text(f"{ICONS[entry.state]} {entry.label}", style=STYLES[entry.state])


def passed_count(entries: list[Entry]) -> str:
    return f"{sum(e.state is Status.PASSED for e in entries)}/{len(entries)}"


def command(text: str) -> tuple[str, str]:
    return text, "bold"


# ------------------------------------------------------------------------------------------ status


def stage_counts(progress: Progress, stage) -> str:
    """`1/3 checkpoints passed, 2 stale`: the same count as the header's, per stage."""
    counts = f"{passed_count(progress.stage_entries(stage))} checkpoints passed"
    stale = progress.stage_count(stage, Status.STALE)
    return counts + (f", {stale} stale" if stale else "")


def stage_heading(progress: Progress, stage) -> Text:
    fraction = progress.stage_progress(stage)
    return Text.assemble(
        "🎯 ", (stage.name, "bold"), "  ", bar(fraction), f" {percent(fraction)}",
        (f"  {stage_counts(progress, stage)}", "dim"),
    )  # fmt: skip


def stage_table(progress: Progress, stage, wide: bool = True) -> Table:
    """One row per checkpoint; the capability column only when there is room for it (a wide terminal)."""
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for name in ("Checkpoint", "Module", "State"):
        table.add_column(name, no_wrap=True)
    table.add_column("Tests", justify="right", no_wrap=True)
    if wide:
        table.add_column("Capability")
    for entry in progress.stage_entries(stage):
        tests = f"{entry.tests_passed}/{entry.tests_total}" if entry.result else "-"
        name = f"{entry.checkpoint.id} {entry.checkpoint.name}"
        row = [name, entry.module.id, state_text(entry), tests]
        table.add_row(*row, *([entry.checkpoint.capability] if wide else []))
    return table


def position(progress: Progress) -> Text:
    entry = progress.next
    if entry is None:
        done = "🏆 Every checkpoint passed: you built a deep-learning framework from scratch."
        return Text(done, style="bold green")
    where = f"📍 You are at {entry.module.id} · {entry.module.title} ({entry.stage.name}), "
    where += f"checkpoint {entry.checkpoint.id} · {entry.checkpoint.name}: {entry.label}"
    if entry.reasons and entry.state is not Status.UNAVAILABLE:
        where += f" ({entry.reasons[0]})"
    return Text(where)


def next_step(progress: Progress) -> Text:
    entry = progress.next
    if entry is None:
        return Text("")
    if entry.state is Status.UNAVAILABLE:
        return Text(f"⏳ Next: {entry.module.id} is not yet available ({entry.reasons[0]}).")
    return Text.assemble("👉 Next: ", command(progress.next_command))


def header(progress: Progress) -> str:
    stale = sum(e.state is Status.STALE for e in progress.entries)
    return f"{progress.passed} of {len(progress.entries)} checkpoints passed" + (f", {stale} stale" if stale else "")


def status_view(progress: Progress, detailed: bool = False, width: int = 120) -> Group:
    parts: list = [Text.assemble(("TinyTorch", "bold"), f" · {header(progress)}"), ""]
    for stage in progress.course.stages:
        capability = Text(f"   {stage.capability}", style="italic")
        parts += [stage_heading(progress, stage), capability, stage_table(progress, stage, width >= WIDE), ""]
    if detailed:
        parts += [details(progress), ""]
    return Group(*parts, position(progress), next_step(progress))


def details(progress: Progress) -> Tree:
    """Each checkpoint's tests with their last outcome and duration; what changed for stale ones."""
    tree = Tree(Text("Details", style="bold"))
    for entry in progress.entries:
        if entry.state is Status.UNAVAILABLE:
            continue
        head = Text.assemble(f"{entry.checkpoint.id} {entry.checkpoint.name} ", state_text(entry))
        if entry.last_run:
            head.append(f"  last run {entry.last_run}", style="dim")
            if entry.result.duration is not None:
                head.append(f" in {entry.result.duration:.2f} s", style="dim")
        node = tree.add(head)
        for reason in entry.reasons:
            node.add(Text(f"↻ {reason}", style="yellow"))
        for test in entry.result.tests if entry.result else ():
            line = Text(f"{TEST_MARKS[test.outcome]} {test.name}  {test.outcome}  {test.duration:.3f} s")
            if test.failed and test.message:
                line.append(f"  {test.message.splitlines()[0]}", style="red")
            node.add(line)
    return tree


# ---------------------------------------------------------------------------------------- timeline


def timeline_tree(progress: Progress, trophies: Sequence[MilestoneState] = ()) -> Group:
    """Stages and modules; each milestone (🏆) hangs under the checkpoint that unlocks it; then the next step."""
    tree = Tree(Text(f"🚀 Your TinyTorch journey · {header(progress)}", style="bold"))
    for stage in progress.course.stages:
        heading = f" · {percent(progress.stage_progress(stage))} · "
        node = tree.add(Text.assemble("🎯 ", (stage.name, "bold"), heading, (stage.capability, "italic")))
        for entry in progress.stage_entries(stage):
            c, m = entry.checkpoint, entry.module
            branch = node.add(Text.assemble(
                f"{ICONS[entry.state]} {m.id} {m.title} → checkpoint {c.id} {c.name} · ",
                (entry.label, STYLES[entry.state]), f" · {c.capability}",
            ))  # fmt: skip
            for trophy in (t for t in trophies if t.unlocked_by == c):
                branch.add(trophy_text(trophy))
    return Group(tree, next_step(progress))


def trophy_text(trophy: MilestoneState) -> Text:
    """`🏆 milestone 03 · 1986 Backpropagation · achieved: 98.6 % test accuracy`."""
    m = trophy.milestone
    return Text.assemble(f"🏆 milestone {m.number} · {m.year} {m.title} · ",
                         (trophy.label, MILESTONE_STYLES[trophy.state]))  # fmt: skip


def timeline_horizontal(progress: Progress) -> Group:
    lines: list = []
    for stage in progress.course.stages:
        fraction = progress.stage_progress(stage)
        lines.append(Text.assemble("🎯 ", (stage.name, "bold"), " ", bar(fraction), f" {percent(fraction)}",
                                   (f"  {stage_counts(progress, stage)}", "dim")))  # fmt: skip
        chain = Text("   ")
        for number, entry in enumerate(progress.stage_entries(stage)):
            if number:
                chain.append(" ── ", style="dim")
            shown = entry.label if entry.state is Status.STALE else percent(entry.progress)  # 0% is not "stale"
            label = f"{ICONS[entry.state]} {entry.module.title} {shown}"
            chain.append(label, style=STYLES[entry.state])
        lines += [chain, ""]
    return Group(*lines, next_step(progress))


# ------------------------------------------------------------------------------------------ unlock


def unlock_view(progress: Progress, needs: list[str]) -> Group:
    """The checkpoint the next step unlocks (the same one `next_command` names), and what it needs."""
    entry = progress.target
    if entry is None:
        return Group(position(progress))
    c, m = entry.checkpoint, entry.module
    if entry.state is Status.UNAVAILABLE:
        return Group(Text(f"⏳ Next to unlock: checkpoint {c.id} · {c.name} ({m.id}), which is not yet "
                          f"available: {entry.reasons[0]}."))  # fmt: skip
    lines = [
        Text.assemble("🔓 Next to unlock: ", (f"checkpoint {c.id} · {c.name}", "bold"),
                      f" ({m.id} · {m.title}, {entry.stage.name})"),
        Text(f"   {c.capability}", style="italic"),
        Text.assemble("   State: ", state_text(entry)),
    ]  # fmt: skip
    lines += [Text(f"   ↻ {reason}", style="yellow") for reason in entry.reasons]
    earlier = progress.entries[: progress.entries.index(entry)]
    for state, words in ((Status.PASSED, "passed"), (Status.STALE, "stale: re-checked on the way")):
        ids = [e.checkpoint.id for e in earlier if e.state is state]
        if ids:
            span = f"checkpoint {ids[0]}" if len(ids) == 1 else f"checkpoints {', '.join(ids)}"
            lines.append(Text(f"   {ICONS[state]} {span} {words}"))
    lines.append(Text("   Needs:"))
    lines += [Text(f"     • {need}") for need in needs]
    lines.append(Text.assemble("   👉 Run: ", command(progress.next_command)))
    return Group(*lines)


# ------------------------------------------------------------------------------ after a build runs


def celebration(progress: Progress, entry: Entry, title: str = "Module complete") -> Panel:
    c, stage = entry.checkpoint, entry.stage
    stage_entries = progress.stage_entries(stage)
    fraction = progress.stage_progress(stage)
    lines = [
        Text(f"🎉 Checkpoint {c.id} · {c.name} passed (module {entry.module.id}): "
             f"{entry.tests_passed}/{entry.tests_total} tests", style="bold green"),
        Text.assemble("🔓 Capability unlocked: ", (c.capability, "bold")),
        Text.assemble(f"🎯 {stage.name} ", bar(fraction), f" {percent(fraction)}  "
                      f"({passed_count(stage_entries)} checkpoints)"),
    ]  # fmt: skip
    if all(e.state is Status.PASSED for e in stage_entries):
        lines.append(Text(f"🏆 Stage complete: {stage.name} — {stage.capability}", style="bold"))
    following = progress.next
    if following is None:
        lines.append(Text("🏆 Every checkpoint passed: the whole course is done.", style="bold"))
    else:
        module = following.module
        if following.state is Status.UNAVAILABLE:
            lines.append(Text(f"⏭  Next module: {module.id} · {module.title} (not yet available)"))
        else:
            capability = following.checkpoint.capability
            lines.append(Text(f"⏭  Next module: {module.id} · {module.title} — {capability}"))
            lines.append(Text.assemble("👉 Run: ", command(progress.next_command)))
    return Panel(Group(*lines), title=title, border_style="green", expand=False)


def place_text(label: str, place: Place) -> Text:
    text = Text.assemble(f"     {label} ", (f"{place.path}:{place.line}", "bold"))
    if place.what:
        text.append(f" (in {place.what})")
    if place.code:
        text.append(f"\n         {place.code}", style="dim")
    return text


def failure_report(entry: Entry, found: list[Failure], blocked_target: Entry | None = None) -> Group:
    c = entry.checkpoint
    headline = (f"❌ Checkpoint {c.id} · {c.name} failed (module {entry.module.id}): "
                f"{entry.tests_passed}/{entry.tests_total} tests passed")  # fmt: skip
    if entry.result and entry.result.note:
        headline += f" ({entry.result.note})"
    lines = [Text(headline, style="bold red")]
    if blocked_target is not None:
        lines.append(Text(f"   It must pass before checkpoint {blocked_target.checkpoint.id} "
                          f"({blocked_target.module.id}) can run."))  # fmt: skip
    from tito.failures import grouped

    for group in grouped(found):
        failure, same = group[0], [f.test for f in group[1:]]
        lines.append(Text.assemble("   ✗ ", (failure.test, "bold")))
        if same:
            lines.append(Text(f"     and {len(same)} more failing the same way: {', '.join(same)}", style="dim"))
        message = [line for line in failure.message.splitlines() if line.strip()] or ["(no message)"]
        lines += [Text(f"       {line}", style="red") for line in message[:MESSAGE_LINES]]
        if len(message) > MESSAGE_LINES:
            lines.append(Text(f"       … {len(message) - MESSAGE_LINES} more lines", style="dim"))
        lines += [place_text("look at", place) for place in failure.look_at]
        if not failure.look_at:
            lines.append(Text("     look at: no lesson line found; the test's line below shows what it expected",
                              style="dim"))  # fmt: skip
        if failure.test_place is not None:
            lines.append(place_text("test   ", failure.test_place))
    again = complete_command(entry.module)
    lines.append(Text.assemble("   Fix the lesson, then run ", command(again), " again."))
    return Group(*lines)


def export_failure(error: ExportError, place: Place | None, module: Module) -> Group:
    lines = [
        Text("❌ Export failed: the lesson could not be turned into package code.", style="bold red"),
        Text(f"   {error}", style="red"),
    ]
    if place is not None and place.code:
        lines.append(Text(f"       {place.code}", style="dim"))
    lines.append(Text.assemble(f"   The previous export was left untouched. Fix {error.path} and run ",
                               command(complete_command(module)), " again."))  # fmt: skip
    return Group(*lines)


def run_summary(result: CheckpointResult) -> Table:
    table = Table(title=f"checkpoint {result.checkpoint} · {result.name}", title_justify="left", box=None)
    table.add_column("Test")
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Time", justify="right", no_wrap=True)
    for test in result.tests:
        mark = ICONS.get(test.outcome, "➖")
        table.add_row(test.name, f"{mark} {test.outcome}", f"{test.duration:.3f} s")
    return table


# -------------------------------------------------------------------------------------- milestones


def milestone_table(trophies: Sequence[MilestoneState]) -> Table:
    grid = Table(title="🏆 Milestones: history re-run on your own framework", title_justify="left")
    for column in ("milestone", "year", "title", "unlocked by", "state"):
        grid.add_column(column)
    for trophy in trophies:
        m, unlock = trophy.milestone, trophy.unlocked_by
        grid.add_row(m.id, str(m.year), f"{m.title} ({m.who})", f"checkpoint {unlock.id}" if unlock else "-",
                     Text(trophy.label, style=MILESTONE_STYLES[trophy.state]))  # fmt: skip
    grid.caption = "tito milestone run NAME [--quick]   (NAME: 03_backprop, backprop, 03, 3 or 1986)"
    return grid


def milestone_locked(trophy: MilestoneState, next_command: str) -> Group:
    """What a locked milestone needs and the command that gets the learner there."""
    m = trophy.milestone
    lines = [Text.assemble("🔒 ", (f"Milestone {m.number} · {m.year} {m.title}", "bold"),
                           f" uses checkpoints {', '.join(c.id for c in trophy.needs)}; not passed yet:")]  # fmt: skip
    lines += [Text.assemble(f"   {e.checkpoint.id} {e.checkpoint.name} ({e.module.id}) · ", state_text(e))
              for e in trophy.missing]  # fmt: skip
    lines.append(Text.assemble("   👉 Run: ", command(next_command)))
    return Group(*lines)


# ------------------------------------------------------------------------------------------ grading

GRADE_ICONS = {
    Status.PASSED: "✅", Status.FAILED: "❌", Status.TIMEOUT: "⏱", Status.ERROR: "💥",
    Status.LOCKED: "🔒", Status.MISSING: "∅", Status.SYNTAX_ERROR: "✖",
}  # fmt: skip
GRADE_LEGEND = ("✅ passed · ❌ failed · ⏱ timeout · 💥 error · 🔒 locked by an earlier checkpoint · "
                "∅ lesson missing · ✖ lesson does not compile")  # fmt: skip
GRID_COLUMN = 10  # characters one checkpoint column takes in the full grid ("✅ 13/13" and its padding)
NAME_COLUMN = 16


@contextmanager
def grade_progress(out: Console, total: int):
    """A progress bar over the learners (done / total, elapsed, time left); yields the callback that
    marks one learner done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("learners graded", total=total)

        def advance(run) -> None:
            progress.console.print(Text(f"  ran {run.name} in {run.duration:.0f} s" + (" (time limit)" if run.timed_out else "")))
            progress.advance(task)

        yield advance


def _cell_text(cell) -> str:
    counted = cell.status in RUN_STATUSES
    return f"{GRADE_ICONS[cell.status]} {cell.passed}/{cell.total}" if counted else GRADE_ICONS[cell.status]


def grade_table(grades: list, course, width: int) -> Table:
    """Learner x checkpoint when it fits in `width` columns, else learner x stage (the full grid is in
    the JSON report)."""
    ids = [c.id for c in course.checkpoints if any(c.id in g.cells for g in grades)]
    grid = Table(title="TinyTorch grades", title_justify="left", caption=GRADE_LEGEND, caption_justify="left")
    grid.add_column("learner", no_wrap=True, max_width=NAME_COLUMN, overflow="ellipsis")
    if NAME_COLUMN + GRID_COLUMN * (len(ids) + 1) <= width:
        for cid in ids:
            grid.add_column(cid, justify="center", no_wrap=True)
        rows = [[_cell_text(g.cells[cid]) if cid in g.cells else "" for cid in ids] for g in grades]
    else:
        stages = [s for s in course.stages if any(m.checkpoint.id in ids for m in s.modules)]
        for stage in stages:
            grid.add_column(stage.name, justify="center")
        rows = [[_stage_text(g, stage) for stage in stages] for g in grades]
    grid.add_column("score", justify="right", no_wrap=True)
    for g, row in zip(grades, rows):
        score = "💥 broken" if g.broken else f"{g.score:g}/{g.max_score}"
        grid.add_row(Text(g.learner), *row, score)
    return grid


def _stage_text(grade, stage) -> str:
    """`✅ 3/3` when every checkpoint of the stage passed, else the first status that did not and the count."""
    cells = [grade.cells[m.checkpoint.id] for m in stage.modules if m.checkpoint.id in grade.cells]
    if not cells:
        return ""
    passed = sum(c.status is Status.PASSED for c in cells)
    worst = next((c.status for c in cells if c.status is not Status.PASSED), Status.PASSED)
    return f"{GRADE_ICONS[worst]} {passed}/{len(cells)}"


def grade_notes(grades: list) -> list[Text]:
    """One line per thing an instructor should read: a broken run, a problem, a failed checkpoint's note."""
    lines = []
    for g in grades:
        notes = ([f"grading broke: {g.broken}"] if g.broken else []) + g.problems
        notes += [f"checkpoint {cid}: {c.note}" for cid, c in g.cells.items()
                  if c.note and c.status in RUN_STATUSES]  # fmt: skip
        lines += [Text(f"  {g.learner}: {note}") for note in notes]
    return lines
