"""The course: its manifest (modules/course.toml) as small immutable objects, where it lives
(`Course.root`) and where its generated files go (`Course.build`, a `Layout` of build/).

Everything that needs to know which modules exist -- dodo.py, the CLI, the release -- asks this
module, and every path under build/ is named here once. Paths of course files (`Module.source`,
`Checkpoint.file`) are relative to the root, as doit records them; layout paths are absolute.
It imports only the standard library so `tito checkpoint status` starts fast.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

MANIFEST = Path("modules") / "course.toml"
BUILD = Path("build")  # everything generated; ignored by git, removed by `make clean`


class UnknownName(ValueError):
    """A module or checkpoint name that is not in the course; carries the closest valid names."""

    def __init__(self, kind: str, name: str, suggestions: list[str], valid: list[str]):
        self.kind, self.name, self.suggestions, self.valid = kind, name, suggestions, valid
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"Unknown {kind} '{name}'.{hint}" if str(name).strip() else f"No {kind} name given.")


@dataclass(frozen=True)
class Checkpoint:
    id: str  # "08"
    name: str  # "differentiation"
    capability: str
    module_id: str

    @property
    def task(self) -> str:
        return f"checkpoint:{self.id}"

    @property
    def file(self) -> Path:
        return Path("checkpoints") / f"checkpoint_{self.id}_{self.name}.py"


class _NumberedId:
    """`NN_name` ids (modules, milestones): the number and the name, split once here."""

    id: str

    @property
    def number(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("_", 1)[1]


@dataclass(frozen=True)
class Module(_NumberedId):
    id: str  # "09_autograd"
    title: str
    stage: str
    exports: tuple[str, ...]  # ("core.autograd", "core.losses")
    checkpoint: Checkpoint
    index: int  # position in the course, 0-based

    @property
    def source(self) -> Path:
        return Path("modules") / self.id / f"{self.name}.py"

    @property
    def export_task(self) -> str:
        return f"export:{self.id}"

    @property
    def exported_files(self) -> list[Path]:
        return [export_path(target) for target in self.exports]


@dataclass(frozen=True)
class Milestone(_NumberedId):
    id: str  # "03_backprop"
    year: int
    title: str
    who: str

    @property
    def task(self) -> str:
        return f"milestone:{self.id}"

    @property
    def script(self) -> Path:
        return Path("milestones") / f"{self.number}_{self.year}_{self.name}.py"


@dataclass(frozen=True)
class Stage:
    name: str
    capability: str
    modules: tuple[Module, ...]


def export_path(target: str) -> Path:
    """`core.tensor` -> tinytorch/core/tensor.py"""
    return Path("tinytorch", *target.split(".")).with_suffix(".py")


def _under_build(name: str, doc: str) -> property:
    return property(lambda layout: layout.dir / name, doc=doc)


@dataclass(frozen=True)
class Layout:
    """Every generated path under the course's build/ folder, absolute."""

    dir: Path  # <root>/build
    db = _under_build(".doit.db", "doit's state database (sqlite3 backend)")
    lock = _under_build(".lock", "held by every process that may write doit's database")
    imports = _under_build(".imports.json", "tito.deps' cache of the imports found in lessons and checkpoints")
    checkpoints = _under_build("checkpoints", "each checkpoint's last result")
    line_maps = _under_build("line-maps", "for each exported file, the lesson line of each of its lines")
    notebooks = _under_build("notebooks", "the lessons as Jupyter notebooks")
    release = _under_build("release", "the student edition")
    grade = _under_build("grade", "class grading reports")
    bench = _under_build("bench", "benchmark reports")
    tinygpt = _under_build("tinygpt", "the trained TinyGPT (bench/train_tinygpt.py): checkpoint, vocabulary, report")
    milestones = _under_build("milestones", "each milestone's last result (NN.json) and its PNG pictures")
    mutants = _under_build("mutants", "each module's mutation-testing report (tito.mutants)")

    def result(self, checkpoint: Checkpoint) -> Path:
        """A checkpoint's last result (tito.results.CheckpointResult)."""
        return self.checkpoints / f"{checkpoint.id}.json"

    def notebook(self, module: Module) -> Path:
        return self.notebooks / f"{module.id}.ipynb"

    def milestone_result(self, number: str) -> Path:
        """Milestone NN's last result (tito.milestones.MilestoneResult)."""
        return self.milestones / f"{number}.json"

    def mutation_report(self, module: Module) -> Path:
        """Module NN's last mutation-testing report (tito.mutants.Report)."""
        return self.mutants / f"{module.number}.json"

    def line_map(self, target: str) -> Path:
        """For each line of an exported file, the lesson line it came from (0: generated)."""
        return self.line_maps / f"{target}.json"


