"""Grading a class: `tito grade SUBMISSIONS_DIR [--jobs N] [--json FILE] [--gradescope [DIR]]`.

Each subdirectory of SUBMISSIONS_DIR is one learner's work: a clone of their repository, or just
its `modules/` folder. This module runs the class: it checks the options before anything runs,
assembles one temporary course per learner -- the instructor's tooling, the instructor's
checkpoints instrumented to record evidence (tito.evidence), and only the learner's lesson folders
`modules/NN_name/` (regular files; symbolic links are ignored) -- and runs `python -m doit
--continue` there inside a sandbox (tito.sandbox). The instructor's own solution is run the same
way, twice, as the reference. Verdicts come from tito.scoring, once every run has ended; the
reports (tito.reports) are written after that, the table printed by tito.views.

A submission that is missing lessons, does not compile, hangs, floods, forks or runs out of memory
gets a row that says so; it never stops the run. See the README's threat model for what the
sandbox and the evidence stop, and what they cannot.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tito.manifest import BUILD, MANIFEST, Course, Module

TIMEOUT = 900.0  # seconds for one learner's whole build
TEST_TIMEOUT = 120.0  # seconds for one test
MEMORY_MB = 4096  # address space of each process
TOOLING = ("checkpoints", "dodo.py", "pyproject.toml", "tinytorch", "tito")
WRITABLE = ("tinytorch/core",)  # where the learner's exported code goes; the rest of the tooling is read-only
EVIDENCE = BUILD / "evidence"
SKIP = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
REFERENCE_RUNS = 2  # of the instructor's solution: values that differ between them are volatile
REFERENCE_TIME = 3  # times a learner's time limit: the instructor's code is trusted, a busy machine is not
USAGE, BROKEN = 2, 3  # exit codes besides 0
GRADESCOPE_DEFAULT = object()  # --gradescope without DIR: build/grade/gradescope of the course


class GradingBroken(RuntimeError):
    """The grading run cannot go on (the instructor's reference does not pass); the message says why."""


@dataclass(frozen=True)
class Options:
    jobs: int
    timeout: float
    test_timeout: float
    memory_mb: int
    sandbox: bool  # False only with --no-sandbox

    def limits(self):
        from tito.sandbox import Limits

        return Limits(self.timeout, self.memory_mb)


ONE_LEARNER = Options(jobs=1, timeout=TIMEOUT, test_timeout=TEST_TIMEOUT, memory_mb=MEMORY_MB, sandbox=True)


# --- one run in a sandbox --------------------------------------------------------------------------


def graded(course: Course) -> list[Module]:
    """The modules this course grades: those whose lesson and checkpoint the instructor has."""
    return [m for m in course.modules if course.available(m)]


def learner_modules(submission: Path) -> Path:
    """A repository's modules/ folder, or the submission itself when it holds the lesson folders."""
    return submission / "modules" if (submission / "modules").is_dir() else submission


def _copy_files(source: Path, destination: Path) -> None:
    """Regular files only, recursively: caches and symbolic links (which could point anywhere) are skipped."""
    for path in sorted(source.iterdir()):
        if path.name in SKIP or path.is_symlink():
            continue
        if path.is_dir():
            _copy_files(path, destination / path.name)
        elif path.is_file():
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination / path.name)


def assemble(course: Course, modules: list[Module], lessons: Path, work: Path) -> dict[str, str]:
    """Build a temporary course in `work`: the instructor's tooling and instrumented checkpoints,
    the lesson folders found in `lessons`.

    Returns the lessons that cannot be built, by module id: "missing", or `path:line: syntax error: ...`.
    """
    from tito import evidence, release

    for relative in release.source_files(course):
        if relative.parts[0] in TOOLING or relative == MANIFEST:
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(course.root / relative, work / relative)
    for module in modules:
        test_file = work / module.checkpoint.file
        test_file.write_text(evidence.instrument(test_file.read_text(encoding="utf-8"), str(test_file)), "utf-8")
    problems = {}
    for module in modules:
        folder = lessons / module.id
        if folder.is_dir() and not folder.is_symlink():
            _copy_files(folder, work / "modules" / module.id)
        lesson = work / module.source
        if not lesson.is_file():
            problems[module.id] = "missing"
            continue
        try:
            compile(lesson.read_bytes(), module.source.as_posix(), "exec")
        except (SyntaxError, ValueError) as error:  # ValueError: null bytes
            line = getattr(error, "lineno", None)
            problems[module.id] = f"{module.source.as_posix()}:{line}: syntax error: {getattr(error, 'msg', error)}"
    return problems


