"""Mutation testing: does a checkpoint notice when the learner's code is wrong?

Each mutant is a lesson whose solution code (between `### BEGIN SOLUTION` and `### END SOLUTION`)
has one small change -- an operator, a comparison, a constant, an `axis`/`keepdims`/`dim`
argument, a dropped statement, swapped arguments, a returned value. The mutant is exported into a
private copy of the course and the module's checkpoint runs on it, stopping at the first failure:
*killed* (some test failed), *survived* (every test passed: the checkpoint let wrong code through)
or *timeout* (counted as detected, like a failure). Results go to build/mutants/NN.json
(`course.build.mutation_report(module)`).

Why not mutmut or cosmic-ray: both mutate importable package files in place and map results to
those files; here what is mutated is a region of a lesson (the solution blocks only), the package
file is produced from it by `tito export`, and every run must happen in a temporary copy so the
real `tinytorch/core/*.py` -- which other processes use -- is never touched. Walking the lesson's
own AST gives the lesson `file:line` of every mutant directly, with a few dozen lines of code.

    python -m tito.mutants run 03_activations [--limit N] [--jobs 2]
    python -m tito.mutants table
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue

from tito import export, runner
from tito.manifest import Course, Module, load

EQUIVALENTS = Path("tests") / "equivalent_mutants.toml"  # under the root; instructor-only: the release has no tests/
LIMIT = int(os.environ.get("TINYTORCH_MUTANTS_PER_MODULE", 40))  # 40 a module: about 30 min on 2 busy cores
TARGET = 90.0  # percent of (non-equivalent) mutants a checkpoint must kill
COPIED = ("tito", "tinytorch", "checkpoints", "modules")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")

KILLED, SURVIVED, TIMEOUT, EQUIVALENT = "killed", "survived", "timeout", "equivalent"

SWAP_BINOP = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult,
}  # fmt: skip
SWAP_COMPARE = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip
AXIS_KEYWORDS = {"axis", "axes", "keepdims", "dim", "keepdim"}
# swapping their first two arguments changes nothing (np.clip(a, lo, hi) is min(max(a, lo), hi))
COMMUTATIVE = {"max", "min", "maximum", "minimum", "add", "multiply", "logical_and", "logical_or", "allclose",
               "array_equal", "clip", "result_type"}  # fmt: skip
DROPPABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.If, ast.For, ast.Raise, ast.Assert)


@dataclass(frozen=True)
class Mutant:
    line: int  # 1-based lesson line where the changed code starts
    end_line: int
    col: int  # byte offsets, as the ast gives them
    end_col: int
    operator: str
    scope: str  # the enclosing function, e.g. "Tensor.__add__"
    original: str
    mutated: str

    @property
    def key(self) -> str:
        """Names a mutant across edits that move lines (the sample is ordered by it)."""
        return f"{self.scope}: {self.original} -> {self.mutated}"

    def identity(self, text: str) -> tuple[str, str]:
        """The key and the mutated lesson line: two mutants of one function can share a key (each `-1`
        of a line turned into `1`), never both (mutants giving the same lesson text are one)."""
        return self.key, self.apply(text).split("\n")[self.line - 1].strip()

    def apply(self, text: str) -> str:
        """The lesson text with this mutant in place; every other line keeps its number."""
        lines = text.split("\n")
        first, last = lines[self.line - 1].encode(), lines[self.end_line - 1].encode()
        joined = (first[: self.col] + self.mutated.encode() + last[self.end_col :]).decode()
        return "\n".join([*lines[: self.line - 1], joined, *[""] * (self.end_line - self.line), *lines[self.end_line :]])


# --- finding mutants -----------------------------------------------------------------------------


def solution_lines(text: str) -> set[int]:
    """1-based numbers of the lines strictly between BEGIN SOLUTION and END SOLUTION markers."""
    inside, lines = False, set()
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped == "### BEGIN SOLUTION":
            inside = True
        elif stripped == "### END SOLUTION":
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _exported_lines(module: Module, text: str) -> set[int]:
    """Lines of the lesson that end up in the package (code of `#| export` cells)."""
    lines = set()
    for target in export.collect(module, text).values():
        for first, code in target.chunks:
            lines.update(range(first, first + len(code)))
    return lines


def _variants(node: ast.AST) -> list[tuple[str, ast.AST | str]]:
    """(operator name, replacement node or source text) for one expression node."""
    found: list[tuple[str, ast.AST | str]] = []
    if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
        found.append(("arithmetic", ast.BinOp(node.left, SWAP_BINOP[type(node.op)](), node.right)))
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_COMPARE:
        found.append(("comparison", ast.Compare(node.left, [SWAP_COMPARE[type(node.ops[0])](), *node.ops[1:]], node.comparators)))
    elif isinstance(node, ast.BoolOp):
        found.append(("boolean", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        found.append(("unary", node.operand))
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        found.append(("constant", ast.Constant(not node.value)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        found.append(("constant", ast.Constant(node.value + 1)))
    elif isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg in AXIS_KEYWORDS:
                rest = [k for k in node.keywords if k is not keyword]
                found.append(("axis", ast.Call(node.func, node.args, rest)))
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        commutative = isinstance(node.func, (ast.Attribute, ast.Name)) and _name(node.func) in COMMUTATIVE
        if len(positional) == len(node.args) >= 2 and not commutative and ast.dump(node.args[0]) != ast.dump(node.args[1]):
            found.append(("swap", ast.Call(node.func, [node.args[1], node.args[0], *node.args[2:]], node.keywords)))
    elif isinstance(node, ast.IfExp):
        found.append(("condition", ast.IfExp(ast.UnaryOp(ast.Not(), node.test), node.body, node.orelse)))
    return found


def _statement_variants(node: ast.stmt) -> list[tuple[str, ast.AST | str]]:
    found: list[tuple[str, ast.AST | str]] = []
    if isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        found.append(("return", "return None"))
    if isinstance(node, DROPPABLE):
        found.append(("drop", "pass"))
    if isinstance(node, ast.AugAssign) and type(node.op) in SWAP_BINOP:
        found.append(("arithmetic", ast.AugAssign(node.target, SWAP_BINOP[type(node.op)](), node.value)))
    if isinstance(node, (ast.If, ast.While)) and not (isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not)):
        test = ast.UnaryOp(ast.Not(), node.test)
        found.append(("condition", f"{'if' if isinstance(node, ast.If) else 'while'} {ast.unparse(test)}"))
    return found


def _name(func: ast.Attribute | ast.Name) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _render(node: ast.AST, replacement: ast.AST | str) -> str:
    if isinstance(replacement, str):
        return replacement
    text = ast.unparse(replacement)
    return f"({text})" if isinstance(node, ast.expr) and not isinstance(replacement, (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript)) else text


class _Finder(ast.NodeVisitor):
    def __init__(self, text: str, allowed: set[int]):
        self.lines = text.split("\n")
        self.allowed = allowed
        self.scope: list[str] = []
        self.found: list[Mutant] = []
        self.kept: set[int] = set()  # ids of nodes left as they are

    def _inside(self, node: ast.AST) -> bool:
        return all(n in self.allowed for n in range(node.lineno, node.end_lineno + 1))

    def _slice(self, line: int, col: int, end_line: int, end_col: int) -> str:
        """The source between two ast positions (byte offsets), whitespace collapsed to one line."""
        chunk = [part.encode() for part in self.lines[line - 1 : end_line]]
        chunk[-1] = chunk[-1][:end_col]
        chunk[0] = chunk[0][col:]
        return " ".join(b"\n".join(chunk).decode().split())

    def _add(self, node: ast.AST, operator: str, replacement: ast.AST | str, header_only: bool = False):
        end = node.test if header_only else node  # `if test:` -> only the `if test` part changes
        end_line, end_col = end.end_lineno, end.end_col_offset
        original = self._slice(node.lineno, node.col_offset, end_line, end_col)
        self.found.append(Mutant(node.lineno, end_line, node.col_offset, end_col, operator,
                                 ".".join(self.scope) or "<module>", original, _render(node, replacement)))  # fmt: skip

    def _scoped(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_JoinedStr(self, node):  # f-string parts carry no usable positions
        return

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) and node.operand.value == 1:
            # -1 means "the last axis" or "infer this size"; NumPy reads -2 in a reshape the same way,
            # so only the sign is mutated (by the unary operator), never the 1
            self.kept.add(id(node.operand))
        self.generic_visit(node)

    def generic_visit(self, node):
        if id(node) in self.kept:
            return
        if isinstance(node, ast.stmt) and self._inside(node):
            for operator, replacement in _statement_variants(node):
                self._add(node, operator, replacement, header_only=operator == "condition")
        elif isinstance(node, ast.expr) and self._inside(node):
            for operator, replacement in _variants(node):
                self._add(node, operator, replacement)
        super().generic_visit(node)


def find(module: Module, text: str) -> list[Mutant]:
    """Every mutant of the lesson's exported solution code, in lesson order, without duplicates."""
    allowed = solution_lines(text) & _exported_lines(module, text)
    finder = _Finder(text, allowed)
    finder.visit(ast.parse(text))
    unique = {}  # two changes can give the same lesson (`keepdims=True` -> False, or dropped): keep one
    for mutant in finder.found:
        unique.setdefault(mutant.apply(text), mutant)
    unique.pop(text, None)
    return sorted(unique.values(), key=lambda m: (m.line, m.col, m.operator))


