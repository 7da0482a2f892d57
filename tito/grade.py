"""Grading a class: `tito grade SUBMISSIONS_DIR [--jobs N] [--json FILE] [--gradescope [DIR]]`.

Each subdirectory of SUBMISSIONS_DIR is one learner's work: a clone of their repository, or just
its `modules/` folder. For each learner, in parallel:

1. a fresh temporary course is assembled from the *instructor's* tooling (dodo.py, tito/, the
   tinytorch package skeleton, checkpoints/, modules/course.toml) plus only the learner's lesson
   folders `modules/NN_name/` (regular files; symbolic links are ignored). The learner's own
   checkpoints, tooling and exported files are never used;
2. `python -m doit --continue` runs there in a subprocess: every lesson is exported, every
   checkpoint runs in course order (a failure locks the ones after it, as it does for the learner).
   Limits: a wall-clock timeout for the whole build (the process tree is killed when it expires),
   a per-test timeout (pytest-timeout), and an address-space limit (RLIMIT_AS) for every process;
3. the results are read back from build/checkpoints/*.json.

A submission that is missing lessons, does not compile, hangs or runs out of memory gets a row that
says so; it never stops the run. The limits protect the run against accidents, not against
deliberately malicious code: grade untrusted work inside a container.

Outputs: a Rich table (learner x checkpoint), a JSON report (default build/grade/report.json), and
with --gradescope one Gradescope `results.json` per learner, DIR/<learner>/results.json (default DIR
build/grade/gradescope): one test per checkpoint. A checkpoint is worth its number of test functions;
a learner earns that times the fraction of its test cases that passed (locked, missing: 0).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# tito.release, tito.runner and concurrent.futures are imported where grading uses them: `tito` parses
# this module's options on every start, and `tito checkpoint status` must stay fast.
from tito.manifest import BUILD, MANIFEST, Course, Module, load
from tito.results import RUN_STATUSES, CheckpointResult, InvalidResult, Status

TIMEOUT = 900.0  # seconds for one learner's whole build
TEST_TIMEOUT = 120.0  # seconds for one test
MEMORY_MB = 4096  # address space of each process
TOOLING = ("checkpoints", "dodo.py", "pyproject.toml", "tinytorch", "tito")
SKIP = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}

# Sets the memory limit in the child, then becomes the real command. (A preexec_fn would do the
# same, but it is not safe to fork with one while other threads run, and the grader runs threads.)
LIMITED = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); os.execv(sys.argv[2], sys.argv[2:])"
)

ICONS = {
    Status.PASSED: "✅", Status.FAILED: "❌", Status.TIMEOUT: "⏱", Status.ERROR: "💥",
    Status.LOCKED: "🔒", Status.MISSING: "∅", Status.SYNTAX_ERROR: "✖",
}  # fmt: skip
GRADESCOPE_DEFAULT = object()  # --gradescope without DIR: build/grade/gradescope of the course
LEGEND = ("✅ passed · ❌ failed · ⏱ timeout · 💥 error · 🔒 locked by an earlier checkpoint · "
          "∅ lesson missing · ✖ lesson does not compile")  # fmt: skip


@dataclass
class Cell:
    """One learner's result for one checkpoint.

    passed/total count test cases as pytest ran them (parametrised cases included); a checkpoint is
    worth `max_points`, its number of test functions, the same for every learner whatever ran.
    """

    status: Status  # a key of ICONS
    passed: int
    total: int
    max_points: int
    note: str = ""
    failed_tests: list[dict] = field(default_factory=list)  # {"name", "message"}

    @property
    def points(self) -> float:
        return round(self.max_points * self.passed / self.total, 2) if self.total else 0.0

    def short(self) -> str:
        counts = self.status in RUN_STATUSES
        return f"{ICONS[self.status]} {self.passed}/{self.total}" if counts else ICONS[self.status]


@dataclass
class Grade:
    learner: str
    cells: dict[str, Cell]  # checkpoint id -> cell
    problems: list[str]  # about the submission itself: missing lessons, syntax errors
    duration: float
    timed_out: bool
    log_tail: str = ""

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.cells.values()), 2)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.cells.values())


# --- one submission --------------------------------------------------------------------------------


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


def assemble(course: Course, modules: list[Module], submission: Path, work: Path) -> dict[str, str]:
    """Build the learner's temporary course in `work`.

    Returns the lessons that cannot be built, by module id: "missing", or `path:line: syntax error: ...`.
    """
    from tito import release

    for relative in release.source_files(course):
        if relative.parts[0] in TOOLING or relative == MANIFEST:
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(course.root / relative, work / relative)
    lessons = learner_modules(submission)
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


def describe_problems(problems: dict[str, str]) -> list[str]:
    missing = [module_id for module_id, problem in problems.items() if problem == "missing"]
    lines = [f"lessons missing: {', '.join(missing)}"] if missing else []
    return lines + [problem for problem in problems.values() if problem != "missing"]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (the checkpoint runner starts pytest in its own session)."""
    try:
        table = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = (int(n) for n in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    tree = _descendants(process.pid)
    for pid in [process.pid, *tree]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_build(work: Path, timeout: float, test_timeout: float, memory_mb: int, threads: int) -> tuple[str, bool]:
    """`python -m doit --continue` in `work` under the limits; (its output, whether it timed out)."""
    env = dict(
        os.environ,
        PYTHONPATH=str(work),
        PYTHONDONTWRITEBYTECODE="1",
        TINYTORCH_TEST_TIMEOUT=f"{min(test_timeout, timeout):g}",
        TINYTORCH_CHECKPOINT_TIMEOUT=f"{timeout:g}",
        TINYTORCH_LOCK_TIMEOUT="60",
        OPENBLAS_NUM_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    for name in ("TINYTORCH_ROOT", "TITO_RESULT_JSON"):
        env.pop(name, None)
    command = [sys.executable, "-c", LIMITED, str(memory_mb * 2**20), sys.executable, "-m", "doit", "--continue"]
    process = subprocess.Popen(
        command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
        return output, False
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a stray process still holds the pipe: give up on the output
            output = ""
        return output, True


def read_cells(course: Course, modules: list[Module], work: Path, problems: dict[str, str],
               timed_out: bool, timeout: float) -> dict[str, Cell]:  # fmt: skip
    """Each graded checkpoint's cell, from its JSON or from the reason it has none."""
    from tito import runner

    cells: dict[str, Cell] = {}
    blocked = False  # an earlier checkpoint did not pass
    for module in modules:
        checkpoint = module.checkpoint
        points = runner.count_tests(course.root / checkpoint.file)
        cell = _from_result(course.at(work).build.result(checkpoint), points)
        if cell is None:
            cell = _without_result(module, points, problems.get(module.id), blocked, timed_out, timeout)
            timed_out = timed_out and cell.status is not Status.TIMEOUT  # only the checkpoint running at the time
        cells[checkpoint.id] = cell
        blocked = blocked or cell.status is not Status.PASSED
    return cells


def _from_result(path: Path, points: int) -> Cell | None:
    try:
        result = CheckpointResult.read(path)
    except (OSError, InvalidResult):
        return None
    failed = [{"name": t.name, "message": t.message.strip()} for t in result.failed_tests]
    return Cell(result.status, result.tests_passed, result.tests_total, points, result.note or "", failed)


def _without_result(module: Module, points: int, problem: str | None,
                    blocked: bool, timed_out: bool, timeout: float) -> Cell:  # fmt: skip
    if problem == "missing":
        return Cell(Status.MISSING, 0, points, points, f"{module.source.as_posix()} was not submitted")
    if problem:
        return Cell(Status.SYNTAX_ERROR, 0, points, points, problem)
    if timed_out:
        note = f"the build was stopped after {timeout:g} s while checkpoint {module.checkpoint.id} ran"
        return Cell(Status.TIMEOUT, 0, points, points, note)
    if blocked:
        return Cell(Status.LOCKED, 0, points, points, "not run: an earlier checkpoint did not pass")
    return Cell(Status.ERROR, 0, points, points, "not run: the build stopped before it (see log_tail)")


def grade_one(course: Course, modules: list[Module], submission: Path, timeout: float = TIMEOUT,
              test_timeout: float = TEST_TIMEOUT, memory_mb: int = MEMORY_MB, threads: int = 1) -> Grade:  # fmt: skip
    """Grade one submission in its own temporary course on `modules` (see graded()); never raises
    for a bad submission."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinytorch-grade-") as scratch:
        work = Path(scratch)
        try:
            problems = assemble(course, modules, submission, work)
            notes = describe_problems(problems)
        except OSError as error:  # an unreadable submission: a row saying so, not a crash
            problems, notes = {}, [f"could not copy the submission: {error}"]
        output, timed_out = run_build(work, timeout, test_timeout, memory_mb, threads)
        cells = read_cells(course, modules, work, problems, timed_out, timeout)
    return Grade(submission.name, cells, notes, round(time.monotonic() - started, 1), timed_out, output[-4000:])


def submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade_all(course: Course, folder: Path, jobs: int = 1, on_done=None, **limits) -> list[Grade]:
    """Grade every submission in `folder`, `jobs` at a time; results in learner order."""
    from concurrent.futures import ThreadPoolExecutor

    modules = graded(course)  # decided once, so that every learner is graded on the same checkpoints
    found = submissions(folder)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(grade_one, course, modules, s, threads=threads, **limits) for s in found]
        if on_done:
            for future in futures:
                future.add_done_callback(lambda f: on_done(f.result()))
        return [f.result() for f in futures]


# --- reports ---------------------------------------------------------------------------------------


def report(grades: list[Grade], course: Course, limits: dict) -> dict:
    checkpoints = [c.id for c in course.checkpoints if any(c.id in g.cells for g in grades)]
    return {
        "checkpoints": checkpoints,
        "limits": limits,
        "learners": [
            {
                "learner": g.learner,
                "score": g.score,
                "max_score": g.max_score,
                "checkpoints_passed": sum(c.status is Status.PASSED for c in g.cells.values()),
                "duration": g.duration,
                "timed_out": g.timed_out,
                "problems": g.problems,
                "checkpoints": {cid: {**asdict(cell), "points": cell.points} for cid, cell in g.cells.items()},
                "log_tail": g.log_tail,
            }
            for g in grades
        ],
    }


def gradescope(grade: Grade, course: Course) -> dict:
    """Gradescope's results.json: one test per checkpoint, worth its number of test functions."""
    tests = []
    for checkpoint in course.checkpoints:
        cell = grade.cells.get(checkpoint.id)
        if cell is None:
            continue
        lines = [f"{cell.status}: {cell.passed}/{cell.total} test cases passed", *([cell.note] if cell.note else [])]
        lines += [f"✗ {t['name']}: {t['message']}" for t in cell.failed_tests]
        tests.append({
            "name": f"Checkpoint {checkpoint.id} · {checkpoint.name}: {checkpoint.capability}",
            "score": cell.points,
            "max_score": cell.max_points,
            "status": "passed" if cell.status is Status.PASSED else "failed",  # Gradescope's words
            "output": "\n".join(lines),
        })  # fmt: skip
    summary = "\n".join(grade.problems) or "All lessons were found and compiled."
    if grade.timed_out:
        summary += f"\nThe build was stopped after {grade.duration:.0f} s (time limit)."
    return {"score": grade.score, "output": summary, "tests": tests, "visibility": "visible"}


def table(grades: list[Grade], course: Course):
    from rich.table import Table

    ids = [c.id for c in course.checkpoints if any(c.id in g.cells for g in grades)]
    grid = Table(title="TinyTorch grades", title_justify="left", caption=LEGEND, caption_justify="left")
    grid.add_column("learner", no_wrap=True)
    for cid in ids:
        grid.add_column(cid, justify="center", no_wrap=True)
    grid.add_column("score", justify="right", no_wrap=True)
    for g in grades:
        cells = [g.cells[cid].short() if cid in g.cells else "" for cid in ids]
        grid.add_row(g.learner, *cells, f"{g.score:g}/{g.max_score}")
    return grid


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- command line ----------------------------------------------------------------------------------


def _given_path(text: str) -> Path:
    """A path typed by the user, resolved against their folder."""
    return Path(text).resolve()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tito grade`; pair with `run(args, course)` (tito.cli's handler signature)."""
    add = parser.add_argument
    add("submissions", metavar="SUBMISSIONS_DIR", type=_given_path,
        help="one subdirectory per learner: their repository, or its modules/ folder")
    add("--jobs", "-j", type=int, default=max(1, (os.cpu_count() or 2) // 2),
        help="learners graded at once (default: half the CPU cores)")
    add("--json", type=_given_path, default=None, metavar="FILE",
        help=f"where to write the JSON report (default {BUILD}/grade/report.json)")
    add("--gradescope", type=_given_path, nargs="?", const=GRADESCOPE_DEFAULT, default=None, metavar="DIR",
        help=f"also write DIR/<learner>/results.json for Gradescope (default DIR {BUILD}/grade/gradescope)")
    add("--html", type=_given_path, default=None, metavar="FILE",
        help=f"also write the class dashboard, one self-contained HTML page (e.g. {BUILD}/grade/dashboard.html)")
    add("--timeout", type=float, default=TIMEOUT, help=f"seconds for one learner's whole build (default {TIMEOUT:g})")
    add("--test-timeout", type=float, default=TEST_TIMEOUT, help=f"seconds for one test (default {TEST_TIMEOUT:g})")
    add("--memory-mb", type=int, default=MEMORY_MB,
        help=f"address-space limit of each process, in MiB (default {MEMORY_MB})")  # fmt: skip


def run(args: argparse.Namespace, course: Course) -> int:
    """`tito grade`: 0 once every submission is graded (whatever the grades), 2 for a usage error."""
    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)  # a log: never squeeze the table
    folder = args.submissions
    if not folder.is_dir() or not submissions(folder):
        print(f"tito grade: {folder} is not a folder of submissions (one subfolder per learner)", file=sys.stderr)
        return 2
    limits = {"timeout": args.timeout, "test_timeout": args.test_timeout, "memory_mb": args.memory_mb}
    console.print(f"Grading {len(submissions(folder))} submissions from {folder}, {args.jobs} at a time…")

    def done(grade: Grade) -> None:
        console.print(f"  graded {grade.learner}: {grade.score:g}/{grade.max_score} points in {grade.duration:.0f} s")

    grades = grade_all(course, folder, jobs=args.jobs, on_done=done, **limits)
    console.print(table(grades, course))
    for g in grades:
        notes = g.problems + [f"checkpoint {cid}: {c.note}" for cid, c in g.cells.items()
                              if c.note and c.status in (Status.FAILED, Status.TIMEOUT, Status.ERROR)]  # fmt: skip
        for note in notes:
            console.print(f"  {g.learner}: {note}")
    graded_report = report(grades, course, limits)
    json_path = args.json or course.build.grade / "report.json"
    write_json(json_path, graded_report)
    console.print(f"JSON report: {json_path}")
    if args.html is not None:
        from tito import dashboard

        dashboard.write(args.html, graded_report, course)
        console.print(f"Class dashboard: {args.html}")
    if args.gradescope is not None:
        out = course.build.grade / "gradescope" if args.gradescope is GRADESCOPE_DEFAULT else args.gradescope
        for g in grades:
            write_json(out / g.learner / "results.json", gradescope(g, course))
        console.print(f"Gradescope results: {out}/<learner>/results.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tito grade", description="Grade each learner's checkpoints, in isolation.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        course = load()
    except FileNotFoundError as error:
        print(f"tito grade: {error}", file=sys.stderr)
        return 3
    return run(args, course)


if __name__ == "__main__":
    raise SystemExit(main())
