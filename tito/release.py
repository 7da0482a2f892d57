"""The student edition: `doit release` writes build/release/, the course without its solutions.

The release is a complete repository a learner clones and uses with the same commands as the
instructor's: tooling, package skeleton, checkpoints, benchmarks and every lesson, with

* each `### BEGIN SOLUTION` ... `### END SOLUTION` block (markers included) replaced by one line,
  `raise NotImplementedError("<hint>")`, at the BEGIN marker's indentation. The hint is the text of
  the `### HINT: ...` line(s) immediately above BEGIN, which stay in the lesson as comments;
* each cell whose directives include `#| instructor` dropped entirely (notes, answer keys);
* the learner's README (tito/learner_readme.md, with the module table filled in from the manifest)
  in place of the instructor's;
* no exported `tinytorch/core/*.py`, no build/, no instructor tests (tests/).

The same sources give byte-identical files: the walk is sorted and nothing time-dependent is
written. The release is built in a temporary folder next to the output and renamed into place, so a
failed build leaves the previous release untouched. It fails, naming `path:line`, when a lesson does
not compile, a marker is unbalanced, crosses a cell boundary or sits outside a function body, an
instructor-only cell is exported, or a stubbed lesson no longer compiles.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tito.export import CELL_START, Cell
from tito.manifest import Course, export_path

README_TEMPLATE = Path("tito") / "learner_readme.md"
MODULE_TABLE = "<!-- module table -->"

# What a learner needs, besides modules/ (handled separately because lessons are stubbed).
TOP_FILES = (".gitignore", "LICENSE", "Makefile", "dodo.py", "pyproject.toml")
TOP_DIRS = ("bench", "checkpoints", "milestones", "tinytorch", "tito")
JUNK = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store"}

MARKER = re.compile(r"^(\s*)### (BEGIN|END) SOLUTION\s*$")
HINT = re.compile(r"^\s*### HINT:\s?(.*?)\s*$")
DEFAULT_HINT = "Write this part yourself: the lesson text and the docstring above say what it must do."
INSTRUCTOR = "instructor"  # `#| instructor`: the cell is dropped from the student edition


class ReleaseError(Exception):
    """Problems that stop the release, each located as `path:line: message`."""


@dataclass
class Summary:
    out: Path
    files: int
    size: int  # bytes
    stubs: int
    dropped_cells: int

    def __str__(self) -> str:
        return (
            f"release: {self.files} files ({self.size / 1024:.0f} KiB) in {self.out.as_posix()}, "
            f"{self.stubs} solutions stubbed, {self.dropped_cells} instructor cells dropped"
        )


@dataclass
class Stubbed:
    text: str
    stubs: int
    dropped_cells: int


# --- lessons -------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A double-quoted Python string literal for one line of text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop_instructor_cells(lines: list[str], path: str) -> tuple[list[tuple[int, str]], int]:
    """The lines outside `#| instructor` cells, each with its 1-based line number in the source."""
    starts = [i for i, line in enumerate(lines) if line.startswith(CELL_START)]
    is_cell = set(starts)  # the other chunk is the text before the first cell (jupytext's header)
    kept, dropped = [], 0
    for first, end in zip([0, *starts], [*starts, len(lines)]):
        directives = Cell(first + 1, "code", lines[first + 1 : end] if first in is_cell else []).directives()
        if INSTRUCTOR in directives:
            if "export" in directives:
                raise ReleaseError(f"{path}:{first + 1}: an `#| instructor` cell cannot also be `#| export`")
            dropped += 1
            continue
        kept += [(number + 1, lines[number]) for number in range(first, end)]
    return kept, dropped


def _hint_above(kept: list[tuple[int, str]], index: int) -> str:
    """The `### HINT:` lines directly above kept[index], joined; the default hint when there are none."""
    hints = []
    while index > 0 and HINT.match(kept[index - 1][1]):
        index -= 1
        hints.insert(0, HINT.match(kept[index][1]).group(1))
    return " ".join(h for h in hints if h) or DEFAULT_HINT


def _replace_solutions(kept: list[tuple[int, str]], path: str) -> tuple[list[tuple[int, str]], list[int]]:
    """Replace each BEGIN..END block by its stub line; return the lines and the stubs' output indexes."""
    out: list[tuple[int, str]] = []
    stubs: list[int] = []
    begin = None  # (source line, indentation, hint) of the open block
    for index, (number, line) in enumerate(kept):
        match = MARKER.match(line)
        if begin is None and match and match.group(2) == "BEGIN":
            begin = (number, match.group(1), _hint_above(kept, index))
        elif begin is None and match:
            raise ReleaseError(f"{path}:{number}: END SOLUTION without a BEGIN SOLUTION before it")
        elif begin is None:
            out.append((number, line))
        elif match and match.group(2) == "BEGIN":
            raise ReleaseError(f"{path}:{number}: BEGIN SOLUTION inside the block opened at line {begin[0]}")
        elif match:
            stubs.append(len(out))
            out.append((begin[0], f"{begin[1]}raise NotImplementedError({_quote(begin[2])})"))
            begin = None
        elif line.startswith(CELL_START):
            raise ReleaseError(f"{path}:{begin[0]}: BEGIN SOLUTION is not closed before the next cell (line {number})")
    if begin is not None:
        raise ReleaseError(f"{path}:{begin[0]}: BEGIN SOLUTION without an END SOLUTION")
    return out, stubs