def sample(mutants: list[Mutant], limit: int | None) -> list[Mutant]:
    """A deterministic sample that stays the same when unrelated lines move: ordered by a hash of the key."""
    if limit is None or len(mutants) <= limit:
        return mutants
    chosen = sorted(mutants, key=lambda m: hashlib.sha1(m.key.encode()).hexdigest())[:limit]
    return sorted(chosen, key=lambda m: (m.line, m.col, m.operator))


# --- running a lesson variant against its checkpoint ------------------------------------------------


@dataclass
class Run:
    status: str  # killed / survived / timeout
    passed: list[str]
    failed: list[str]
    seconds: float


_EXPORTING = threading.Lock()


class Workspace:
    """A private copy of the course with every module exported; lessons are swapped in one at a time."""

    def __init__(self, course: Course):
        self.root = Path(tempfile.mkdtemp(prefix="tinytorch-mutants-"))
        self.course = course.at(self.root)  # the same course, in the private copy
        for name in COPIED:
            shutil.copytree(course.root / name, self.root / name, ignore=IGNORE)
        for module in course.modules:
            if (self.root / module.source).exists():
                self._export(module)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tito.mutants", "serve"], cwd=self.root,
            env=runner.child_env(self.root, self.root / "unused.json"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def run(self, module: Module, text: str, first_failure: bool = True, timeout: float | None = None) -> Run:
        """Export `text` as the module's lesson, run its checkpoint, then put the lesson back."""
        lesson = self.root / module.source
        original = lesson.read_text(encoding="utf-8")
        lesson.write_text(text, encoding="utf-8")
        try:
            self._export(module)
        except export.ExportError:
            lesson.write_text(original, encoding="utf-8")
            self._export(module)
            return Run(KILLED, [], ["export"], 0.0)
        try:
            return self._pytest(module, first_failure, timeout)
        finally:
            lesson.write_text(original, encoding="utf-8")
            self._export(module)

    def _export(self, module: Module) -> None:
        # One export at a time: CPython 3.11's AST constructor keeps its recursion depth in shared
        # state, and two threads parsing at once fail with "AST constructor recursion depth mismatch".
        with _EXPORTING:
            export.export_module(self.course, module)

    def _pytest(self, module: Module, first_failure: bool, timeout: float | None) -> Run:
        record = self.root / f".result-{module.id}.json"
        record.unlink(missing_ok=True)
        arguments = runner.pytest_command(module.checkpoint, verbose=False)[3:] + ["-p", "no:hypothesispytest"]
        request = {"args": arguments + (["-x"] if first_failure else []), "record": str(record), "timeout": timeout}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        answer = json.loads(self.server.stdout.readline())
        if answer["timed_out"]:
            return Run(TIMEOUT, [], [], answer["seconds"])
        tests = json.loads(record.read_text())["tests"] if record.exists() else []
        passed = [t["name"] for t in tests if t["outcome"] == "passed"]
        failed = [t["name"] for t in tests if t["outcome"] == "failed"] or ([] if answer["code"] == 0 else ["pytest"])
        return Run(KILLED if failed else SURVIVED, passed, failed, answer["seconds"])

    def remove(self) -> None:
        self.server.stdin.close()
        self.server.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def serve() -> None:
    """A workspace's runner: numpy and pytest imported once, then each checkpoint run in a fork.

    One JSON request per stdin line ({"args", "record", "timeout"}), one JSON answer per stdout line.
    A fresh Python per mutant would spend most of its time importing; a fork starts in milliseconds,
    and tinytorch itself is imported only in the child, so each run sees the freshly exported code.
    """
    import numpy  # noqa: F401  (imported here so that every fork shares it)
    import pytest

    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.setsid()
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1), os.dup2(quiet, 2)
            os.environ["TITO_RESULT_JSON"] = request["record"]
            os._exit(int(pytest.main(request["args"])))
        code, timed_out = _wait(pid, request["timeout"])
        answer = {"code": code, "timed_out": timed_out, "seconds": round(time.perf_counter() - started, 3)}
        print(json.dumps(answer), flush=True)


