"""Which exported files a checkpoint reaches through its imports, derived from the code itself.

Owns the checkpoint tasks' file dependencies and their import cache (build/.imports.json).

A checkpoint imports `tinytorch.core.X`; the lesson exporting `core.X` may itself import other
`tinytorch.core` modules in its export cells, and so on. We read those imports from the lesson
sources (the exported files may not exist yet on a fresh clone), at module level only: an import
inside a function body runs late and is not a build dependency.

The PyTorch-style namespaces (`tinytorch.nn`, `tinytorch.optim`, ...) import nothing themselves; a
name imported from one reaches only the lesson module that name lives in (`from tinytorch.nn import
Linear` reaches core.layers), read from the namespaces' own table in `tinytorch/_names.py`. A whole
namespace imported (`from tinytorch import nn`) reaches every module it can name.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

from tinytorch._names import MODULE_ALIASES, NAMESPACES, SUBMODULES
from tito.export import ExportError, collect, read_source, write_atomic
from tito.manifest import Checkpoint, Course, Module, export_path

PACKAGE = "tinytorch"
MILESTONE_KIT = Path("milestones") / "kit.py"  # shared by every milestone script


def imported_targets(code: str, package: str = PACKAGE, everywhere: bool = False) -> set[str]:
    """`core.X` names imported at module level by `code` (absolute or `from .X` relative imports);
    `everywhere` adds the imports inside functions (what a script needs by the time it has run)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()  # export reports the error with its line; here it just has no known imports
    found = set()
    for node in ast.walk(tree) if everywhere else _module_level(tree.body):
        found |= _namespace_imports(node, package)
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


def _namespace_imports(node: ast.stmt, package: str) -> set[str]:
    """`core.X` targets an import from a PyTorch-style namespace reaches (see tinytorch/_names.py)."""
    if isinstance(node, ast.Import):
        return set().union(*(_whole_namespace(alias.name) for alias in node.names))
    if not isinstance(node, ast.ImportFrom) or node.level or node.module is None:
        return set()
    if node.module in MODULE_ALIASES:
        return {MODULE_ALIASES[node.module]}
    table, found = NAMESPACES.get(node.module, {}), set()
    for alias in node.names:
        if alias.name in table:
            found.add(table[alias.name].partition(":")[0])
        elif alias.name in SUBMODULES.get(node.module, []) or f"{node.module}.{alias.name}" in MODULE_ALIASES:
            found |= _whole_namespace(f"{node.module}.{alias.name}")
    return found if node.module.split(".")[0] == package else set()


def _whole_namespace(name: str) -> set[str]:
    """Every target namespace `name` can name, its sub-namespaces included (nothing for the bare package)."""
    if name in MODULE_ALIASES:
        return {MODULE_ALIASES[name]}
    if name not in NAMESPACES or "." not in name:
        return set()
    found = {entry.partition(":")[0] for entry in NAMESPACES[name].values()}
    return found.union(*(_whole_namespace(f"{name}.{sub}") for sub in SUBMODULES.get(name, [])))


def _module_level(body: list[ast.stmt]):
    """Statements that run at import time: the body, and blocks of if/try/with at top level."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                yield from _module_level(block)


def export_code_by_target(course: Course, module: Module) -> dict[str, str]:
    """The code of each target's export cells in one lesson ({} when the lesson does not exist)."""
    source = course.root / module.source
    if not source.is_file():
        return {}
    try:
        exports = collect(module, read_source(source, module.source))
    except ExportError:
        return {}  # the export task reports it; until it is fixed the lesson has no known imports
    return {target: "\n".join("\n".join(code) for _, code in e.chunks) for target, e in exports.items()}


def _well_formed(stored) -> bool:
    """As ImportCache.save writes it: {path: {"stamp": [mtime_ns, size] or None, "value": imports}},
    the imports of a lesson by target ({target: [names]}), of a checkpoint a list of names."""

    def names(value) -> bool:
        return isinstance(value, list) and all(isinstance(name, str) for name in value)

    def entry_ok(path, entry) -> bool:
        if not (isinstance(entry, dict) and entry.keys() == {"stamp", "value"}):
            return False
        value = entry["value"]
        by_target = isinstance(value, dict) and all(names(v) for v in value.values())
        return (entry["stamp"] is None or isinstance(entry["stamp"], list)) and (
            by_target if path.startswith("modules/") else names(value))  # fmt: skip

    return isinstance(stored, dict) and all(entry_ok(path, entry) for path, entry in stored.items())


