"""tito: the TinyTorch command line -- where you are in the course, and completing modules.

Owns the commands: parsing arguments, running doit, and mapping what tito.state and tito.complete
return to a view (tito.views) and an exit code. It decides nothing about the course itself.

    tito checkpoint status [--detailed] [--json]   tito checkpoint timeline [--horizontal]
    tito checkpoint test [NN]                      tito checkpoint run NN [--verbose]
    tito checkpoint unlock                         tito module complete NAME [--skip-test]
    tito hint NAME [--level N]
    tito milestone list                            tito milestone run NAME [--quick]
    tito watch [NAME]

Reading commands (status, timeline, unlock) only read doit's database and build/checkpoints/*.json
(tito.state); they import neither NumPy nor doit. Commands that build run doit in a subprocess from
the course root, streaming its output; dodo.py takes build/.lock for every such run, so tito itself
never holds the lock while doit runs (that would deadlock). `checkpoint run`, which runs pytest
directly without doit, takes the lock itself.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from tito import __version__, autograder, grade, state, terminal
from tito.lock import EXIT_BUSY
from tito.manifest import Course, Module, UnknownName, load
from tito.results import Status

OK, FAILED, USAGE, ENVIRONMENT = 0, 1, 2, 3
CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away

EPILOG = """\
exit codes:
  0  success (test, run, complete: the checkpoint passed)
  1  a checkpoint failed, or a lesson could not be exported; a milestone missed its goal or is
     still locked (it names the checkpoints it needs and the command to run)
  2  usage error: unknown command, module name or checkpoint id
  3  environment problem: the build lock timed out (TINYTORCH_LOCK_TIMEOUT), the module is not yet
     available in this course, no course was found, or doit itself failed

