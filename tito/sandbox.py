"""The sandbox one learner's graded run happens in: what it sees, what it may use, and its end.

Owns the isolation of `tito grade` (the scoring never looks inside a sandbox while it runs):

- bubblewrap (`bwrap`) when it works here: a mount view holding only the system's read-only files,
  this Python, and the learner's temporary course (the instructor's tooling and checkpoints in it
  read-only); the submissions folder, the other learners and the instructor's repository do not
  exist in it. Its own PID namespace (every process it starts dies with it, daemons included), no
  network, no IPC, a new session (no terminal to type into);
- `unshare` otherwise: its own PID namespace, no network, no IPC, but the whole file system visible;
- none (only with `--no-sandbox`): the limits below and a process group, nothing else.

When the grader runs as root, the learner's processes run as an unprivileged user of their own,
claimed for the run on the whole machine (one uid per learner being graded, whichever grader runs
them: a process limit counts every process of a uid, so two learners sharing one would share it). Every process gets resource limits (prlimit): address space, CPU time,
processes, file size (which also bounds the output: it goes to a file, never to a pipe a stray
child could hold open), no core files.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

SANDBOX_UID = 61000  # first uid of the learners' runs when grading as root (Debian leaves 60000-64999 free)
SANDBOX_UIDS = 1024  # how many, from SANDBOX_UID on: learners graded at once on one machine
UID_CLAIMS = Path("/run/tinytorch-sandbox-uids")  # root's: a lock file per uid in use
OUTPUT_TAIL = 4000  # characters of a run's output kept for the report
PROBE = "import doit, numpy, pytest, subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"
PROBE_TIMEOUT = 20  # seconds to check that an isolation tool works here
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")  # all but \t and \n: no escape sequences reach a terminal


class Isolation(str, Enum):
    BUBBLEWRAP = "bubblewrap"
    UNSHARE = "unshare"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


DESCRIPTIONS = {
    Isolation.BUBBLEWRAP: "bubblewrap: own mount view, PID namespace, no network{user}, resource limits",
    Isolation.UNSHARE: "unshare: PID namespace, no network{user}, resource limits; the file system is NOT hidden",
    Isolation.NONE: "none (--no-sandbox): resource limits only; a submission can read and write what you can",
}


@dataclass(frozen=True)
class Limits:
    """What one learner's run may use. Validated where the user types them (tito.grade)."""

    timeout: float  # wall-clock seconds for the whole run
    memory_mb: int  # address space of each process
    processes: int = 256  # processes and threads of the learner's user at once
    file_mb: int = 64  # the largest file it may write, its output included

    @property
    def cpu_seconds(self) -> int:
        return int(self.timeout) + 1  # CPU time of each process: it can never usefully exceed the wall clock


@dataclass(frozen=True)
class Finished:
    output: str  # the tail of what the run printed, decoded and stripped of control characters
    timed_out: bool
    returncode: int


def describe(isolation: Isolation) -> str:
    user = ", an unprivileged user" if os.geteuid() == 0 and isolation is not Isolation.NONE else ""
    return DESCRIPTIONS[isolation].format(user=user)


def detect() -> Isolation:
    """The strongest isolation that actually works on this machine."""
    return next((i for i in (Isolation.BUBBLEWRAP, Isolation.UNSHARE) if works(i)), Isolation.NONE)


@lru_cache(maxsize=None)
def works(isolation: Isolation) -> bool:
    """Whether `isolation` can run a process here (a tool can be installed but not allowed to create
    namespaces, e.g. inside some containers)."""
    if isolation is Isolation.NONE:
        return True
    if shutil.which(_TOOL[isolation]) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="tinytorch-probe-") as scratch:
        command = _wrap(isolation, [sys.executable, "-c", PROBE], Path(scratch), [], {}, SANDBOX_UID)
        try:
            return subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT, cwd=scratch).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


_TOOL = {Isolation.BUBBLEWRAP: "bwrap", Isolation.UNSHARE: "unshare"}


@contextmanager
def user():
    """A uid no other graded run on this machine is using, for one run (as root; other users' runs
    keep their own uid). Each uid in use is an flock on its file, which the kernel releases when
    the grader ends, however it ends: a crashed grader never keeps a uid."""
    if os.geteuid() != 0:
        yield os.geteuid()
        return
    UID_CLAIMS.mkdir(mode=0o700, exist_ok=True)
    while True:
        for uid in range(SANDBOX_UID, SANDBOX_UID + SANDBOX_UIDS):
            claim = open(UID_CLAIMS / str(uid), "a")
            try:
                fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                claim.close()
                continue
            with claim:
                yield uid
            return
        time.sleep(0.5)  # every uid busy: wait for a run to end