def readonly_paths(work: Path) -> list[str]:
    """Everything of the instructor's in the temporary course, except the folders the build writes."""
    found = []
    for top in [*TOOLING, MANIFEST.as_posix()]:
        path = work / top
        if any(w.startswith(f"{top}/") for w in WRITABLE) and path.is_dir():
            found += [p.relative_to(work).as_posix() for p in path.iterdir()
                      if p.relative_to(work).as_posix() not in WRITABLE]  # fmt: skip
        elif path.exists():
            found.append(top)
    return found + [f"{w}/__init__.py" for w in WRITABLE if (work / w / "__init__.py").exists()]


def sandbox_env(work: Path, options: Options, threads: int) -> dict[str, str]:
    """The whole environment of a graded run: nothing of the instructor's leaks in."""
    from tito.runner import blas_threads

    bin_dir = Path(sys.executable).parent
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
        "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTEST_PLUGINS": "tito.evidence_plugin", "TITO_EVIDENCE_DIR": str(work / EVIDENCE),
        "TINYTORCH_TEST_TIMEOUT": f"{min(options.test_timeout, options.timeout):g}",
        "TINYTORCH_CHECKPOINT_TIMEOUT": f"{options.timeout:g}", "TINYTORCH_LOCK_TIMEOUT": "60",
        **blas_threads(threads),
    }  # fmt: skip


@dataclass
class Run:
    """One sandboxed run, as collected: nothing in it has been judged yet."""

    name: str
    problems: dict[str, str]
    collected: object  # tito.scoring.Collected
    output: str
    timed_out: bool
    duration: float
    broken: str = ""


def run_one(course: Course, modules: list[Module], name: str, lessons: Path, options: Options, isolation,
            threads: int) -> Run:  # fmt: skip
    """Assemble, run and collect one course; never raises for anything a submission does."""
    from tito import sandbox, scoring

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinytorch-grade-") as scratch:
        work = Path(scratch) / "course"
        work.mkdir()
        try:
            problems = assemble(course, modules, lessons, work)
        except OSError as error:  # an unreadable submission: a row saying so, not a crash
            return Run(name, {}, scoring.Collected({}, {}), "", False, 0.0, f"could not copy the submission: {error}")
        with sandbox.user() as uid:
            finished = sandbox.run([sys.executable, "-m", "doit", "--continue"], work, readonly_paths(work),
                                   sandbox_env(work, options, threads), options.limits(), isolation, uid)  # fmt: skip
        collected = scoring.collect(course.at(work), modules, EVIDENCE)
    return Run(name, problems, collected, finished.output, finished.timed_out, round(time.monotonic() - started, 1))


def _safely(function, name: str, *args) -> Run:
    """A run whose grading failed for a reason of the grader's own is a broken row, not a crash."""
    from tito import scoring

    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 -- reported per learner, and the exit code says so
        return Run(name, {}, scoring.Collected({}, {}), "", False, 0.0, f"{type(error).__name__}: {error}")


# --- the class -------------------------------------------------------------------------------------


def submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _complete(run: Run, modules: list[Module]) -> bool:
    """Whether a reference run recorded every checkpoint, each of its tests finished once."""
    recorded = [run.collected.evidence.get(m.checkpoint.id) for m in modules] if not run.broken else [None]
    return all(isinstance(r, dict) and r and all(t.ends == 1 for t in r.values()) for r in recorded)