def _text_or_empty(path: Path) -> str:
    """A checkpoint's text for its imports; one that is not UTF-8 has none known (pytest reports it)."""
    try:
        return read_source(path)
    except ExportError:
        return ""


class ImportCache:
    """Imports found in each file, kept in build/.imports.json and keyed by the file's mtime and size.

    Parsing every lesson and checkpoint costs ~0.2 s, too much for a no-op build; like doit's own
    checks, an unchanged stamp means an unchanged file.
    """

    def __init__(self, course: Course):
        self.root, self.path, self.fresh = course.root, course.build.imports, {}
        self.stored = self._load(course)

    def _load(self, course: Course) -> dict:
        """The stored entries; a damaged cache is reported once and rebuilt, never trusted."""
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            problem = f"unreadable ({error})"
        else:
            if _well_formed(stored):
                return stored
            problem = f"not an import cache (a JSON {type(stored).__name__} of the wrong shape)"
        print(f"warning: {course.relative(self.path)} is {problem}; rebuilding it", file=sys.stderr)
        return {}

    def get(self, relative: Path, compute):
        path = self.root / relative
        stamp = [path.stat().st_mtime_ns, path.stat().st_size] if path.is_file() else None
        entry = self.stored.get(relative.as_posix())
        if entry is None or entry["stamp"] != stamp:
            entry = {"stamp": stamp, "value": compute()}
        self.fresh[relative.as_posix()] = entry
        return entry["value"]

    def save(self) -> None:
        """Write what this run looked up (entries of files that no longer exist are dropped)."""
        if self.fresh != self.stored:
            write_atomic(self.path, json.dumps(self.fresh, sort_keys=True))


def import_graph(course: Course, cache: ImportCache | None = None) -> dict[str, set[str]]:
    """For every course target, the course targets its export cells import."""
    own_cache = cache is None
    cache = cache or ImportCache(course)
    known = {t for m in course.modules for t in m.exports}
    graph = {}
    for module in course.modules:
        imports = cache.get(module.source, lambda: {
            target: sorted(imported_targets(code)) for target, code in export_code_by_target(course, module).items()
        })  # fmt: skip
        for target in module.exports:
            graph[target] = set(imports.get(target, [])) & known
    if own_cache:
        cache.save()
    return graph


def reachable_targets(course: Course, code: str, graph: dict[str, set[str]] | None = None,
                      everywhere: bool = False) -> set[str]:  # fmt: skip
    """Every course target reached from `code` through imports, transitively."""
    graph = graph if graph is not None else import_graph(course)
    return _closure(imported_targets(code, everywhere=everywhere), graph)


def _closure(start, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [t for t in start if t in graph]
    while todo:
        target = todo.pop()
        if target not in seen:
            seen.add(target)
            todo += graph[target]
    return seen


def checkpoint_file_deps(course: Course, checkpoint: Checkpoint) -> list[str]:
    """The checkpoint file plus every exported file its imports reach, as sorted relative paths."""
    return all_checkpoint_file_deps(course)[checkpoint.id]


def all_checkpoint_file_deps(course: Course) -> dict[str, list[str]]:
    """checkpoint id -> the checkpoint file plus every exported file its imports reach, for every
    checkpoint whose file exists."""
    return _file_deps(course, {checkpoint.id: checkpoint.file for checkpoint in course.checkpoints})


def all_milestone_file_deps(course: Course) -> dict[str, list[str]]:
    """milestone id -> its script, the milestones' shared kit and every exported file the script's
    imports reach, for every milestone whose script exists (derived like a checkpoint's)."""
    return _file_deps(course, {milestone.id: milestone.script for milestone in course.milestones}, MILESTONE_KIT)


def _file_deps(course: Course, files: dict[str, Path], *shared: Path) -> dict[str, list[str]]:
    """id -> [its file, the `shared` files, every exported file its imports reach (sorted)], for each
    file that exists; one import cache, saved once."""
    cache = ImportCache(course)
    graph = import_graph(course, cache)
    found = {}
    for key, relative in files.items():
        if (course.root / relative).is_file():
            reached = _reached_files(course, relative, cache, graph)
            found[key] = [relative.as_posix(), *(path.as_posix() for path in shared), *reached]
    cache.save()
    return found


def _reached_files(course: Course, relative: Path, cache: ImportCache, graph: dict[str, set[str]]) -> list[str]:
    """The exported files reached from one file's imports, as sorted relative paths."""
    imports = cache.get(relative, lambda: sorted(imported_targets(_text_or_empty(course.root / relative))))
    return sorted(export_path(t).as_posix() for t in _closure(imports, graph))