def _scopes_of_lines(tree: ast.Module) -> dict[int, ast.AST]:
    """For each line holding a statement: the innermost function, class or module enclosing it."""
    scopes: dict[int, ast.AST] = {}

    def visit(node: ast.AST, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                scopes.setdefault(child.lineno, scope)
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
            visit(child, inner)

    visit(tree, tree)
    return scopes


def stub_lesson(text: str, path: str) -> Stubbed:
    """The student edition of one lesson's text, or ReleaseError naming `path:line`."""
    try:
        compile(text, path, "exec")
    except SyntaxError as error:
        raise ReleaseError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    lines = text.split("\n")  # keeps the final newline (an empty last item) and every byte of each line
    kept, dropped = _drop_instructor_cells(lines, path)
    out, stubs = _replace_solutions(kept, path)
    stubbed = "\n".join(line for _, line in out)
    try:
        tree = ast.parse(stubbed, path)
    except SyntaxError as error:
        index = min(max((error.lineno or 1) - 1, 0), len(out) - 1)
        block = next((out[i][0] for i in reversed(stubs) if i <= index), None)
        after = f" after stubbing the solution block at line {block}" if block else ""
        raise ReleaseError(
            f"{path}:{out[index][0]}: the student edition would not compile ({error.msg}){after}; "
            "keep each solution block whole inside one function body"
        ) from None
    scopes = _scopes_of_lines(tree)
    for index in stubs:
        scope = scopes.get(index + 1)
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where = f"the body of class {scope.name}" if isinstance(scope, ast.ClassDef) else "module top level"
            raise ReleaseError(
                f"{path}:{out[index][0]}: solution block at {where}; "
                "### BEGIN/END SOLUTION may only enclose code inside a function body"
            )
    return Stubbed(stubbed, len(stubs), dropped)


# --- the repository --------------------------------------------------------------------------------


def _walk(folder: Path):
    """Every file under `folder`, sorted, skipping caches and symbolic links."""
    for path in sorted(folder.iterdir()):
        if path.name in JUNK or path.suffix == ".pyc" or path.is_symlink():
            continue
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file():
            yield path


def _generated_files(course: Course) -> set[Path]:
    """Exported package files: the manifest's targets (tinytorch/core/*.py but __init__.py)."""
    return {export_path(t) for m in course.modules for t in m.exports}


def _is_generated(path: Path, generated: set[Path]) -> bool:
    core = Path("tinytorch") / "core"
    return path in generated or (path.parent == core and path.suffix == ".py" and path.name != "__init__.py")


def source_files(course: Course) -> list[Path]:
    """Every file the release reads, relative to the course root and sorted (the doit task's file_dep)."""
    root = course.root
    generated = _generated_files(course)
    found = [Path(name) for name in TOP_FILES if (root / name).is_file()]
    for folder in (*TOP_DIRS, "modules"):
        if (root / folder).is_dir():
            found += [p.relative_to(root) for p in _walk(root / folder)]
    return sorted(p for p in found if not _is_generated(p, generated))


def module_table(course: Course) -> str:
    """The course as a Markdown table, for the learner's README."""
    rows = ["| stage | module | checkpoint | you can say |", "|---|---|---|---|"]
    for module in course.modules:
        c = module.checkpoint
        rows.append(f"| {module.stage} | `{module.id}` {module.title} | {c.id} {c.name} | {c.capability} |")
    return "\n".join(rows)


def render(course: Course) -> tuple[dict[Path, bytes], Summary]:
    """Every release file's bytes, keyed by path relative to the release root. Writes nothing."""
    root = course.root
    files: dict[Path, bytes] = {}
    errors: list[str] = []
    stubs = dropped = 0
    for relative in source_files(course):
        data = (root / relative).read_bytes()
        if relative.parts[0] == "modules" and relative.suffix == ".py":
            try:
                lesson = stub_lesson(data.decode("utf-8"), relative.as_posix())
            except ReleaseError as error:
                errors.append(str(error))
                continue
            data = lesson.text.encode("utf-8")
            stubs += lesson.stubs
            dropped += lesson.dropped_cells
        files[relative] = data
    template = root / README_TEMPLATE
    if not template.is_file():
        errors.append(f"{README_TEMPLATE}: the learner's README template is missing")
    else:
        readme = template.read_text(encoding="utf-8").replace(MODULE_TABLE, module_table(course))
        files[Path("README.md")] = readme.encode("utf-8")
    if errors:
        raise ReleaseError("\n".join(errors))
    summary = Summary(course.build.release, len(files), sum(len(d) for d in files.values()), stubs, dropped)
    return dict(sorted(files.items())), summary


def build_release(course: Course, out: Path | None = None) -> Summary:
    """Write the student edition to `out` (default build/release; relative paths are under the course
    root); ReleaseError on a problem.

    Built in a temporary sibling folder, then swapped in: on error the previous release stays whole.
    """
    out = course.root / out if out is not None else course.build.release
    files, summary = render(course)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    try:
        for relative, data in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a release is an ordinary folder
        if out.exists():
            retired = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    summary.out = out
    return summary


def clean(course: Course) -> None:
    """Remove the release (the doit task's clean action)."""
    shutil.rmtree(course.build.release, ignore_errors=True)


def doit_action(course: Course, out: Path | None = None):
    """The `release` task's action: a problem fails the task with every `path:line`, no traceback."""
    from doit.exceptions import TaskFailed

    try:
        print(build_release(course, out), flush=True)
    except ReleaseError as error:
        return TaskFailed(f"{error}\nThe release was not written (the previous one, if any, is unchanged).")
    return True