def reference_run(modules: list[Module], run_reference) -> Run:
    """One run of the instructor's solution; tried again once when it did not pass everything (a
    timing check can fail on a machine that is briefly overloaded)."""
    first = run_reference()
    return first if _complete(first, modules) else run_reference()


def references(runs: list[Run], modules: list[Module]) -> dict:
    """Each checkpoint's Reference from the instructor's runs; GradingBroken when they did not pass."""
    from tito.evidence import Reference

    failed = next((run for run in runs if not _complete(run, modules)), None)
    if failed is not None:
        tail = (failed.broken or failed.output)[-1500:]
        raise GradingBroken(f"the instructor's solution did not pass every checkpoint in the sandbox:\n{tail}")
    first, second = runs[0].collected.evidence, runs[-1].collected.evidence
    return {m.checkpoint.id: Reference.from_runs(first[m.checkpoint.id], second[m.checkpoint.id]) for m in modules}


def _submit_references(pool, course: Course, modules: list[Module], options: Options, isolation, threads: int):
    def run_reference() -> Run:
        generous = replace(options, timeout=options.timeout * REFERENCE_TIME)
        return _safely(run_one, "reference", course, modules, "reference", course.root / "modules", generous, isolation,
                       threads)  # fmt: skip

    return [pool.submit(reference_run, modules, run_reference) for _ in range(REFERENCE_RUNS)]


def build_references(course: Course, modules: list[Module], options: Options, isolation) -> dict:
    """The instructor's reference for each checkpoint, on its own (for a Gradescope bundle)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=REFERENCE_RUNS) as pool:
        runs = _submit_references(pool, course, modules, options, isolation, 1)
        return references([f.result() for f in runs], modules)


def judged(run: Run, modules: list[Module], expected: dict, course: Course, timeout: float):
    """A run's Grade: its cells scored against the references."""
    from tito import runner, scoring

    points = {m.checkpoint.id: runner.count_tests(course.root / m.checkpoint.file) for m in modules}
    cells = scoring.score(modules, expected, points, run.collected, run.problems, run.timed_out, timeout)
    return scoring.Grade(run.name, cells if not run.broken else {}, scoring.describe_problems(run.problems),
                         run.duration, run.timed_out, run.output, run.broken)  # fmt: skip


def grade_one(course: Course, modules: list[Module], submission: Path, expected: dict, options: Options, isolation):
    """Grade one submission against references built before (tito.autograder: one learner per container)."""
    run = _safely(run_one, submission.name, course, modules, submission.name, learner_modules(submission), options,
                  isolation, 1)  # fmt: skip
    return judged(run, modules, expected, course, options.timeout)


def grade_class(course: Course, folder: Path, options: Options, isolation, on_done=None) -> list:
    """Grade every submission in `folder`, `options.jobs` at a time; Grades in learner order."""
    from concurrent.futures import ThreadPoolExecutor

    modules = graded(course)  # decided once, so that every learner is graded on the same checkpoints
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        reference_runs = _submit_references(pool, course, modules, options, isolation, threads)
        learner_runs = []
        for submission in submissions(folder):
            future = pool.submit(_safely, run_one, submission.name, course, modules, submission.name,
                                 learner_modules(submission), options, isolation, threads)  # fmt: skip
            if on_done:
                future.add_done_callback(lambda f: on_done(f.result()))
            learner_runs.append(future)
        try:
            expected = references([f.result() for f in reference_runs], modules)
        except GradingBroken:
            pool.shutdown(cancel_futures=True)
            raise
        runs = [f.result() for f in learner_runs]
    return [judged(run, modules, expected, course, options.timeout) for run in runs]


# --- command line ----------------------------------------------------------------------------------


