"""`tito watch [MODULE]`: save a lesson, see its checkpoints re-run.

Owns the file watching and its live panel; what to re-run is the task graph's decision.

watchdog reports file events under modules/ and checkpoints/ (inotify on Linux, FSEvents on macOS);
a save of a `.py` file there runs `doit checkpoint:NN` for the watched module, and the task graph
decides what that means: the exports whose lessons changed, then every checkpoint up to NN whose
inputs changed. Up-to-date ones are skipped, so a save re-runs exactly the affected checkpoints.

On a terminal the states show in a live Rich panel; in a pipe each run prints the panel once.
Ctrl-C stops watching (exit 0). It is taken as a request, not as a KeyboardInterrupt: an exception
raised at an arbitrary line could leave the event queue's lock held by the main thread, and the
watchdog thread putting an event would then wait for it for ever (seen once: `tito watch` did not
exit within 10 s of SIGINT in the test suite). The handler only sets a flag and puts a wake-up into
a SimpleQueue, whose `put` is safe in a signal handler; the loop stops at the next point where it
looks. A second Ctrl-C is a KeyboardInterrupt as before (exit 130), for whoever will not wait.
"""
from __future__ import annotations

import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tito import failures, state
from tito.manifest import Course, Module

WATCHED = ("modules", "checkpoints")
SETTLE = 0.15  # s: editors write a file in several steps; wait for the burst to end before building


@dataclass
class Run:
    """What the panel shows about the last save and the build it caused."""

    saved: list[str] = field(default_factory=list)
    at: str = ""
    seconds: float = 0.0
    report: list[str] = field(default_factory=list)  # the quiet reporter's lines


def saved_sources(events: queue.SimpleQueue, first: str) -> list[str]:
    """The first saved path plus any that follow within SETTLE seconds (one build for the burst);
    a stop request's wake-up (None) ends the burst."""
    paths = [first]
    deadline = time.monotonic() + SETTLE
    while (left := deadline - time.monotonic()) > 0:
        try:
            path = events.get(timeout=left)
        except queue.Empty:
            break
        if path is None:
            break
        paths.append(path)
    return sorted(dict.fromkeys(paths))


def relevant(path: str, root: Path) -> str | None:
    """A lesson or checkpoint source, relative to the root; None for anything else (temp files…)."""
    candidate = Path(path)
    try:
        relative = candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    if relative.suffix != ".py" or relative.name.startswith((".", "#")) or relative.parts[0] not in WATCHED:
        return None
    return relative.as_posix()


def start_observer(root: Path, events: queue.SimpleQueue):
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Saved(FileSystemEventHandler):
        def on_any_event(self, event):
            if event.is_directory or event.event_type not in ("modified", "created", "moved", "closed"):
                return
            path = relevant(getattr(event, "dest_path", "") or event.src_path, root)
            if path is not None:
                events.put(path)

    observer = Observer()
    for folder in WATCHED:
        if (root / folder).is_dir():
            observer.schedule(Saved(), str(root / folder), recursive=True)
    observer.start()
    return observer


def panel(progress: state.Progress, module: Module, run: Run) -> Panel:
    """The watched module's checkpoint and every one before it, with the last save and its failures."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="ellipsis")
    from tito.views import state_text

    for entry in progress.entries[: module.index + 1]:
        tests = f"{entry.tests_passed}/{entry.tests_total}" if entry.result else "-"
        table.add_row(state_text(entry), tests, f"{entry.module.id} · checkpoint {entry.checkpoint.id}")
    lines: list = [table, ""]
    if run.saved:
        lines.append(Text(f"saved {', '.join(run.saved)} at {run.at}; build took {run.seconds:.1f} s", style="dim"))
        lines += [Text(line, overflow="ellipsis", no_wrap=True) for line in run.report]
    target = progress.entry(module.checkpoint)
    if target.state == "failed":
        found = failures.failures(progress.course, target)
        lines += [Text(failures.group_line(g), style="red", no_wrap=True, overflow="ellipsis")
                  for g in failures.grouped(found)]  # fmt: skip
    lines.append(Text("Save a lesson to re-run its checkpoints · Ctrl-C to stop", style="dim"))
    title = f"tito watch · module {module.id} · checkpoint {module.checkpoint.id}"
    return Panel(Group(*lines), title=title, title_align="left", border_style="cyan")


def build(course: Course, module: Module, saved: list[str]) -> Run:
    from tito.cli import run_doit

    started = time.monotonic()
    _, output = run_doit(course, module.checkpoint.task, quiet=True)
    report = [line for line in output.splitlines() if line.strip()]
    return Run(saved, time.strftime("%H:%M:%S"), time.monotonic() - started, report)


def watch(course: Course, module: Module, console) -> int:
    """Watch until Ctrl-C; each save builds `checkpoint:NN` of `module` and redraws the panel."""
    from rich.live import Live

    events: queue.SimpleQueue = queue.SimpleQueue()  # saved paths, and None: the wake-up of a stop request
    stop = threading.Event()

    def request_stop(signum, frame):  # Ctrl-C on a terminal also stops a running build (same process group)
        if stop.is_set():  # pressed again: whoever it is will not wait for the loop to look
            raise KeyboardInterrupt
        stop.set()
        events.put(None)

    observer = start_observer(course.root, events)
    run = Run()
    live = Live(console=console, auto_refresh=False) if console.is_terminal else None
    show = (lambda p: live.update(p, refresh=True)) if live else console.print
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        if live:
            live.start()
        show(panel(state.compute(course), module, run))
        while not stop.is_set():
            first = events.get()  # blocks until a save or a stop request
            if first is None:
                break
            saved = saved_sources(events, first)
            if stop.is_set():
                break
            show(Text(f"saved {', '.join(saved)}: running {module.checkpoint.task} through the task graph…"))
            run = build(course, module, saved)  # the build writes only outside WATCHED
            if not stop.is_set():  # a build Ctrl-C cut short has nothing to show
                show(panel(state.compute(course), module, run))
        return 0
    finally:
        signal.signal(signal.SIGINT, previous)
        if live:
            live.stop()
        observer.stop()
        observer.join()
        console.print("Stopped watching.")