def _wait(pid: int, timeout: float | None) -> tuple[int | None, bool]:
    """Wait for a forked run; past the timeout kill its whole process group."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if deadline is not None and time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, True
        time.sleep(0.01)


# --- a module's mutation run --------------------------------------------------------------------------


def equivalents(course: Course, module: Module) -> dict[tuple[str, str], str]:
    """The module's known equivalent mutants: identity (key, mutated line) -> why it cannot be observed."""
    path = course.root / EQUIVALENTS
    if not path.is_file():
        return {}
    from tito.manifest import tomllib

    rows = tomllib.loads(path.read_text(encoding="utf-8")).get(module.id, [])
    return {(row["mutant"], row["line"]): row["reason"] for row in rows}


@dataclass
class Report:
    module: str
    lesson: str
    checkpoint: str
    found: int
    limit: int | None
    seconds: float = 0.0
    mutants: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(m["status"] == status for m in self.mutants)

    @property
    def score(self) -> float:
        """Percent of the non-equivalent mutants that the checkpoint detected (failed or timed out)."""
        judged = len(self.mutants) - self.count(EQUIVALENT)
        return 100.0 * (self.count(KILLED) + self.count(TIMEOUT)) / judged if judged else 100.0

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(score=round(self.score, 1), killed=self.count(KILLED), survived=self.count(SURVIVED),
                    timeout=self.count(TIMEOUT), equivalent=self.count(EQUIVALENT))  # fmt: skip
        return data