def run(command: list[str], work: Path, readonly: list[str], env: dict[str, str], limits: Limits,
        isolation: Isolation, uid: int) -> Finished:  # fmt: skip
    """Run `command` in `work` inside the sandbox; `readonly` names paths under `work` the run may
    read but not change. Returns when every process of the run has ended."""
    if os.geteuid() == 0:
        _give(work, uid)
    with tempfile.TemporaryFile(prefix="tinytorch-output-") as log:
        os.set_inheritable(log.fileno(), True)
        wrapped = _limited(limits) + _wrap(isolation, command, work, readonly, env, uid)
        process = subprocess.Popen(
            wrapped, cwd=work, env=_outer_env(isolation, env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        try:
            returncode, timed_out = process.wait(timeout=limits.timeout), False
        except subprocess.TimeoutExpired:
            _end(process, isolation)
            returncode, timed_out = process.wait(), True
        except BaseException:  # KeyboardInterrupt: nothing of the learner's may outlive the grader
            _end(process, isolation)
            raise
        return Finished(tail(log), timed_out, returncode)


def _limited(limits: Limits) -> list[str]:
    size = limits.file_mb * 2**20
    return [
        "prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={limits.cpu_seconds}", f"--nproc={limits.processes}",
        f"--fsize={size}", "--core=0", "--nofile=1024", "--",
    ]  # fmt: skip


def _wrap(isolation: Isolation, command: list[str], work: Path, readonly: list[str], env: dict, uid: int) -> list[str]:
    if isolation is Isolation.BUBBLEWRAP:
        return _bubblewrap(work, readonly, env) + _as_learner(uid) + command
    if isolation is Isolation.UNSHARE:
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        return ["unshare", *user, "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts",
                "--", *_as_learner(uid), *command]  # fmt: skip
    return command


def _as_learner(uid: int) -> list[str]:
    """Become the learner's own unprivileged user, without capabilities or a way back."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


def _bubblewrap(work: Path, readonly: list[str], env: dict) -> list[str]:
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]  # fmt: skip
    if os.geteuid() != 0:
        args.append("--unshare-user")
    for top in ("bin", "lib", "lib64", "sbin"):  # merged /usr: these are symbolic links into it
        link = Path("/") / top
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            args += ["--ro-bind", str(link), str(link)]
    args += ["--ro-bind", "/usr", "/usr"]
    args += ["--dir", "/etc"]
    for name in ("ld.so.cache", "localtime", "alternatives"):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # The fresh /tmp comes before the Python binds: a later mount hides what is below it, and a
    # course cloned under /tmp keeps its .venv there.
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for prefix in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}):
        if not prefix.is_relative_to("/usr"):
            args += _folders(prefix.parent) + ["--ro-bind", str(prefix), str(prefix)]
    args += _folders(work.parent) + ["--bind", str(work), str(work)]
    for relative in readonly:
        if (work / relative).exists():
            args += ["--ro-bind", str(work / relative), str(work / relative)]
    args += ["--chdir", str(work), "--clearenv"]
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    return args + ["--"]


def _folders(path: Path) -> list[str]:
    """Create `path` and its parents, readable by everyone (bwrap would copy the host's modes, and
    the folders around a bound path may be private there, like /root)."""
    args = []
    for folder in reversed([path, *path.parents][:-1]):
        args += ["--dir", str(folder)]
    return args


def _outer_env(isolation: Isolation, env: dict[str, str]) -> dict[str, str]:
    """bubblewrap sets the run's environment itself; the other wrappers pass theirs on."""
    if isolation is Isolation.BUBBLEWRAP:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return env


def _give(work: Path, uid: int) -> None:
    """The learner's user owns its temporary course (regular files and folders only: it was copied)."""
    os.chown(work, uid, uid)
    for folder, dirs, files in os.walk(work):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _end(process: subprocess.Popen, isolation: Isolation) -> None:
    """Kill the run. In a namespace, killing its top process ends every process inside; without
    one, the process group and every descendant still found are killed."""
    victims = [] if isolation is not Isolation.NONE else _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, found through /proc (a child may have left the process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tail(log) -> str:
    """The last OUTPUT_TAIL characters written to the binary file `log`, without control characters."""
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - 4 * OUTPUT_TAIL))
    text = log.read().decode("utf-8", errors="replace")[-OUTPUT_TAIL:]
    return CONTROL.sub("", text)
