"""The focused failure report's evidence: which tests failed and where in the lesson to look.

Owns the mapping from a failed test to lesson lines; tito.views draws it.

A failing test's traceback (recorded by tito.pytest_plugin) usually passes through the exported
package; such a frame in `tinytorch/core/X.py` maps back to the lesson line that produced it
(`export.source_line`). When the failure is an assertion in the checkpoint itself (the framework
returned a wrong number without raising), the traceback says nothing, and two kinds of evidence
point into the lesson, most specific first:

1. the package functions the failing test ran and no passing test ran (recorded by the plugin);
2. the lesson definitions the failing statement uses: `x ** 2` -> `__pow__` -> the function assigned
   to `Tensor.__pow__`; `2 - x` -> `__rsub__`; `Tensor.__sub__, Tensor.__rsub__ = _binary(...)` ->
   that assignment (the operator is made there); literals such as `-2.0` use no operator; a function
   found this way is followed by what it hands its work to when a lesson factory made that and the
   test ran it (`_max` -> `_max_values = _reduction("max", np.max)`);
3. the other functions it ran, the ones fewer passing tests ran first.

Only modules that are not passed (the checkpoint's own, and any earlier one that is not verified)
are pointed at: a module whose checkpoint passed is not the culprit unless the traceback goes there.
When nothing is left the report says "no lesson line found" rather than guess.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from pathlib import Path

from tito import export
from tito.manifest import Course, Module
from tito.results import Frame, Status, TestRecord
from tito.state import Entry, compute, exporting_module

OPERATORS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
    ast.Mod: "mod", ast.MatMult: "matmul", ast.Pow: "pow",
}  # fmt: skip
UNARY = {ast.USub: "__neg__", ast.UAdd: "__pos__", ast.Invert: "__invert__"}
PRINTING = {"__repr__", "__str__", "__format__"}  # run by pytest to write the assertion message
PYTEST_ADVICE = "Use -v to get more diff"  # pytest's, about its own options: noise in tito's report
MAX_PLACES = 3


@dataclass
class Place:
    path: str  # a lesson (or checkpoint) file, relative to the course root
    line: int
    what: str  # the function or class there
    code: str = ""  # the line itself
    made_by: str = ""  # for `Tensor.__sub__, ... = _binary(...)`: the lesson function that makes it


@dataclass
class Failure:
    test: str
    message: str
    look_at: list[Place] = field(default_factory=list)  # lesson lines, most likely first
    test_place: Place | None = None  # the failing line of the checkpoint


def failures(course: Course, entry: Entry) -> list[Failure]:
    """Every failed test of the checkpoint's last run, with the places to look at."""
    if not entry.result:
        return []
    progress = compute(course)
    open_modules = [e.module for e in progress.entries[: entry.module.index + 1]
                    if e.module == entry.module or e.state is not Status.PASSED]  # fmt: skip
    return [failure_of(course, entry.module, test, open_modules) for test in entry.result.failed_tests]


def failure_of(course: Course, module: Module, test: TestRecord, open_modules: list[Module]) -> Failure:
    message = "\n".join(line for line in test.message.splitlines() if line.strip() != PYTEST_ADVICE)
    failure = Failure(test.name, message.strip())
    for path, line, what in reversed([_frame(f, course.root) for f in test.traceback]):  # innermost first
        if path is None:
            continue
        exporting = exporting_module(course, path)
        if exporting is not None and not failure.look_at:
            place = lesson_place(course, exporting, path, line, what)
            failure.look_at += [place] if place else []
        elif path.startswith("checkpoints/") and failure.test_place is None:
            failure.test_place = _place(course, path, line, what)
    if not failure.look_at and failure.test_place is not None:
        failure.look_at = wrong_value_places(course, module, test, failure.test_place, open_modules)
    return failure


def lesson_place(course: Course, module: Module, path: str, line: int, what: str) -> Place | None:
    """A line of an exported file, as the lesson line it came from."""
    target = ".".join(Path(path).with_suffix("").parts[1:])
    lesson_line = export.source_line(course, target, line)
    return _place(course, module.source.as_posix(), lesson_line, what) if lesson_line else None


def wrong_value_places(course: Course, module: Module, test: TestRecord, failing: Place,
                       open_modules: list[Module]) -> list[Place]:  # fmt: skip
    """Where a wrong value most likely comes from, most specific first (see the module docstring)."""
    ran_alone, ran_shared = [], []
    for ran in test.executed:
        path, _, _ = _frame(Frame(ran.path, ran.line), course.root)
        exporting = exporting_module(course, path) if path else None
        if exporting in open_modules and ran.name.rsplit(".", 1)[-1] not in PRINTING:
            place = lesson_place(course, exporting, path, ran.line, ran.name)
            if place is not None:
                (ran_alone if ran.passing == 0 else ran_shared).append(place)
    named = suspects(course, module, failing, open_modules)
    ran = ran_alone + ran_shared
    lessons = {m.source.as_posix(): m for m in open_modules}
    confirmed = [p for p in named if any(_same(p, r) for r in ran)]
    confirmed = [found for p in confirmed for found in [p, *delegates(course, p, lessons[p.path], ran)]]
    places: list[Place] = []
    for place in [*confirmed, *ran_alone, *named, *ran_shared]:
        if len(places) < MAX_PLACES and all((p.path, p.line) != (place.path, place.line) for p in places):
            places.append(place)
    return places


