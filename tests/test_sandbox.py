"""The sandbox alone (tito.sandbox), for each isolation that works on this machine: a run's
processes all end with it, its limits hold, its output is capped and cleaned, and with bubblewrap it
sees nothing of the host but the system, Python and its own folder."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tito import sandbox
from tito.sandbox import Isolation, Limits

from .conftest import ROOT

LIMITS = Limits(timeout=20, memory_mb=1024, file_mb=1)


def isolations(*kinds: Isolation):
    return [pytest.param(i, marks=pytest.mark.skipif(not sandbox.works(i), reason=f"{i} cannot isolate here"))
            for i in kinds or Isolation]  # fmt: skip


def run(work: Path, code: str, isolation: Isolation, limits: Limits = LIMITS) -> sandbox.Finished:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(work), "HOME": "/tmp"}
    return sandbox.run([sys.executable, "-c", textwrap.dedent(code)], work, ["tooling"], env, limits, isolation,
                       sandbox.SANDBOX_UID + 90)  # fmt: skip


@pytest.fixture
def work(tmp_path):
    folder = tmp_path / "course"
    (folder / "tooling").mkdir(parents=True)
    (folder / "tooling" / "checkpoint.py").write_text("original")
    return folder


@pytest.mark.parametrize("isolation", isolations(Isolation.BUBBLEWRAP, Isolation.UNSHARE))
def test_a_daemon_dies_with_its_run(work, isolation):
    marker = f"SANDBOX-DAEMON-{isolation}-{time.time_ns()}"
    finished = run(work, f"""
        import os, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{marker}"], start_new_session=True)
        print("left a daemon")
    """, isolation)
    assert finished.output.strip() == "left a daemon" and not finished.timed_out
    time.sleep(0.5)
    assert [p for p in Path("/proc").glob("[0-9]*/cmdline") if marker.encode() in _read(p)] == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("isolation", isolations())
def test_the_time_limit_ends_everything(work, isolation):
    started = time.monotonic()
    finished = run(work, """
        import os, time
        if os.fork() == 0:
            os.setsid()
        while True:
            time.sleep(1)
    """, isolation, Limits(timeout=2, memory_mb=1024))
    assert finished.timed_out and time.monotonic() - started < 10


@pytest.mark.parametrize("isolation", isolations())
def test_output_is_capped_and_cleaned(work, isolation):
    finished = run(work, """
        import sys
        sys.stdout.buffer.write(b"\\x1b[31m\\xff" + b"y" * 3_000_000)
    """, isolation)
    assert len(finished.output) <= sandbox.OUTPUT_TAIL and "\x1b" not in finished.output
    assert finished.returncode != 0, "writing past the file-size limit stops the writer"


@pytest.mark.parametrize("isolation", isolations())
def test_memory_is_limited(work, isolation):
    finished = run(work, "x = bytearray(2 * 2**30)", isolation)
    assert "MemoryError" in finished.output


@pytest.mark.skipif(not sandbox.works(Isolation.BUBBLEWRAP), reason="needs bubblewrap")
def test_bubblewrap_shows_only_the_system_python_and_the_course(work):
    finished = run(work, f"""
        import os, socket
        print(sorted(os.listdir("/")))
        print(os.path.exists({str(ROOT / "modules")!r}), os.path.exists({str(work.parent)!r} + "/other"))
        try:
            open("tooling/checkpoint.py", "w")
        except OSError as error:
            print("tooling", error.errno)
        open("mine.txt", "w").write("ok")
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        except OSError as error:
            print("network", type(error).__name__)
        print("pid", os.getpid())
    """, Isolation.BUBBLEWRAP)
    lines = finished.output.splitlines()
    # The system's folders, and the top folder of each bound path: wherever Python and the course live
    # (a clone under /work, /check or /home shows that name and nothing beside it).
    bound = {Path(p).resolve().parts[1] for p in (sys.prefix, sys.base_prefix, work)}
    assert set(eval(lines[0])) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr"} | bound
    assert lines[1] == "False False"
    assert lines[2] == "tooling 30"  # EROFS: the instructor's files are read-only
    assert lines[3].startswith("network") and lines[4] == "pid 2"
    assert (work / "mine.txt").read_text() == "ok" and (work / "tooling" / "checkpoint.py").read_text() == "original"


# --- the learner's own runs (tito.runner): no sandbox, but no wait on a stray child either -----------


def test_a_stray_child_neither_holds_the_run_nor_survives_it(tmp_path):
    from .conftest import make_copy

    course = make_copy(tmp_path / "course", module_count=1)
    marker = f"STRAY-CHILD-{time.time_ns()}"
    stray = (
        "\n\n# %%\n#| export\nimport subprocess as _subprocess, sys as _sys\n"
        f"_subprocess.Popen([_sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
    )  # fmt: skip
    lesson = course.path("modules/01_setup/setup.py")
    lesson.write_text(lesson.read_text() + stray)
    started = time.monotonic()
    result = course.tito("module", "complete", "setup", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 100, "the run waited for the stray child"
    time.sleep(0.5)
    assert [p for p in Path("/proc").glob("[0-9]*/cmdline") if marker.encode() in _read(p)] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="learners run as uids of their own only when grading as root")
def test_two_graders_on_one_machine_never_share_a_learner_uid():
    # a process limit counts every process of a uid: two graders' learners on one uid would share it
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom tito import sandbox\nwith sandbox.user() as uid:\n"
                               "    print(uid, flush=True)\n    time.sleep(60)"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        theirs = int(holder.stdout.readline())
        with sandbox.user() as mine, sandbox.user() as also_mine:
            assert len({theirs, mine, also_mine}) == 3
            assert all(sandbox.SANDBOX_UID <= uid < sandbox.SANDBOX_UID + sandbox.SANDBOX_UIDS for uid in (mine, also_mine))
    finally:
        holder.kill()
        holder.wait()
    with open(sandbox.UID_CLAIMS / str(theirs), "a") as claim:  # a killed grader's uid is free again
        fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