@dataclass(frozen=True)
class Course:
    root: Path  # absolute: the folder holding modules/course.toml
    stages: tuple[Stage, ...]
    modules: tuple[Module, ...]
    milestones: tuple[Milestone, ...] = ()

    @cached_property
    def build(self) -> Layout:
        return Layout(self.root / BUILD)

    def at(self, root: Path) -> Course:
        """The same course in another folder (a grading copy)."""
        return replace(self, root=Path(root).resolve())

    def relative(self, path: Path) -> str:
        """A path under the root as the learner sees it from there: `build/checkpoints/08.json`."""
        return Path(path).relative_to(self.root).as_posix()

    def available(self, module: Module) -> bool:
        """The module's lesson and checkpoint both exist (dodo.py makes a placeholder task otherwise)."""
        return (self.root / module.source).is_file() and (self.root / module.checkpoint.file).is_file()

    def missing_file(self, module: Module) -> Path | None:
        """The first of the module's lesson and checkpoint that does not exist."""
        return next((p for p in (module.source, module.checkpoint.file) if not (self.root / p).is_file()), None)

    @cached_property
    def checkpoints(self) -> tuple[Checkpoint, ...]:
        return tuple(m.checkpoint for m in self.modules)

    def module_of(self, checkpoint: Checkpoint) -> Module:
        return next(m for m in self.modules if m.id == checkpoint.module_id)

    def module_for_target(self, target: str) -> Module | None:
        return next((m for m in self.modules if target in m.exports), None)

    def previous(self, checkpoint: Checkpoint) -> Checkpoint | None:
        index = self.checkpoints.index(checkpoint)
        return self.checkpoints[index - 1] if index else None

    def find_module(self, name: str) -> Module:
        """Accept `09_autograd`, `autograd`, `09` or `9`."""
        key = str(name).strip().lower()
        for m in self.modules:
            if key in (m.id, m.name) or (key.isdigit() and int(key) == int(m.number)):
                return m
        valid = [m.id for m in self.modules]
        raise UnknownName("module", name, _closest(key, valid + [m.name for m in self.modules]), valid)

    def find_checkpoint(self, name: str) -> Checkpoint:
        """Accept `8`, `08`, the checkpoint's name (`differentiation`) or its module's name
        (`09_autograd`, `autograd`). A number is always the checkpoint's own."""
        key = str(name).strip().lower()
        for c in self.checkpoints:
            if key in (c.name, c.module_id, c.module_id.split("_", 1)[1]) or (key.isdigit() and int(key) == int(c.id)):
                return c
        valid = [c.id for c in self.checkpoints]
        raise UnknownName("checkpoint", name, _closest(key, valid + [c.name for c in self.checkpoints]), valid)


    def find_milestone(self, name: str) -> Milestone:
        """Accept `03_backprop`, `backprop`, `03`, `3` or the year `1986`."""
        key = str(name).strip().lower()
        for m in self.milestones:
            if key in (m.id, m.name, str(m.year)) or (key.isdigit() and int(key) == int(m.number)):
                return m
        valid = [m.id for m in self.milestones]
        raise UnknownName("milestone", name, _closest(key, valid + [m.name for m in self.milestones]), valid)


def _closest(key: str, candidates: list[str]) -> list[str]:
    return difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)


def find_root(start: Path | None = None) -> Path:
    """The course root: the nearest folder at or above `start` holding modules/course.toml.

    TINYTORCH_ROOT overrides the search (used by graders and tests working on copies).
    """
    if os.environ.get("TINYTORCH_ROOT"):
        return Path(os.environ["TINYTORCH_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).is_file():
            return folder
    raise FileNotFoundError(f"No TinyTorch course here: {MANIFEST} was not found in {here} or above it.")


def load(root: Path | None = None) -> Course:
    """The course at `root` (default: found from the current folder, see find_root)."""
    root = Path(root).resolve() if root is not None else find_root()
    raw = tomllib.loads((root / MANIFEST).read_text(encoding="utf-8"))
    modules = []
    for index, row in enumerate(raw["module"]):
        number, name = row["checkpoint"].split()
        checkpoint = Checkpoint(number, name, row["capability"], row["id"])
        modules.append(Module(row["id"], row["title"], row["stage"], tuple(row["exports"]), checkpoint, index))
    stages = tuple(
        Stage(s["name"], s["capability"], tuple(m for m in modules if m.stage == s["name"])) for s in raw["stage"]
    )
    milestones = tuple(Milestone(r["id"], int(r["year"]), r["title"], r["who"]) for r in raw.get("milestone", []))
    return Course(root, stages, tuple(modules), milestones)