def _same(named: Place, ran: Place) -> bool:
    """The failing statement's definition is one the test ran: the same function, or an operator
    made by a lesson function whose inner function ran (`_binary.<locals>.method`)."""
    same_line = (named.path, named.line) == (ran.path, ran.line)
    return same_line or bool(named.made_by) and ran.what.startswith(f"{named.made_by}.<locals>.")


def delegates(course: Course, function: Place, module: Module, ran: list[Place]) -> list[Place]:
    """What a lesson function the test ran hands its work to, when a lesson factory made it and its
    inner function ran too: `_max` calls `_max_values = _reduction("max", np.max)`, whose arguments
    are as likely to be wrong as `_max` itself."""
    index = definitions(course, module)
    places = []
    for name in dict.fromkeys(names_in_function(course.root / function.path, function.line)):
        line, what, made_by = index.get(name, (0, "", ""))
        place = replace(_place(course, function.path, line, what), made_by=made_by)
        if made_by and any(_same(place, r) for r in ran):
            places.append(place)
    return places


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


def suspects(course: Course, module: Module, failing: Place, open_modules: list[Module]) -> list[Place]:
    """Lesson definitions used by the failing statement: this module's first, then earlier open ones."""
    names = used_names(course.root / failing.path, failing.line)
    places: list[Place] = []
    candidates = [module] + [m for m in reversed(open_modules) if m != module and course.available(m)]
    for candidate in candidates:
        index = definitions(course, candidate)
        for name in names:
            if name in index:
                line, what, made_by = index[name]
                place = _place(course, candidate.source.as_posix(), line, what)
                places.append(Place(place.path, place.line, place.what, place.code, made_by))
    return places


def used_names(path: Path, line: int) -> list[str]:
    """Names, attributes and operator methods used by the statement at `line`, classes last.

    `a - b` uses `__sub__`; `2 - b` (a number on the left) uses `__rsub__`; `-2.0` is a literal.
    """
    statement = next(
        (n for n in ast.walk(_parsed(path)) if isinstance(n, ast.stmt) and not isinstance(n, (ast.FunctionDef, ast.ClassDef))
         and n.lineno <= line <= (n.end_lineno or n.lineno)), None,
    )  # fmt: skip
    if statement is None:
        return []
    names = []
    for node in ast.walk(statement):
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            reflected = isinstance(node.left, ast.Constant) and not isinstance(node.right, ast.Constant)
            names.append(f"__{'r' if reflected else ''}{OPERATORS[type(node.op)]}__")
        elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY and not isinstance(node.operand, ast.Constant):
            names.append(UNARY[type(node.op)])
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


def names_in_function(path: Path, line: int) -> list[str]:
    """The plain names used by the function defined at `line` (its first line, decorators included)."""
    functions = (n for n in ast.walk(_parsed(path)) if isinstance(n, ast.FunctionDef) and _first_line(n) == line)
    function = next(functions, None)
    return [n.id for n in ast.walk(function) if isinstance(n, ast.Name)] if function else []


def _parsed(path: Path) -> ast.Module:
    """The file's syntax tree; an empty one when it cannot be read or parsed (export reports why)."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):  # ValueError: not UTF-8
        return ast.Module(body=[], type_ignores=[])


def definitions(course: Course, module: Module) -> dict[str, tuple[int, str, str]]:
    """name -> (lesson line, what, the lesson function making it or "") for the lesson's export cells: functions, classes, their methods,
    and attributes assigned onto classes (`Tensor.__neg__ = _neg` points at `_neg`, `Tensor.sum =
    _reduction("sum", np.sum)` at that assignment)."""
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
    index: dict[str, tuple[int, str, str]] = {}
    for node in exported:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            index[node.name] = (_first_line(node), node.name, "")
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    index.setdefault(item.name, (_first_line(item), f"{node.name}.{item.name}", ""))
    for node in exported:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for attribute, value in _pairs(target, node.value):
                    index.setdefault(attribute.attr, _resolve(index, value, node.lineno, ast.unparse(attribute)))
                if isinstance(target, ast.Name) and _factory(node.value) in index:  # _max_values = _reduction(...)
                    index.setdefault(target.id, (node.lineno, target.id, _factory(node.value)))
    return index


def _pairs(target: ast.expr, value: ast.expr):
    """(attribute node, assigned expression) for `A.x = v`, `A.x, A.y = v, w` and `A.x, A.y = f(...)`
    (a call that makes both, like `_binary("sub", np.subtract)`: each attribute gets the call)."""
    if isinstance(target, ast.Attribute):
        yield target, value
    elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        for t, v in zip(target.elts, value.elts):
            yield from _pairs(t, v)
    elif isinstance(target, ast.Tuple):
        for t in target.elts:
            yield from _pairs(t, value)


def _first_line(node: ast.AST) -> int:
    """A definition's first line, its first decorator's when decorated (as Python's code objects say)."""
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])


def _resolve(index: dict, value: ast.expr, line: int, shown: str) -> tuple[int, str, str]:
    """Where an assigned attribute is made: the function a plain name refers to; for a call
    (`_binary("sub", np.subtract)`), the assignment itself, whose arguments are what is specific."""
    if isinstance(value, ast.Name) and value.id in index:
        return index[value.id]
    return line, shown, _factory(value)


def _factory(value: ast.expr) -> str:
    """The function a call like `_binary("sub", np.subtract)` calls by name ("" for anything else)."""
    return value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else ""


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
