"""One writer at a time: every process that may write doit's database holds build/.lock.

`fcntl.flock` is released by the kernel when the holder exits, even on a crash or kill -9, so a
stale lock can never block the course. Readers (tito status) take no lock.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

from tito.manifest import Course

DEFAULT_TIMEOUT = 600.0
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: the exit code of a build that gave up waiting for the lock


class LockTimeout(RuntimeError):
    pass


_held = None  # the open lock file of this process, kept alive for the process's lifetime


def hold(course: Course, timeout: float | None = None) -> None:
    """Block until this process owns the lock (announcing the wait once), or raise LockTimeout."""
    global _held
    if _held is not None:
        return
    if timeout is None:
        timeout = float(os.environ.get("TINYTORCH_LOCK_TIMEOUT", DEFAULT_TIMEOUT))
    path = course.build.lock
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise LockTimeout(
                    f"another TinyTorch build still holds {course.relative(path)} (pid {_owner(path)}) after {timeout:.0f} s"
                ) from None
            if not announced:
                print(f"Waiting for another TinyTorch build to finish (pid {_owner(path)})...", file=sys.stderr)
                announced = True
            time.sleep(0.1)
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held = handle


def _owner(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"