def mutate_module(course: Course, module: Module, limit: int | None = LIMIT, jobs: int = 2,
                  progress=None) -> Report:  # fmt: skip
    """Run the sampled mutants of one module on `jobs` private copies of the course."""
    text = (course.root / module.source).read_text(encoding="utf-8")
    every = find(module, text)
    chosen = sample(every, limit)
    known = equivalents(course, module)
    report = Report(module.id, module.source.as_posix(), module.checkpoint.file.as_posix(), len(every), limit)
    started = time.perf_counter()
    workspaces: Queue[Workspace] = Queue()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for workspace in pool.map(lambda _: Workspace(course), range(jobs)):
            workspaces.put(workspace)
        try:
            baseline = workspaces.queue[0].run(module, text, first_failure=False)
            if baseline.status != SURVIVED:
                raise RuntimeError(f"{module.checkpoint.file}: the unmutated lesson fails {baseline.failed}; fix that first")
            timeout = 3 * baseline.seconds + 10

            def one(mutant: Mutant) -> dict:
                key, line = mutant.identity(text)
                row = {**asdict(mutant), "key": key, "line_after": line, "killed_by": None, "reason": known.get((key, line))}
                if row["reason"] is None:
                    workspace = workspaces.get()
                    try:
                        outcome = workspace.run(module, mutant.apply(text), timeout=timeout)
                    finally:
                        workspaces.put(workspace)
                    row.update(status=outcome.status, killed_by=(outcome.failed or [None])[0], seconds=round(outcome.seconds, 2))
                else:
                    row.update(status=EQUIVALENT, seconds=0.0)
                if progress:
                    progress(row)
                return row

            report.mutants = list(pool.map(one, chosen))
        finally:
            while not workspaces.empty():
                workspaces.get().remove()
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def write(course: Course, report: Report, module: Module) -> Path:
    path = course.build.mutation_report(module)
    export.write_atomic(path, json.dumps(report.to_json(), indent=2) + "\n")
    return path