NAME accepts 09_autograd, autograd, 09 or 9 (module numbers). NN accepts 8 or 08 (checkpoint numbers:
checkpoint 08 belongs to module 09), the checkpoint's name (differentiation) or its module's name.
"""


class Problem(Exception):
    """A condition reported as one line and an exit code, never as a traceback."""

    def __init__(self, message: str, code: int = ENVIRONMENT):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------- helpers


def out():
    from tito.views import console

    return console()


def warn(progress: state.Progress) -> None:
    for line in progress.warnings:
        print(line, file=sys.stderr)


def require_available(course: Course, module: Module) -> None:
    missing = course.missing_file(module)
    if missing is not None:
        raise Problem(f"Module {module.id} is not yet available: {missing.as_posix()} does not exist.")


def run_doit(course: Course, *args: str, quiet: bool = False) -> tuple[int, str]:
    """Run `python -m doit ARGS` in the course root, echoing its output as it comes (unless quiet)."""
    from tito import reporter

    env = dict(os.environ, PYTHONUNBUFFERED="1", **{reporter.ENVIRONMENT: reporter.HEADINGS})
    command = [sys.executable, "-m", "doit", *args]
    process = subprocess.Popen(
        command, cwd=course.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    stdout = terminal.safe_stream()
    try:
        for line in process.stdout:
            lines.append(line)
            if not quiet:
                stdout.write(line)
                stdout.flush()
    finally:
        returncode = process.wait()
    output = "".join(lines)
    if returncode == EXIT_BUSY:
        raise Problem(f"tito: gave up waiting for another TinyTorch build ({course.relative(course.build.lock)}); "
                      "try again when it is done.")  # fmt: skip
    return returncode, output


# --------------------------------------------------------------------------------- reading commands


def cmd_status(args, course: Course) -> int:
    progress = state.compute(course)
    warn(progress)
    if args.json:
        print(json.dumps(progress.as_json(), indent=2))
        return OK
    from tito.views import status_view

    out().print(status_view(progress, detailed=args.detailed, width=out().width))
    return OK


def cmd_timeline(args, course: Course) -> int:
    progress = state.compute(course)
    warn(progress)
    from tito import milestones
    from tito.views import timeline_horizontal, timeline_tree

    if args.horizontal:
        out().print(timeline_horizontal(progress))
    else:
        out().print(timeline_tree(progress, milestones.states(progress)))
    return OK


def cmd_milestone_list(args, course: Course) -> int:
    from tito import milestones
    from tito.views import milestone_table

    progress = state.compute(course)
    warn(progress)
    out().print(milestone_table(milestones.states(progress)))
    return OK


def cmd_milestone_run(args, course: Course) -> int:
    """Run one milestone when the checkpoints it uses have passed; otherwise say what it needs."""
    from tito import milestones
    from tito.views import milestone_locked

    progress = state.compute(course)
    warn(progress)
    milestone = course.find_milestone(args.name)
    trophy = next(t for t in milestones.states(progress) if t.milestone == milestone)
    if trophy.missing:
        first = trophy.missing[0]
        todo = state.test_command(first) if first.state == "stale" else state.complete_command(first.module)
        out().print(milestone_locked(trophy, todo))
        return FAILED
    return OK if milestones.run(milestone, course, quick=args.quick) == 0 else FAILED


def cmd_unlock(args, course: Course) -> int:
    from tito import deps
    from tito.views import unlock_view

    progress = state.compute(course)
    warn(progress)
    entry = progress.target
    needs = []
    if entry is not None and entry.state is not Status.UNAVAILABLE:
        module, checkpoint = entry.module, entry.checkpoint
        exported = ", ".join(p.as_posix() for p in module.exported_files)
        needs.append(f"your lesson {module.source.as_posix()} exported to {exported}")
        used = [p for p in deps.checkpoint_file_deps(course, checkpoint)[1:]
                if p not in {f.as_posix() for f in module.exported_files}]  # fmt: skip
        if used:
            needs.append(f"the earlier modules it builds on: {', '.join(used)}")
        tests = f"all {entry.tests_total} tests" if entry.result else "every test"  # cases, as status counts
        needs.append(f"{tests} of {checkpoint.file.as_posix()} passing")
    out().print(unlock_view(progress, needs))
    return OK


# ---------------------------------------------------------------------------------- building commands


def through_graph(course: Course, module: Module, title: str = "Module complete") -> int:
    """`doit checkpoint:NN` (exports and earlier checkpoints as needed), then the celebration or the report."""
    from tito import complete

    require_available(course, module)
    checkpoint = module.checkpoint
    forget = complete.unrecorded(course, module)
    if forget:
        run_doit(course, "forget", *forget, quiet=True)
    out().print(f"[bold]Running checkpoint {checkpoint.id} · {checkpoint.name}[/] through the task graph "
                f"(exports and earlier checkpoints as needed)…")  # fmt: skip
    returncode, _ = run_doit(course, checkpoint.task)
    print()
    progress, outcome = complete.after_build(course, module, returncode)
    warn(progress)
    return show(course, module, outcome, progress, title)


def show(course: Course, module: Module, outcome, progress: state.Progress | None = None, title: str = "") -> int:
    """Print what a tito.complete outcome means to the learner; its exit code."""
    from tito import complete, failures, views

    checkpoint = module.checkpoint
    if isinstance(outcome, complete.Passed):
        out().print(views.celebration(progress, outcome.entry, title))
        return OK
    if isinstance(outcome, complete.ExportFailed):
        out().print(views.export_failure(outcome.error, failures.error_place(course, outcome.error), module))
        return FAILED
    if isinstance(outcome, complete.CheckpointFailed):
        found = failures.failures(course, outcome.culprit)
        out().print(views.failure_report(outcome.culprit, found, blocked_target=outcome.blocked_target))
        return FAILED
    if isinstance(outcome, complete.PassedButLocked):
        target, culprit = outcome.target, outcome.culprit
        out().print(f"✅ Checkpoint {checkpoint.id} · {checkpoint.name} passed ({target.tests_passed}/"
                    f"{target.tests_total} tests), but it stays locked: checkpoint {culprit.checkpoint.id} "
                    f"before it is not yet available ({culprit.reasons[0]}).")  # fmt: skip
        return OK
    if isinstance(outcome, complete.DoitStopped):
        raise Problem(f"tito: doit stopped (exit {outcome.returncode}) {outcome.during}; see its output above.")
    culprit = outcome.culprit  # complete.NotUpToDate
    reasons = "; ".join(culprit.reasons) or "its inputs changed during the run"
    out().print(f"Checkpoint {culprit.checkpoint.id} is {culprit.label}: {reasons}. "
                f"Run `{state.complete_command(module)}` again.")  # fmt: skip
    return FAILED


def export_through_graph(course: Course, module: Module, tasks: list[str], quiet: bool) -> int | None:
    """Run the export tasks; None when they succeeded, else the exit code after the report."""
    from tito import complete, failures

    returncode, output = run_doit(course, *tasks, quiet=quiet)
    error = failures.export_problem(course, module) if returncode else None
    outcome = complete.export_outcome(returncode, error, module)
    if outcome is None:
        return None
    if quiet and isinstance(outcome, complete.DoitStopped):
        print(output, end="")  # what doit said is the only clue
    return show(course, module, outcome)


def cmd_complete(args, course: Course) -> int:
    module = course.find_module(args.name)
    if not args.skip_test:
        return through_graph(course, module)
    require_available(course, module)
    code = export_through_graph(course, module, [module.export_task], quiet=False)
    if code is not None:
        return code
    exported = ", ".join(p.as_posix() for p in module.exported_files)
    out().print(f"✅ Exported {module.source.as_posix()} → {exported} (tests skipped: run "
                f"`{state.complete_command(module)}` to unlock checkpoint {module.checkpoint.id}).")  # fmt: skip
    return OK


def cmd_test(args, course: Course) -> int:
    if args.checkpoint is not None:
        module = course.module_of(course.find_checkpoint(args.checkpoint))
    else:
        progress = state.compute(course)
        entry = progress.test_target
        if entry is None:
            from tito.views import position

            out().print(position(progress))
            following = progress.next
            if following is not None:  # only checkpoints this copy of the course does not have are left
                out().print(f"Every available checkpoint has passed; {following.title} is not yet available.")
            return OK
        module = entry.module
    return through_graph(course, module, title="Checkpoint passed")


def cmd_run(args, course: Course) -> int:
    """One checkpoint directly (no doit), after exporting the lessons it uses *through doit*.

    The export goes through the graph (`doit export:...`) rather than calling export_module here,
    so doit's database records the exports and `status` stays truthful: a lesson exported behind
    doit's back would look "changed, not yet exported" forever.
    """
    from tito import deps, failures, lock, runner, views

    checkpoint = course.find_checkpoint(args.checkpoint)
    module = course.module_of(checkpoint)
    require_available(course, module)
    used = {state.exporting_module(course, path) for path in deps.checkpoint_file_deps(course, checkpoint)}
    used.add(module)
    tasks = [m.export_task for m in course.modules if m in used and course.available(m)]
    code = export_through_graph(course, module, tasks, quiet=True)
    if code is not None:
        return code
    try:
        lock.hold(course)
    except lock.LockTimeout as error:
        raise Problem(f"tito: {error}") from None
    if args.verbose:
        result = runner.run(course, checkpoint, live=True)
    else:
        with out().status(f"Running checkpoint {checkpoint.id} · {checkpoint.name}…"):
            result = runner.run(course, checkpoint, live=False)
        out().print(views.run_summary(result))
    progress = state.compute(course)
    entry = progress.entry(checkpoint)
    if not result.passed:
        out().print(views.failure_report(entry, failures.failures(course, entry)))
        return FAILED
    out().print(f"✅ Checkpoint {checkpoint.id} · {checkpoint.name} passed: "
                f"{entry.tests_passed}/{entry.tests_total} tests.")  # fmt: skip
    if entry.state is not Status.PASSED:
        out().print(f"   Status shows it as {entry.label} ({'; '.join(entry.reasons)}): run "
                    f"`{state.test_command(entry)}` to record it in the task graph.")  # fmt: skip
    return OK


def cmd_hint(args, course: Course) -> int:
    """One level of an exercise's hints; the first guides, each next one says more."""
    from tito import hints

    try:
        exercise = hints.find(course, args.name)
    except hints.NoSuchExercise as error:
        raise Problem(str(error), USAGE) from None
    count = len(exercise.levels)
    if not 1 <= args.level <= count:
        raise Problem(f"{exercise.name} has hint levels 1 to {count}, not {args.level}.", USAGE)
    print(f"{exercise.name} ({exercise.lesson.as_posix()}:{exercise.line}), hint {args.level} of {count}:")
    print(f"  {exercise.levels[args.level - 1]}")
    if args.level < count:
        print(f"Still stuck? `tito hint {exercise.name} --level {args.level + 1}`")
    return OK


