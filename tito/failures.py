"""The focused failure report's evidence: which tests failed and where in the lesson to look.

Owns the mapping from a failed test to lesson lines; tito.views draws it.

A failing test's traceback (recorded by tito.pytest_plugin) usually passes through the exported
package; such a frame in `tinytorch/core/X.py` maps back to the lesson line that produced it
(`export.source_line`). When the failure is an assertion in the checkpoint itself (the framework
returned a wrong number without raising), we read the failing statement and point at the lesson
definitions it uses: `x ** 2` -> `__pow__` -> the function assigned to `Tensor.__pow__`.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from tito import export
from tito.manifest import Course, Module
from tito.results import Frame
from tito.state import Entry, exporting_module

OPERATORS = {
    ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__",
    ast.MatMult: "__matmul__", ast.Pow: "__pow__", ast.USub: "__neg__",
}  # fmt: skip
MAX_PLACES = 3


@dataclass
class Place:
    path: str  # a lesson (or checkpoint) file, relative to the course root
    line: int
    what: str  # the function or class there
    code: str = ""  # the line itself


@dataclass
class Failure:
    test: str
    message: str
    look_at: list[Place] = field(default_factory=list)  # lesson lines, most likely first
    test_place: Place | None = None  # the failing line of the checkpoint


def failures(course: Course, entry: Entry) -> list[Failure]:
    """Every failed test of the checkpoint's last run, with the places to look at."""
    found = []
    for test in entry.result.failed_tests if entry.result else []:
        frames = [_frame(f, course.root) for f in test.traceback]
        failure = Failure(test.name, test.message.strip())
        for path, line, what in reversed(frames):  # innermost first
            if path is None:
                continue
            module = exporting_module(course, path)
            if module is not None and failure.look_at == []:
                target = ".".join(Path(path).with_suffix("").parts[1:])
                lesson_line = export.source_line(course, target, line)
                if lesson_line:
                    failure.look_at.append(_place(course, module.source.as_posix(), lesson_line, what))
            elif path.startswith("checkpoints/") and failure.test_place is None:
                failure.test_place = _place(course, path, line, what)
        if not failure.look_at and failure.test_place is not None:
            failure.look_at = suspects(course, entry.module, failure.test_place)
        found.append(failure)
    return found


def _frame(frame: Frame, root: Path) -> tuple[str | None, int, str]:
    """(path relative to the root or None when outside it, line, function name)."""
    path = Path(frame.path)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            return None, 0, ""
    return path.as_posix(), frame.line, frame.message.removeprefix("in ").strip()


def _place(course: Course, path: str, line: int, what: str) -> Place:
    try:
        code = (course.root / path).read_text(encoding="utf-8", errors="replace").splitlines()[line - 1].strip()
    except (OSError, IndexError):
        code = ""
    return Place(path, line, what, code)


def suspects(course: Course, module: Module, failing: Place) -> list[Place]:
    """Lesson definitions used by the failing statement: this module's first, then earlier ones."""
    names = used_names(course.root / failing.path, failing.line)
    places: list[Place] = []
    candidates = [module] + [m for m in reversed(course.modules[: module.index]) if course.available(m)]
    for candidate in candidates:
        index = definitions(course, candidate)
        for name in names:
            if name in index and len(places) < MAX_PLACES:
                line, what = index[name]
                place = _place(course, candidate.source.as_posix(), line, what)
                if all((p.path, p.line) != (place.path, place.line) for p in places):
                    places.append(place)
    return places


def used_names(path: Path, line: int) -> list[str]:
    """Names, attributes and operator methods used by the statement at `line`, classes last."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):  # ValueError: not UTF-8, which export reports
        return []
    statement = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not isinstance(n, (ast.FunctionDef, ast.ClassDef))
         and n.lineno <= line <= (n.end_lineno or n.lineno)), None,
    )  # fmt: skip
    if statement is None:
        return []
    names = []
    for node in ast.walk(statement):
        if isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(node.op) in OPERATORS:
            names.append(OPERATORS[type(node.op)])
        elif isinstance(node, ast.Subscript):
            names.append("__getitem__")
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.alias):
            names.append(node.name)
    classes_last = sorted(dict.fromkeys(names), key=lambda n: n[:1].isupper())
    return classes_last


def definitions(course: Course, module: Module) -> dict[str, tuple[int, str]]:
    """name -> (lesson line, what) for the lesson's export cells: functions, classes, their methods,
    and attributes assigned onto classes (`Tensor.sum = _reduction(...)` points at `_reduction`)."""
    try:
        text = export.read_source(course.root / module.source)
        tree = ast.parse(text)
    except (OSError, SyntaxError, export.ExportError):
        return {}
    cells = export.split_cells(text)
    spans = []
    for cell, following in zip(cells, cells[1:] + [None]):
        if cell.kind == "code" and "export" in cell.directives():
            spans.append((cell.start, following.start if following else float("inf")))
    exported = [n for n in tree.body if any(a <= n.lineno < b for a, b in spans)]
    index: dict[str, tuple[int, str]] = {}
    for node in exported:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            index[node.name] = (node.lineno, node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    index.setdefault(item.name, (item.lineno, f"{node.name}.{item.name}"))
    for node in exported:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for attribute, value in _pairs(target, node.value):
                    index.setdefault(attribute, _resolve(index, value, node.lineno, attribute))
    return index


def _pairs(target: ast.expr, value: ast.expr):
    """(attribute name, assigned expression) for `A.x = v` and `A.x, A.y = v, w`."""
    if isinstance(target, ast.Attribute):
        yield target.attr, value
    elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        for t, v in zip(target.elts, value.elts):
            yield from _pairs(t, v)


def _resolve(index: dict, value: ast.expr, line: int, attribute: str) -> tuple[int, str]:
    if isinstance(value, ast.Call):
        value = value.func
    if isinstance(value, ast.Name) and value.id in index:
        return index[value.id]
    return line, attribute


def export_problem(course: Course, upto: Module) -> export.ExportError | None:
    """Why the first lesson (up to `upto`) that cannot be exported cannot be."""
    for module in course.modules[: upto.index + 1]:
        if not course.available(module):
            continue
        try:
            export.build(course, module)
        except export.ExportError as error:
            return error
    return None


def error_place(course: Course, error: export.ExportError) -> Place | None:
    """The lesson line an export error names (None when it is about the whole file)."""
    return _place(course, error.path, error.line, "") if error.line else None


def grouped(found: list[Failure]) -> list[list[Failure]]:
    """Failures with the same first message line at the same lesson line, together (8 tests that
    stop at one stub are one thing to fix), in the order they first occur."""
    groups: dict[tuple, list[Failure]] = {}
    for failure in found:
        place = (failure.look_at[0].path, failure.look_at[0].line) if failure.look_at else None
        groups.setdefault((first_line(failure.message), place), []).append(failure)
    return list(groups.values())


def first_line(message: str) -> str:
    return next((line.strip() for line in message.splitlines() if line.strip()), "(no message)")


def group_line(group: list[Failure]) -> str:
    """`✗ tensor.py:84 Tensor.__init__ — message`, or `8 tests stop at the same stub: tensor.py:84 …`
    (the lesson's file name only: the line is printed under its module's heading)."""
    first = group[0]
    place = first.look_at[0] if first.look_at else None
    where = f"{Path(place.path).name}:{place.line} {place.what} — " if place else f"{first.test} — "
    if len(group) == 1:
        return f"✗ {where}{first_line(first.message)}"
    same = "stub" if first_line(first.message).startswith("NotImplementedError") else "failure"
    return f"{len(group)} tests stop at the same {same}: {where}{first_line(first.message)}"