def _given_path(text: str) -> Path:
    """A path typed by the user, resolved against their folder at once: `tito` later moves to the
    course root, where the defaults (relative paths) belong."""
    return Path(text).resolve()


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tito grade`; pair with `run(args, course)` (tito.cli's handler signature)."""
    add = parser.add_argument
    add("submissions", metavar="SUBMISSIONS_DIR", type=_given_path,
        help="one subdirectory per learner: their repository, or its modules/ folder")
    add("--jobs", "-j", type=_positive(int), default=max(1, (os.cpu_count() or 2) // 2),
        help="learners graded at once (default: half the CPU cores)")
    add("--json", type=_given_path, default=None, metavar="FILE",
        help=f"where to write the JSON report (default {BUILD}/grade/report.json)")
    add("--gradescope", type=_given_path, nargs="?", const=GRADESCOPE_DEFAULT, default=None, metavar="DIR",
        help=f"also write DIR/<learner>/results.json for Gradescope (default DIR {BUILD}/grade/gradescope)")
    add("--html", type=_given_path, default=None, metavar="FILE",
        help="also write the class dashboard, one self-contained HTML page (e.g. build/grade/dashboard.html)")
    add("--timeout", type=_positive(float), default=TIMEOUT,
        help=f"seconds for one learner's whole build (default {TIMEOUT:g})")
    add("--test-timeout", type=_positive(float), default=TEST_TIMEOUT,
        help=f"seconds for one test (default {TEST_TIMEOUT:g})")
    add("--memory-mb", type=_positive(int), default=MEMORY_MB,
        help=f"address-space limit of each process, in MiB (default {MEMORY_MB})")
    add("--no-sandbox", action="store_true",
        help="grade even when neither bubblewrap nor unshare can isolate a run (only for code you trust)")  # fmt: skip


def run(args: argparse.Namespace, course: Course) -> int:
    """`tito grade`: 0 once every submission is graded (whatever the grades), 2 for a usage error,
    3 when grading itself broke (for one learner, or the instructor's reference)."""
    from tito import reports, sandbox, views

    folder = args.submissions
    if not folder.is_dir() or not submissions(folder):
        print(f"tito grade: {folder} is not a folder of submissions (one subfolder per learner)", file=sys.stderr)
        return USAGE
    json_path = args.json or course.build.grade / "report.json"
    gradescope_dir = course.build.grade / "gradescope" if args.gradescope is GRADESCOPE_DEFAULT else args.gradescope
    try:
        html_path = args.html
        for target in filter(None, [json_path.parent, gradescope_dir, html_path and html_path.parent]):
            reports.check_writable(target)
    except reports.Unwritable as error:
        print(f"tito grade: {error}", file=sys.stderr)
        return USAGE
    isolation = sandbox.detect() if not args.no_sandbox else sandbox.Isolation.NONE
    if isolation is sandbox.Isolation.NONE and not args.no_sandbox:
        print("tito grade: no sandbox works here (install bubblewrap: apt-get install bubblewrap); "
              "--no-sandbox grades anyway, for code you trust", file=sys.stderr)  # fmt: skip
        return BROKEN
    options = Options(args.jobs, args.timeout, args.test_timeout, args.memory_mb, not args.no_sandbox)
    found = submissions(folder)
    out = views.console()
    out.print(f"Grading {len(found)} submissions from {folder}, {options.jobs} at a time")
    out.print(f"Isolation: {sandbox.describe(isolation)}")
    with views.grade_progress(out, len(found)) as advance:
        try:
            grades = grade_class(course, folder, options, isolation, on_done=advance)
        except GradingBroken as error:
            print(f"tito grade: {error}", file=sys.stderr)
            return BROKEN
    out.print(views.grade_table(grades, course, out.width))
    for line in views.grade_notes(grades):
        out.print(line)
    limits = {**vars(options), "isolation": isolation.value}
    graded_report = reports.write_all(grades, course, limits, json_path, gradescope_dir)
    out.print(f"JSON report: {json_path}")
    if html_path is not None:
        from tito import dashboard

        dashboard.write(html_path, graded_report, course)
        out.print(f"Class dashboard: {html_path}")
    if gradescope_dir is not None:
        out.print(f"Gradescope results: {gradescope_dir}/<learner>/results.json")
    broken = [g.learner for g in grades if g.broken]
    if broken:
        print(f"tito grade: grading broke for {', '.join(broken)} (see the report)", file=sys.stderr)
        return BROKEN
    return 0
