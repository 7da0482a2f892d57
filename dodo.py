"""The TinyTorch task graph (https://pydoit.org).

    doit                   export every module, run every checkpoint
    doit checkpoint:08     just what checkpoint 08 needs: its exports and checkpoints 00..08
    doit list --status     which tasks are up to date

export:NN_name   lesson -> tinytorch/core/*.py (file_dep: the lesson; targets: its exported files)
checkpoint:NN    pytest on checkpoints/checkpoint_NN_*.py; file_dep: that file plus every exported file
                 its imports reach (so doit runs the exports first); task_dep: the previous checkpoint
notebook:NN_name lesson -> build/notebooks/NN_name.ipynb
milestone:NN_name a historical result re-run on the package (milestones/NN_year_name.py, full mode);
                 file_dep: the script, the shared kit and every exported file its imports reach;
                 task_dep: the checkpoints of those files' modules (not a default task)
release          the student edition in build/release/ (not a default task)
mutants:NN_name  mutation testing of the lesson's solutions against its checkpoint -> build/mutants/NN.json
                 (not a default task; reruns when the lesson, the checkpoint or the mutator changes)

Modules listed in modules/course.toml whose lesson does not exist yet appear as placeholder tasks.
"""
import sys
from pathlib import Path

from tito import deps, doit_db, export, lock, manifest, milestones, mutants, notebooks, release, reporter, runner

COURSE = manifest.load(Path(__file__).parent)
DOIT_CONFIG = {
    "backend": "sqlite3",
    "dep_file": str(COURSE.build.db),
    "default_tasks": ["export", "checkpoint"],
    "action_string_formatting": "new",
}
if reporter.requested():  # make and tito ask for the quiet report; plain `doit` keeps doit's own
    DOIT_CONFIG["reporter"] = reporter.QuietReporter

READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}
COURSE.build.dir.mkdir(exist_ok=True)  # doit opens its database even to list tasks
if not READ_ONLY_COMMANDS.intersection(sys.argv[1:2]):
    try:
        lock.hold(COURSE)
    except lock.LockTimeout as error:
        print(f"tinytorch: {error}", file=sys.stderr)
        sys.exit(lock.EXIT_BUSY)
    doit_db.quarantine_if_corrupt(COURSE)
elif stand_in := doit_db.stand_in_if_corrupt(COURSE):
    DOIT_CONFIG["dep_file"] = str(stand_in)


def placeholder(name, module):
    return {"name": name, "actions": None, "doc": f"(not yet available: {module.source} does not exist)"}


def task_export():
    """Export each lesson's `#| export` cells into the tinytorch package."""
    for module in COURSE.modules:
        if not (COURSE.root / module.source).exists():
            yield placeholder(module.id, module)
            continue
        yield {
            "name": module.id,
            "doc": f"{module.source} -> {', '.join(p.as_posix() for p in module.exported_files)}",
            "file_dep": [module.source.as_posix()],
            "targets": [p.as_posix() for p in module.exported_files]
            + [COURSE.relative(COURSE.build.line_map(target)) for target in module.exports],
            "actions": [(export.doit_action, [COURSE, module])],
            "uptodate": [(export.exports_intact, [COURSE, module])],  # a hand-edited export is regenerated
            "clean": True,
        }


def task_checkpoint():
    """Run each checkpoint's tests; each needs the one before it."""
    file_deps = deps.all_checkpoint_file_deps(COURSE)
    for module in COURSE.modules:
        checkpoint = module.checkpoint
        previous = COURSE.previous(checkpoint)
        task_dep = [previous.task] if previous else []
        if not COURSE.available(module):
            yield {**placeholder(checkpoint.id, module), "task_dep": task_dep}
            continue
        yield {
            "name": checkpoint.id,
            "doc": f"{checkpoint.name}: {checkpoint.capability}",
            "file_dep": file_deps[checkpoint.id],
            "task_dep": task_dep,
            "actions": [(runner.doit_action, [COURSE, checkpoint])],
            "verbosity": reporter.verbosity(2),
        }


def task_notebook():
    """Write each lesson as a Jupyter notebook under build/notebooks/."""
    for module in COURSE.modules:
        if not (COURSE.root / module.source).exists():
            continue
        yield {
            "name": module.id,
            "file_dep": [module.source.as_posix()],
            "targets": [COURSE.relative(COURSE.build.notebook(module))],
            "actions": [(notebooks.write_notebook, [COURSE, module])],
            "clean": True,
        }


def task_milestone():
    """Re-run a historical result on your own package (full size); needs the checkpoints it uses."""
    file_deps = deps.all_milestone_file_deps(COURSE)
    for milestone in COURSE.milestones:
        if milestone.id not in file_deps:
            continue
        needs = milestones.needed_checkpoints(COURSE, file_deps[milestone.id])
        yield {
            "name": milestone.id,
            "doc": f"{milestone.year} {milestone.title} ({milestone.who})",
            "file_dep": file_deps[milestone.id],
            "task_dep": [checkpoint.task for checkpoint in needs],
            "targets": [COURSE.relative(COURSE.build.milestone_result(milestone.number))],
            "actions": [(milestones.doit_action, [milestone, COURSE])],
            "verbosity": 2,
        }


def task_release():
    """The student edition in build/release/: solutions become stubs with hints."""
    return {
        "file_dep": [p.as_posix() for p in release.source_files(COURSE)],
        "targets": [COURSE.relative(COURSE.build.release / "README.md")],
        "actions": [(release.doit_action, [COURSE])],
        "clean": [(release.clean, [COURSE])],
        "verbosity": 2,
    }


def task_mutants():
    """Mutation testing: how much wrong solution code each checkpoint catches (`make mutants`)."""
    if not (COURSE.root / mutants.EQUIVALENTS.parent).is_dir():  # the student edition has no tests/ and no solutions
        return
    tool = [p.as_posix() for p in (Path("tito") / "mutants.py", mutants.EQUIVALENTS) if (COURSE.root / p).exists()]
    for module in COURSE.modules:
        if not COURSE.available(module):
            continue
        yield {
            "name": module.id,
            "doc": f"mutants of {module.source.as_posix()} against {module.checkpoint.file.as_posix()}",
            "file_dep": [module.source.as_posix(), module.checkpoint.file.as_posix(), *tool],
            "targets": [COURSE.relative(COURSE.build.mutation_report(module))],
            "actions": [(mutants.doit_action, [COURSE, module])],
            "verbosity": 2,
        }
