"""Grading on the engines instructors already run: Gradescope and GitHub Classroom.

    tito autograder gradescope OUT.zip    a Gradescope autograder bundle
    tito autograder classroom [--release DIR]
                                          a GitHub Classroom workflow in the student edition

**Gradescope** unpacks the bundle into /autograder/source, runs `setup.sh` once to build its image,
then `run_autograder` once per submission, in a fresh container. The bundle holds the course as the
learner receives it (the student edition: the instructor's checkpoints and tooling, lessons as
stubs, no solutions) and a requirements file; `setup.sh` installs Python, bubblewrap (the sandbox
tool) and those requirements, the only downloads. `run_autograder` grades /autograder/submission
(the learner's repository, or its modules/ folder) with tito.grade.grade_one, exactly as
`tito grade` grades one learner (in bubblewrap when the container allows it; the container itself
is fresh for every submission), its evidence compared with the instructor's reference that the
bundle carries (`reference.json`, recorded when the bundle was built: values, never solutions), and
writes /autograder/results/results.json: one test per
checkpoint, and a summary of the capabilities unlocked and the next step. AUTOGRADER_ROOT moves
/autograder elsewhere (the tests use a temporary tree); AUTOGRADER_PYTHON picks the interpreter.

**GitHub Classroom** runs `.github/workflows/classroom.yml` on each push: one
autograding-command-grader step per checkpoint, `python -m tito checkpoint test NN`, worth the
checkpoint's points in `tito grade` (its number of test functions), then the grading reporter.
A Classroom step scores all or nothing on its exit code, so a checkpoint earns its points when it
passes (and every checkpoint before it, as in `tito grade`); `tito grade` and Gradescope also give
partial credit per test case. `.github/classroom/autograding.json` lists the same tests in
Classroom's older test-list format. Write them after `make release`, which rebuilds build/release/.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import resource
import sys
import time
import zipfile
from pathlib import Path

from tito.manifest import BUILD, MANIFEST, Course, Module, load
from tito.results import Status

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

COURSE = "course"  # the bundle's folder holding the student edition, under /autograder/source
REQUIREMENTS = "requirements.txt"
REFERENCE = "reference.json"  # the instructor's evidence per checkpoint (tito.evidence.Reference)
GRADESCOPE_ROOT = Path("/autograder")
WORKFLOW = Path(".github") / "workflows" / "classroom.yml"
TEST_LIST = Path(".github") / "classroom" / "autograding.json"
GRADER_ACTION = "classroom-resources/autograding-command-grader@v1"
REPORTER_ACTION = "classroom-resources/autograding-grading-reporter@v1"
PYTHON_VERSION = "3.11"  # on the Classroom runner
PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
YAML_BOOLEANS = {"y", "n", "yes", "no", "on", "off", "true", "false"}  # YAML 1.1 reads these as booleans

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
# The only downloads of the whole autograder: Python, bubblewrap (the sandbox) and the course's
# Python packages. Grading itself fetches nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap procps
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet -r /autograder/source/{requirements}
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this once per submission: grade /autograder/submission with the course in this
# bundle and write /autograder/results/results.json. AUTOGRADER_ROOT replaces /autograder and
# AUTOGRADER_PYTHON the interpreter (for trying the bundle outside Gradescope).
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
python="${{AUTOGRADER_PYTHON:-$root/venv/bin/python}}"
cd "$root/source/{course}"
exec "$python" -m tito.autograder run --root "$root"
"""


class AutograderProblem(Exception):
    """A condition reported as one line (exit code 3), never as a traceback."""


# --- points, shared by both engines ------------------------------------------------------------------


def checkpoint_points(course: Course, modules: list[Module]) -> dict[str, int]:
    """Each graded checkpoint's maximum points, as `tito grade` counts them (its test functions)."""
    from tito import runner

    return {m.checkpoint.id: runner.count_tests(course.root / m.checkpoint.file) for m in modules}


# --- Gradescope: the bundle -------------------------------------------------------------------------


