"""Which exported files a checkpoint reaches through its imports, derived from the code itself.

A checkpoint imports `tinytorch.core.X`; the lesson exporting `core.X` may itself import other
`tinytorch.core` modules in its export cells, and so on. We read those imports from the lesson
sources (the exported files may not exist yet on a fresh clone), at module level only: an import
inside a function body runs late and is not a build dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tito.export import split_cells
from tito.manifest import Course, Checkpoint, export_path

PACKAGE = "tinytorch"


def imported_targets(code: str, package: str = PACKAGE) -> set[str]:
    """`core.X` names imported at module level by `code` (absolute or `from .X` relative imports)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()  # export reports the error with its line; here it just has no known imports
    found = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:  # from .tensor import Tensor
            names = [f"{package}.core.{node.module}" if node.module else f"{package}.core"]
            names += [f"{package}.core.{alias.name}" for alias in node.names if not node.module]
        elif isinstance(node, ast.ImportFrom) and node.module == f"{package}.core":  # from tinytorch.core import X
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        found |= {n[len(package) + 1 :] for n in names if n.startswith(package + ".core.")}
    return found


def _module_level(body: list[ast.stmt]):
    """Statements that run at import time: the body, and blocks of if/try/with at top level."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                yield from _module_level(block)


def export_code(course: Course, target: str, root: Path) -> str:
    """The code of the export cells of the lesson that produces `target` (empty when unavailable)."""
    module = course.module_for_target(target)
    source = root / module.source if module else None
    if not source or not source.is_file():
        return ""
    cells = split_cells(source.read_text(encoding="utf-8"))
    return "\n".join("\n".join(c.lines) for c in cells if c.kind == "code" and "export" in c.directives())


def reachable_targets(course: Course, code: str, root: Path) -> set[str]:
    """Every course target reached from `code` through imports, transitively."""
    known = {t for m in course.modules for t in m.exports}
    seen: set[str] = set()
    todo = [t for t in imported_targets(code) if t in known]
    while todo:
        target = todo.pop()
        if target not in seen:
            seen.add(target)
            todo += [t for t in imported_targets(export_code(course, target, root)) if t in known]
    return seen


def checkpoint_file_deps(course: Course, checkpoint: Checkpoint, root: Path = Path(".")) -> list[str]:
    """The checkpoint file plus every exported file its imports reach, as sorted relative paths."""
    code = (root / checkpoint.file).read_text(encoding="utf-8")
    exported = sorted(export_path(t).as_posix() for t in reachable_targets(course, code, root))
    return [checkpoint.file.as_posix(), *exported]