def cmd_watch(args, course: Course) -> int:
    from tito import watch

    if args.name is None:
        entry = state.compute(course).next
        module = entry.module if entry is not None else course.modules[-1]
    else:
        module = course.find_module(args.name)
    require_available(course, module)
    return watch.watch(course, module, out())


# ------------------------------------------------------------------------------------------ parsing


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="tito", description="TinyTorch: see where you are in the course and complete modules.",
        epilog=EPILOG, formatter_class=formatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"tito {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="{checkpoint,module,milestone,watch,grade,autograder,hint}")

    checkpoint = groups.add_parser(
        "checkpoint", help="progress and checkpoint runs", epilog=EPILOG, formatter_class=formatter
    )
    commands = checkpoint.add_subparsers(dest="command", metavar="{status,timeline,test,run,unlock}")
    status = commands.add_parser("status", help="stages, checkpoint states and the next command (reads state only)",
                                 epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    status.add_argument("--detailed", action="store_true", help="every test's last outcome, and what changed")
    status.add_argument("--json", action="store_true", help="machine-readable state for scripts and graders")
    status.set_defaults(handler=cmd_status)
    timeline = commands.add_parser("timeline", help="your journey as a tree of stages and modules",
                                   epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    timeline.add_argument("--horizontal", action="store_true", help="one progress bar line per stage")
    timeline.set_defaults(handler=cmd_timeline)
    test = commands.add_parser("test", help="run a checkpoint through the task graph (default: the next one)",
                               epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    test.add_argument("checkpoint", nargs="?", metavar="NN", help="checkpoint 8, 08, differentiation, or its module: autograd, 09_autograd")
    test.set_defaults(handler=cmd_test)
    run = commands.add_parser("run", help="export its lessons, then run one checkpoint directly",
                              epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    run.add_argument("checkpoint", metavar="NN", help="checkpoint 8, 08, differentiation, or its module: autograd, 09_autograd")
    run.add_argument("--verbose", "-v", action="store_true", help="show each test live as it runs")
    run.set_defaults(handler=cmd_run)
    unlock = commands.add_parser("unlock", help="the next checkpoint to unlock, what it needs, what to run",
                                 epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    unlock.set_defaults(handler=cmd_unlock)
    checkpoint.set_defaults(handler=lambda args, course: _help(checkpoint))

    module = groups.add_parser("module", help="complete a module", epilog=EPILOG, formatter_class=formatter)
    module_commands = module.add_subparsers(dest="command", metavar="{complete}")
    complete = module_commands.add_parser(
        "complete", help="export the lesson, run its checkpoint, celebrate or explain",
        epilog=EPILOG, formatter_class=formatter,
    )  # fmt: skip
    complete.add_argument("name", metavar="NAME", help="09_autograd, autograd, 09 or 9")
    complete.add_argument("--skip-test", action="store_true", help="only export the lesson")
    complete.set_defaults(handler=cmd_complete)
    module.set_defaults(handler=lambda args, course: _help(module))

    milestone = groups.add_parser("milestone", help="history re-run on your framework: list, run",
                                  epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    milestone_commands = milestone.add_subparsers(dest="command", metavar="{list,run}")
    listing = milestone_commands.add_parser("list", help="each milestone, what unlocks it, its state and figure",
                                            epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    listing.set_defaults(handler=cmd_milestone_list)
    trial = milestone_commands.add_parser("run", help="run a milestone whose checkpoints have passed",
                                          epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    trial.add_argument("name", metavar="NAME", help="03_backprop, backprop, 03, 3 or the year 1986")
    trial.add_argument("--quick", action="store_true", help="the small run the test suite uses")
    trial.set_defaults(handler=cmd_milestone_run)
    milestone.set_defaults(handler=lambda args, root: _help(milestone))

    watching = groups.add_parser("watch", help="re-run a module's checkpoints each time you save a lesson",
                                 epilog=EPILOG, formatter_class=formatter)  # fmt: skip
    watching.add_argument("name", nargs="?", metavar="NAME", help="the module to watch (default: where you are)")
    watching.set_defaults(handler=cmd_watch)

    grading = groups.add_parser("grade", help="grade a class: each learner's checkpoints, in isolation",
                                description=grade.__doc__.split("\n\n")[0], formatter_class=formatter)  # fmt: skip
    grade.add_arguments(grading)
    grading.set_defaults(handler=grade.run)
    autograder.add_parser(groups, epilog=EPILOG, formatter_class=formatter)

    hint = groups.add_parser("hint", help="the next level of an exercise's hints: tito hint relu --level 2",
                             description=cmd_hint.__doc__, formatter_class=formatter)  # fmt: skip
    hint.add_argument("name", help="the exercise: a function, Class.method, or the class (ReLU, im2col, ...)")
    hint.add_argument("--level", type=int, default=1, help="which level to show (default 1)")
    hint.set_defaults(handler=cmd_hint)
    parser.set_defaults(handler=lambda args, course: _help(parser))
    return parser


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return USAGE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        course = load()  # found from the current folder (or TINYTORCH_ROOT); every path hangs off course.root
    except FileNotFoundError as error:
        print(f"tito: {error}", file=sys.stderr)
        return ENVIRONMENT
    try:
        return args.handler(args, course)
    except UnknownName as error:
        print(error, file=sys.stderr)
        print(f"Valid {error.kind} names: {', '.join(error.valid)}", file=sys.stderr)
        return USAGE
    except Problem as problem:
        print(problem, file=sys.stderr)
        return problem.code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tito ... | head -1`: the reader has gone, nobody is left to tell
        terminal.silence_closed_pipe()
        return CLOSED_PIPE