def requirements(course: Course) -> str:
    """The course's runtime dependencies, one a line, from its pyproject.toml."""
    project = tomllib.loads((course.root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return "".join(f"{line}\n" for line in project["dependencies"])


def _add(bundle: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    """A file with a fixed date and mode, so that the same sources give the same bundle."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, data)


def references(course: Course) -> bytes:
    """The instructor's solution run as `tito grade` runs it, twice: the reference of every checkpoint."""
    from tito import grade as grading
    from tito import sandbox

    try:
        found = grading.build_references(course, grading.graded(course), grading.ONE_LEARNER, sandbox.detect())
    except grading.GradingBroken as error:
        raise AutograderProblem(str(error)) from None
    return json.dumps({cid: reference.to_json() for cid, reference in found.items()}).encode()


def build_bundle(course: Course, out: Path) -> int:
    """Write the Gradescope bundle to `out`; the number of files in it."""
    from tito import release

    try:
        files, _ = release.render(course)
    except release.ReleaseError as error:
        raise AutograderProblem(f"the student edition cannot be built:\n{error}") from None
    reference = references(course)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as bundle:
        _add(bundle, "setup.sh", SETUP_SH.format(requirements=REQUIREMENTS).encode(), executable=True)
        _add(bundle, "run_autograder", RUN_AUTOGRADER.format(course=COURSE).encode(), executable=True)
        _add(bundle, REQUIREMENTS, requirements(course).encode())
        _add(bundle, REFERENCE, reference)
        for relative, data in files.items():
            _add(bundle, f"{COURSE}/{relative.as_posix()}", data)
    return len(files) + 4


# --- Gradescope: grading one submission -------------------------------------------------------------


def summary(grade, course: Course) -> str:
    """The top of the learner's Gradescope page: what they can now say, and what to do next."""
    unlocked = []
    for checkpoint in course.checkpoints:
        cell = grade.cells.get(checkpoint.id)
        if cell is None or cell.status != Status.PASSED:
            break
        unlocked.append(f"  ✓ {checkpoint.id} · {checkpoint.name}: {checkpoint.capability}")
    lines = [f"Score: {grade.score:g}/{grade.max_score} points. "
             f"Capabilities unlocked: {len(unlocked)} of {len(grade.cells)}."]  # fmt: skip
    lines += unlocked
    pending = next((c for c in course.checkpoints if c.id in grade.cells and grade.cells[c.id].status != Status.PASSED), None)
    if pending is None:
        lines.append("Next step: none. Every checkpoint passed: the whole course is yours.")
    else:
        cell = grade.cells[pending.id]
        module = course.module_of(pending)
        why = cell.note or f"{cell.passed}/{cell.total} test cases passed"
        lines.append(f"Next step: checkpoint {pending.id} · {pending.name} ({cell.status}: {why}). "
                     f"Work on {module.source.as_posix()}, then run `tito checkpoint test {pending.id}`.")  # fmt: skip
    lines += [f"Problem: {p}" for p in grade.problems]
    return "\n".join(lines)


def results(grade, course: Course, seconds: float, peak_mb: float) -> dict:
    """Gradescope's results.json for one graded submission: tito.reports.gradescope's tests, each
    visible and tagged with its stage, under a summary of capabilities and the next step."""
    from tito import reports

    data = reports.gradescope(grade, course)
    stages = {m.checkpoint.id: m.stage for m in course.modules}
    ids = [c.id for c in course.checkpoints if c.id in grade.cells]
    for checkpoint_id, test in zip(ids, data["tests"]):
        test.update(number=checkpoint_id, visibility="visible", tags=[stages[checkpoint_id]])
    data.update(
        output=summary(grade, course), execution_time=math.ceil(seconds), visibility="visible",
        stdout_visibility="hidden", extra_data={"peak_memory_mb": round(peak_mb), "problems": grade.problems},
    )  # fmt: skip
    return data


def peak_memory_mb() -> float:
    """The largest resident set of this process and of any process it waited for, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # ru_maxrss is in KiB on Linux


def run_gradescope(autograder: Path) -> int:
    """Grade autograder/submission with the course in autograder/source; write the results."""
    from tito import grade as grading
    from tito import reports, sandbox
    from tito.evidence import Reference

    started = time.monotonic()
    course = load(autograder / "source" / COURSE)
    submission = autograder / "submission"
    modules = grading.graded(course)
    stored = json.loads((autograder / "source" / REFERENCE).read_text(encoding="utf-8"))
    expected = {cid: Reference.from_json(data) for cid, data in stored.items()}
    # One BLAS thread (ONE_LEARNER), as the checkpoints run by default: threads that wait for a busy
    # core make a product hundreds of times slower, and a container's cores may be shared.
    graded = grading.grade_one(course, modules, submission, expected, grading.ONE_LEARNER, sandbox.detect())
    data = results(graded, course, time.monotonic() - started, peak_memory_mb())
    reports.write(autograder / "results" / "results.json", data)
    print(data["output"])
    return 0


# --- GitHub Classroom ---------------------------------------------------------------------------------


def classroom_tests(course: Course) -> list[dict]:
    """One test per checkpoint the course grades, in course order, worth its `tito grade` points."""
    from tito import grade as grading

    modules = grading.graded(course)
    points = checkpoint_points(course, modules)
    minutes = math.ceil(grading.TIMEOUT / 60)
    return [
        {
            "id": f"checkpoint-{m.checkpoint.id}",
            "name": f"Checkpoint {m.checkpoint.id} · {m.checkpoint.name}",
            "command": f"python -m tito checkpoint test {m.checkpoint.id}",
            "timeout": minutes,
            "points": points[m.checkpoint.id],
        }
        for m in modules
    ]  # fmt: skip


def workflow(tests: list[dict]) -> dict:
    """The Classroom autograding workflow: checkout, Python and the course, one grader per test, the reporter."""
    graders = [
        {
            "name": test["name"], "id": test["id"], "uses": GRADER_ACTION,
            "with": {"test-name": test["name"], "setup-command": "", "command": test["command"],
                     "timeout": test["timeout"], "max-score": test["points"]},
        }
        for test in tests
    ]  # fmt: skip
    reporter = {
        "name": "Autograding Reporter",
        "uses": REPORTER_ACTION,
        "env": {f"{t['id'].upper()}_RESULTS": f"${{{{steps.{t['id']}.outputs.result}}}}" for t in tests},
        "with": {"runners": ",".join(t["id"] for t in tests)},
    }
    setup = [
        {"name": "Checkout code", "uses": "actions/checkout@v4"},
        {"name": "Set up Python", "uses": "actions/setup-python@v5", "with": {"python-version": PYTHON_VERSION}},
        {"name": "Install TinyTorch", "run": "python -m pip install --quiet -e ."},
    ]
    return {
        "name": "Autograding Tests",
        "on": ["push", "workflow_dispatch", "repository_dispatch"],
        "permissions": {"checks": "write", "actions": "read", "contents": "read"},
        "jobs": {
            "run-autograding-tests": {
                "runs-on": "ubuntu-latest",
                "if": "github.actor != 'github-classroom[bot]'",
                "steps": setup + graders + [reporter],
            }
        },
    }


def test_list(tests: list[dict]) -> dict:
    """The same tests in Classroom's autograding.json format."""
    return {
        "tests": [
            {"name": t["name"], "setup": "", "run": t["command"], "input": "", "output": "",
             "comparison": "included", "timeout": t["timeout"], "points": t["points"]}
            for t in tests
        ]
    }  # fmt: skip


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists, strings and numbers. Strings are written as JSON strings,
    which YAML reads back unchanged, so no value needs YAML's own quoting rules."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            nested = isinstance(item, (dict, list)) and item
            lines.append(f"{pad}{_key(key)}:" + ("\n" + to_yaml(item, indent + 2) if nested else f" {_scalar(item)}"))
        return "\n".join(lines)
    lines = []
    for item in value:
        text = to_yaml(item, indent + 2) if isinstance(item, (dict, list)) and item else f"{pad}  {_scalar(item)}"
        lines.append(f"{pad}- {text[indent + 2:]}")
    return "\n".join(lines)


def _key(key: str) -> str:
    """A plain key where YAML reads it back as the same string; quoted otherwise (`on` would be True)."""
    return key if PLAIN_KEY.fullmatch(key) and key.lower() not in YAML_BOOLEANS else json.dumps(key)


def _scalar(value) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else ("{}" if isinstance(value, dict) else "[]")


def write_classroom(release_dir: Path) -> list[dict]:
    """Write the workflow and the test list into the student edition at `release_dir`."""
    if not (release_dir / MANIFEST).is_file():
        raise AutograderProblem(f"{release_dir} is not a student edition "
                                f"({MANIFEST.as_posix()} is missing); run `make release` first.")  # fmt: skip
    tests = classroom_tests(load(release_dir))
    header = "# GitHub Classroom autograding, written by `tito autograder classroom`: one test per checkpoint.\n"
    (release_dir / WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (release_dir / WORKFLOW).write_text(header + to_yaml(workflow(tests)) + "\n", encoding="utf-8")
    (release_dir / TEST_LIST).parent.mkdir(parents=True, exist_ok=True)
    (release_dir / TEST_LIST).write_text(json.dumps(test_list(tests), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return tests


# --- command line ---------------------------------------------------------------------------------


def _given_path(text: str) -> Path:
    return Path(text).resolve()


def add_parser(groups, **parser_options) -> None:
    """`tito autograder {gradescope,classroom}`, added to tito's subcommand groups."""
    autograder = groups.add_parser("autograder", help="Gradescope bundle and GitHub Classroom workflow",
                                   description=__doc__.split("\n\n")[0], **parser_options)  # fmt: skip
    commands = autograder.add_subparsers(dest="command", metavar="{gradescope,classroom}")
    bundle = commands.add_parser("gradescope", help="write a Gradescope autograder bundle (a .zip)", **parser_options)
    bundle.add_argument("out", metavar="OUT.zip", type=_given_path, help="where to write the bundle")
    bundle.set_defaults(handler=cmd_gradescope)
    classroom = commands.add_parser("classroom", help="write the GitHub Classroom workflow into the student edition",
                                    **parser_options)  # fmt: skip
    classroom.add_argument("--release", type=_given_path, default=None, metavar="DIR",
                           help=f"the student edition (default {BUILD}/release, made by `make release`)")  # fmt: skip
    classroom.set_defaults(handler=cmd_classroom)
    autograder.set_defaults(handler=lambda args, course: autograder.print_help() or 2)


def cmd_gradescope(args, course: Course) -> int:
    try:
        count = build_bundle(course, args.out)
    except (AutograderProblem, OSError) as error:
        print(f"tito autograder: {error}", file=sys.stderr)
        return 3
    print(f"Gradescope autograder: {args.out} ({count} files). Upload it as the assignment's autograder "
          f"(Ubuntu base image); submissions are the learner's repository or its modules/ folder.")  # fmt: skip
    return 0


def cmd_classroom(args, course: Course) -> int:
    release_dir = args.release or course.build.release
    try:
        tests = write_classroom(release_dir)
    except (AutograderProblem, OSError) as error:
        print(f"tito autograder: {error}", file=sys.stderr)
        return 3
    total = sum(t["points"] for t in tests)
    print(f"GitHub Classroom: {release_dir / WORKFLOW} and {release_dir / TEST_LIST}: "
          f"{len(tests)} tests, {total} points.")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m tito.autograder run --root DIR`: what the bundle's run_autograder calls."""
    parser = argparse.ArgumentParser(prog="python -m tito.autograder")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="grade DIR/submission into DIR/results/results.json (Gradescope)")
    run.add_argument("--root", type=Path, default=GRADESCOPE_ROOT, help="the autograder folder (default /autograder)")
    args = parser.parse_args(argv)
    return run_gradescope(args.root.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