# --- showing results --------------------------------------------------------------------------------


def table(reports: list[dict]):
    """A Rich table: module, mutants, killed %, and each survivor with its lesson file:line."""
    from rich.table import Table

    grid = Table(title="Mutation testing: how much wrong code each checkpoint catches")
    for name, justify in (("module", "left"), ("mutants", "right"), ("killed %", "right"), ("survivors", "left")):
        grid.add_column(name, justify=justify)
    for data in reports:
        survivors = [m for m in data["mutants"] if m["status"] == SURVIVED]
        lines = [f"{data['lesson']}:{m['line']}  {m['original']} -> {m['mutated']}" for m in survivors]
        colour = "green" if data["score"] >= TARGET else "red"
        sampled = f"{len(data['mutants'])}/{data['found']}" if len(data["mutants"]) < data["found"] else str(data["found"])
        grid.add_row(data["module"], sampled, f"[{colour}]{data['score']:.1f}[/]", "\n".join(lines) or "-")
    return grid


def load_reports(course: Course) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(course.build.mutants.glob("*.json"))]


def doit_action(course: Course, module: Module, limit: int | None = LIMIT):
    """The `mutants:NN_name` task: run with a progress bar, write the JSON, print the module's row."""
    from doit.exceptions import TaskFailed
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    text = (course.root / module.source).read_text(encoding="utf-8")
    total = len(sample(find(module, text), limit))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[tally]}"))  # fmt: skip
    tally = {KILLED: 0, SURVIVED: 0, TIMEOUT: 0, EQUIVALENT: 0}
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"mutants {module.id}", total=total, tally="")

        def advance(row: dict) -> None:
            tally[row["status"]] += 1
            bar.update(task, advance=1, tally=" ".join(f"{k} {v}" for k, v in tally.items() if v))

        try:
            report = mutate_module(course, module, limit=limit, jobs=_jobs(), progress=advance)
        except RuntimeError as error:
            return TaskFailed(str(error))
    write(course, report, module)
    Console().print(table([report.to_json()]))
    return True


def _jobs() -> int:
    return int(os.environ.get("TINYTORCH_MUTANT_JOBS", min(2, os.cpu_count() or 1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tito.mutants", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="mutate one module and run its checkpoint on each mutant")
    run.add_argument("module")
    run.add_argument("--limit", type=int, default=LIMIT, help="mutants sampled (default %(default)s)")
    commands.add_parser("table", help="the table of build/mutants/*.json")
    commands.add_parser("serve", help="(internal) a workspace's checkpoint runner")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
        return 0
    if args.command == "table":
        from rich.console import Console

        reports = load_reports(load())
        if not reports:
            print("no results yet: run `make mutants`", file=sys.stderr)
            return 1
        Console().print(table(reports))
        total = sum(len(r["mutants"]) for r in reports)
        print(f"{total} mutants in {sum(r['seconds'] for r in reports) / 60:.1f} min")
        return 0 if all(r["score"] >= TARGET for r in reports) else 1
    from tito.manifest import UnknownName

    course = load()
    try:
        module = course.find_module(args.module)
    except UnknownName as error:
        print(error, file=sys.stderr)
        return 2
    return 0 if doit_action(course, module, args.limit) is True else 1


if __name__ == "__main__":
    sys.exit(main())
