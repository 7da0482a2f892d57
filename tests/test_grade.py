"""Grading a class (`tito grade`): verdicts earned in a sandbox, a run no submission can break.

One class run over the Foundation's first two lessons (checkpoints 00 and 01), through the command
line, with short limits. Besides an honest learner and the plain student edition, the class holds
ordinary trouble (a partial, a broken, an empty submission) and the attack suite: each attacker is
the student edition with one export cell appended to its setup lesson (run when checkpoint 00
imports it), written as a learner who knows exactly where the instructor's files, the other
submissions and the report are. For every attacker: a score no higher than the student edition's.
For the class: the honest learner at full score with its files unchanged, a row for everyone, no
process left behind, no secret of the instructor's or a peer's in any report.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tito import release, sandbox

from .conftest import ROOT, make_copy
from .test_journey import stub_one_block

TIMEOUT = 60  # seconds per learner: the hanging one costs this much
LESSONS = ("01_setup", "02_tensor")
SECRET = "INSTRUCTOR-SECRET-7f3a9c"  # in a file of the instructor's course
PEER = "PEER-MARKER-51d2e8"  # in the honest learner's lesson
DAEMON = "DAEMON-MARKER-c0ffee"  # in the command line of the daemon an attacker leaves
EXPORT = "\n\n# %%\n#| export\n"

needs_sandbox = pytest.mark.skipif(
    sandbox.detect() is not sandbox.Isolation.BUBBLEWRAP,
    reason="the attack suite needs bubblewrap (apt-get install bubblewrap) and permission to create namespaces",
)

# Each attack is the body of `def _attack(course, submissions, instructor, repository, scratch):`, called
# at import. The paths are those of the grading machine (scratch: where the grader makes its temporary
# courses), as a well-informed attacker would guess them.
ATTACKS = {
    "forger": """
        import json, os
        forged = {"status": "passed", "tests_passed": 99, "tests_total": 1, "tests": [], "note": None}
        os.makedirs("build/checkpoints", exist_ok=True)
        for number in ("00", "01"):
            with open(f"build/checkpoints/{number}.json", "w") as handle:
                json.dump(forged, handle)
        if os.environ.get("TITO_RESULT_JSON"):
            with open(os.environ["TITO_RESULT_JSON"], "w") as handle:
                json.dump({"tests": [], "tests_passed": 6, "duration": 0.1, "finished_at": "now"}, handle)
        folder = os.environ.get("TITO_EVIDENCE_DIR", "build/evidence")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "checkpoint_00_environment.jsonl"), "w") as handle:
            for name in ("test_system_info_describes_this_machine", "test_environment_checks_pass"):
                nodeid = f"checkpoints/checkpoint_00_environment.py::{name}"
                handle.write(json.dumps({"t": nodeid, "l": 13, "v": True}) + "\\n")
                handle.write(json.dumps({"t": nodeid, "end": True}) + "\\n")
        os._exit(0)
    """,
    "hooker": """
        import _pytest.runner
        original = _pytest.runner.TestReport.from_item_and_call
        def passed(item, call):
            report = original(item, call)
            report.outcome, report.longrepr = "passed", None
            return report
        _pytest.runner.TestReport.from_item_and_call = staticmethod(passed)
    """,
    "patcher": """
        import builtins, numpy, numpy.testing
        numpy.testing.assert_allclose = lambda *args, **kwargs: None
        numpy.testing.assert_array_equal = lambda *args, **kwargs: None
        numpy.allclose = lambda *args, **kwargs: True
        def record(line, value):
            return value
        builtins.__evidence__ = record
    """,
    "killer": """
        import os, signal
        for pid in (os.getppid(), 1):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    """,
    "snooper": """
        import glob, os
        found = []
        peers = glob.glob(os.path.join(scratch, "tinytorch-grade-*", "course"))  # other runs, the reference among them
        for place in [instructor, repository, submissions, *peers]:
            for path in glob.glob(os.path.join(place, "**", "*.*"), recursive=True)[:500]:
                try:
                    found.append(path + ": " + open(path, errors="replace").read(2000))
                except OSError:
                    pass
        for proc in glob.glob("/proc/[0-9]*"):
            for name in ("environ", "cmdline", "cwd/SECRET.txt", "root" + instructor + "/SECRET.txt"):
                try:
                    found.append(open(os.path.join(proc, name), "rb").read(2000).decode("utf-8", "replace"))
                except OSError:
                    pass
        for name in ("setup.py", "tensor.py"):
            for root in (instructor, repository, *peers):
                try:
                    solution = open(os.path.join(root, "tinytorch", "core", name)).read()
                except OSError:
                    continue
                open(os.path.join("tinytorch", "core", name), "w").write(solution)
                if name == "setup.py":
                    exec(compile(solution, "solution", "exec"), globals())
        print("\\n".join(found)[-20000:])
    """,
    "vandal": """
        import glob, os
        lesson = os.path.join("modules", "02_tensor", "tensor.py")
        targets = [os.path.join(submissions, "good", "modules", "02_tensor", "tensor.py")]
        targets += [os.path.join("../" * depth, "good", "modules", "02_tensor", "tensor.py") for depth in range(1, 9)]
        targets += [os.path.join(cwd, "..", "..", "good", lesson) for cwd in glob.glob("/proc/*/cwd")]
        targets += [os.path.join(instructor, "build", "grade", "report.json"), os.path.join(instructor, "dodo.py")]
        for target in targets:
            try:
                with open(target, "a") as handle:
                    handle.write("\\nraise SystemExit('vandalised')\\n")
            except OSError:
                pass
        for depth in range(1, 9):
            try:
                open(os.path.join("../" * depth, "PWNED"), "w").write("x")
            except OSError:
                pass
    """,
    "linker": """
        import os
        secret = os.path.join(instructor, "SECRET.txt")
        for folder in ("build/checkpoints", "build/evidence"):
            os.makedirs(folder, exist_ok=True)
        for link, target in [("build/checkpoints/00.json", secret),
                             ("build/evidence/checkpoint_00_environment.jsonl", secret),
                             ("build/evidence/checkpoint_01_foundation.jsonl", "/dev/zero")]:
            try:
                os.remove(link)
            except OSError:
                pass
            os.symlink(target, link)
        os.rename("build/evidence", "build/evidence-moved")
        os.symlink(instructor, "build/evidence")
        os._exit(0)
    """,
    "daemon": """
        import os, subprocess, sys
        script = ("import os, signal, time\\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
                  "signal.signal(signal.SIGHUP, signal.SIG_IGN)\\n"
                  "for _ in range(600):\\n"
                  "    for target in (%r, %r):\\n"
                  "        try:\\n"
                  "            open(target, 'a').write('tampered')\\n"
                  "        except OSError:\\n"
                  "            pass\\n"
                  "    time.sleep(0.5)\\n"
                  "# DAEMON_MARK\\n") % (os.path.join(instructor, "build", "grade", "report.json"),
                                         os.path.join(submissions, "good", "modules", "01_setup", "setup.py"))
        if os.fork() == 0:
            os.setsid()
            subprocess.Popen([sys.executable, "-c", script.replace("DAEMON_MARK", DAEMON)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            os._exit(0)
    """,
    "forkbomb": """
        import os, time
        for _ in range(100000):
            try:
                if os.fork() == 0:
                    time.sleep(3600)
                    os._exit(0)
            except OSError:
                break
    """,
    "membomb": """
        hoard = []
        try:
            while True:
                hoard.append(b"x" * 2**27)
        except MemoryError:
            pass
        globals()["_HOARD"] = hoard
    """,
    "flood": """
        import os, sys
        line = "flood " * 1000 + "\\n"
        try:
            for _ in range(100000):
                sys.stdout.write(line)
                sys.stderr.write(line)
            with open("build/flood.bin", "wb") as handle:
                for _ in range(10000):
                    handle.write(b"x" * 2**20)
        except OSError:
            pass
    """,
    "garbler": """
        import os, sys
        junk = b"\\xff\\xfe\\x80\\xc3(\\x1b[2J\\x1b]0;owned\\x07[bold red]markup[/]\\x00"
        sys.stdout.buffer.write(junk * 100)
        sys.stdout.flush()
        os.makedirs("build/checkpoints", exist_ok=True)
        open("build/checkpoints/00.json", "wb").write(b'{"tests_passed": "\\xff", "tests_total": []}')
        folder = os.environ.get("TITO_EVIDENCE_DIR", "build/evidence")
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, "checkpoint_00_environment.jsonl"), "wb").write(junk + b"\\n" + b"[" * 100000)
    """,
}


def lesson_name(module_id: str) -> str:
    return f"{module_id.split('_', 1)[1]}.py"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def attack_cell(body: str, course: Path, submissions: Path, scratch: Path) -> str:
    call = f"_attack({str(course)!r}, {str(submissions)!r}, {str(course)!r}, {str(ROOT)!r}, {str(scratch)!r})"
    code = f"DAEMON = {DAEMON!r}\n" + textwrap.dedent(body)
    signature = "def _attack(course, submissions, instructor, repository, scratch):\n"
    return EXPORT + signature + textwrap.indent(code, "    ") + call + "\n"


def make_submissions(course: Path, folder: Path, scratch: Path) -> None:
    source = {m: (course / "modules" / m / lesson_name(m)).read_text() for m in LESSONS}
    student = {m: release.stub_lesson(text, lesson_name(m)).text for m, text in source.items()}

    def learner(name: str, lessons: dict[str, str], repository: bool = True) -> None:
        base = folder / name / "modules" if repository else folder / name
        for module_id, text in lessons.items():
            write(base / module_id / lesson_name(module_id), text)

    learner("good", {**source, "02_tensor": source["02_tensor"] + f"\n# {PEER}\n"})
    write(folder / "good" / "tinytorch" / "core" / "tensor.py", "raise SystemExit('a stale export must be ignored')\n")
    learner("student", student)
    learner("partial", {"01_setup": source["01_setup"], "02_tensor": stub_one_block(source["02_tensor"])[0]}, False)
    write(folder / "partial" / "checkpoints" / "checkpoint_01_foundation.py", "def test_everything():\n    pass\n")
    learner("broken", {**source, "02_tensor": source["02_tensor"].replace("#| export\n", "#| export\ndef oops(:\n", 1)})
    (folder / "missing").mkdir()
    learner("hanging", {**student, "01_setup": student["01_setup"] + EXPORT + "while True:\n    pass\n"})
    for name, body in ATTACKS.items():
        learner(name, {**student, "01_setup": student["01_setup"] + attack_cell(body, course, folder, scratch)})


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def daemons() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if DAEMON.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.detect() is not sandbox.Isolation.BUBBLEWRAP:
        pytest.skip("the class run needs bubblewrap (apt-get install bubblewrap)")
    base = tmp_path_factory.mktemp("grade")
    course = make_copy(base / "course", module_count=len(LESSONS))
    write(course.path("SECRET.txt"), SECRET)
    folder, scratch = base / "submissions", base / "scratch"
    scratch.mkdir()
    make_submissions(course.root, folder, scratch)
    honest_before = fingerprint(folder / "good")
    started = time.monotonic()
    result = course.tito(
        "grade", str(folder), "--jobs", "3", "--timeout", str(TIMEOUT), "--test-timeout", "20", "--memory-mb", "2048",
        "--json", "build/grade/report.json", "--gradescope", "build/grade/gradescope",
        timeout=TIMEOUT * 12, env={"COLUMNS": "100", "TMPDIR": str(scratch)},
    )  # fmt: skip
    report_path = course.path("build/grade/report.json")
    assert report_path.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    written = report_path.read_bytes()
    time.sleep(2)  # a daemon that survived would rewrite the report now
    return {
        "course": course, "result": result, "folder": folder, "honest_before": honest_before, "scratch": scratch,
        "report": json.loads(written), "report_bytes": written, "report_later": report_path.read_bytes(),
        "learners": {row["learner"]: row for row in json.loads(written)["learners"]},
        "seconds": time.monotonic() - started,
    }  # fmt: skip


def statuses(learner: dict) -> dict[str, str]:
    return {cid: cell["status"] for cid, cell in learner["checkpoints"].items()}


def test_the_class_run_ends_with_a_report_for_everyone(graded):
    result, learners = graded["result"], graded["learners"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    expected = {"good", "student", "partial", "broken", "missing", "hanging", *ATTACKS}
    assert set(learners) == expected
    assert graded["report"]["checkpoints"] == ["00", "01"]
    assert graded["report"]["limits"]["isolation"] == "bubblewrap"
    assert "Isolation: bubblewrap" in result.stdout and "TinyTorch grades" in result.stdout
    for name in expected:
        assert name in result.stdout


def test_the_honest_learner_keeps_full_score_and_unchanged_files(graded):
    good = graded["learners"]["good"]
    assert statuses(good) == {"00": "passed", "01": "passed"}
    assert good["score"] == good["max_score"] > 0 and good["problems"] == [] and good["broken"] == ""
    assert fingerprint(graded["folder"] / "good") == graded["honest_before"]


@pytest.mark.parametrize("attacker", [*ATTACKS, "hanging"])
def test_an_attacker_scores_no_more_than_the_student_edition(graded, attacker):
    learners = graded["learners"]
    assert learners[attacker]["score"] <= learners["student"]["score"]
    assert learners[attacker]["max_score"] == learners["student"]["max_score"] > 0


def test_the_student_edition_scores_nothing(graded):
    student = graded["learners"]["student"]
    assert student["score"] == 0 and statuses(student) == {"00": "failed", "01": "locked"}


def test_no_secret_of_the_instructor_or_a_peer_reaches_a_report(graded):
    course = graded["course"]
    texts = [graded["report_bytes"].decode(), graded["result"].stdout, graded["result"].stderr]
    texts += [p.read_text() for p in course.path("build/grade/gradescope").rglob("results.json")]
    for text in texts:
        assert SECRET not in text and PEER not in text


def test_nothing_outside_a_sandbox_was_written(graded):
    course, folder = graded["course"], graded["folder"]
    assert graded["report_later"] == graded["report_bytes"], "the report changed after the grader wrote it"
    assert "vandalised" not in course.path("dodo.py").read_text()
    pwned = [p for base in (course.root, folder, folder.parent) for p in base.rglob("PWNED")]
    assert pwned == []


def test_no_process_outlives_the_run(graded):
    assert daemons() == [], "a daemon of the attacker survived the grading run"
    leftovers = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd).startswith(str(graded["scratch"])):
                leftovers.append(cwd.parent.name)
        except OSError:
            continue
    assert leftovers == []


def test_floods_and_garbage_are_cut_and_cleaned(graded):
    learners = graded["learners"]
    assert len(learners["flood"]["log_tail"]) <= sandbox.OUTPUT_TAIL
    garbled = learners["garbler"]
    assert "\x1b" not in json.dumps(garbled) and "\x1b" not in graded["result"].stdout
    cell = garbled["checkpoints"]["00"]
    assert cell["status"] == "error" and cell["note"].startswith("evidence file rejected")


def test_forged_and_linked_results_are_rejected_not_followed(graded):
    learners = graded["learners"]
    assert statuses(learners["forger"])["00"] in ("failed", "error")
    hooker = learners["hooker"]["checkpoints"]["00"]
    if hooker["status"] == "failed":  # (on a very busy machine it may reach the time limit first)
        assert "reported as passed are not verified" in hooker["note"]
    assert all(c["passed"] <= c["total"] for row in learners.values() for c in row["checkpoints"].values())
    linker = learners["linker"]
    assert linker["score"] == 0 and statuses(linker)["00"] in ("failed", "error")


def test_a_partial_submission_gets_partial_credit_and_its_own_checkpoints_are_ignored(graded):
    partial = graded["learners"]["partial"]
    assert statuses(partial) == {"00": "passed", "01": "failed"}
    cell = partial["checkpoints"]["01"]
    assert 0 < cell["passed"] < cell["total"], "one stub left: some tests pass, some fail"
    assert cell["failed_tests"] and all("NotImplementedError" in t["message"] for t in cell["failed_tests"])


def test_a_broken_submission_names_the_syntax_error(graded):
    broken = graded["learners"]["broken"]
    assert statuses(broken) == {"00": "passed", "01": "syntax error"}
    assert broken["checkpoints"]["01"]["note"].startswith("modules/02_tensor/tensor.py:")


def test_a_hanging_submission_is_stopped_at_the_timeout(graded):
    hanging = graded["learners"]["hanging"]
    assert hanging["timed_out"] is True and statuses(hanging) == {"00": "timeout", "01": "locked"}
    assert TIMEOUT <= hanging["duration"] < TIMEOUT + 30


def test_an_empty_submission_is_all_missing(graded):
    missing = graded["learners"]["missing"]
    assert set(statuses(missing).values()) == {"missing"} and missing["score"] == 0
    assert missing["problems"] == ["lessons missing: 01_setup, 02_tensor"]


def test_gradescope_results_per_learner(graded):
    course, learners = graded["course"], graded["learners"]
    for name, learner in learners.items():
        results = json.loads(course.path(f"build/grade/gradescope/{name}/results.json").read_text())
        assert [t["name"].split(":")[0] for t in results["tests"]] == [
            "Checkpoint 00 · environment", "Checkpoint 01 · foundation"]  # fmt: skip
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
        assert results["score"] == pytest.approx(learner["score"])


def test_the_table_fits_in_100_columns(graded):
    lines = graded["result"].stdout.splitlines()
    assert max(len(line) for line in lines) <= 100


# --- arguments, checked before anything runs -----------------------------------------------------


@pytest.fixture
def one_lesson(tmp_path):
    course = make_copy(tmp_path / "course", module_count=1)
    write(tmp_path / "subs" / "someone" / "01_setup" / "setup.py", "x = 1\n")
    return course, tmp_path / "subs"


@pytest.mark.parametrize("option", [["--timeout", "-5"], ["--timeout", "0"], ["--test-timeout", "nan"],
                                    ["--jobs", "0"], ["--memory-mb", "-1"]])  # fmt: skip
def test_bad_numbers_are_usage_errors(one_lesson, option):
    course, subs = one_lesson
    result = course.tito("grade", str(subs), *option)
    assert result.returncode == 2 and "Traceback" not in result.stderr and option[0] in result.stderr


def test_an_unwritable_report_is_refused_before_grading(one_lesson, tmp_path):
    course, subs = one_lesson
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    result = course.tito("grade", str(subs), "--json", str(blocker / "report.json"))
    assert result.returncode == 2 and "cannot write to" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 20 and "Grading" not in result.stdout


def test_a_missing_submissions_folder_is_a_usage_error(one_lesson, tmp_path):
    course, _ = one_lesson
    result = course.tito("grade", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "is not a folder of submissions" in result.stderr
