"""`tito watch`: a save re-runs the watched module's checkpoint through the graph, quickly."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from .conftest import make_copy

pytest.importorskip("watchdog")


class Lines:
    """A subprocess's stdout read on a thread, so the test can wait for a line with a deadline."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(process.stdout), daemon=True)
        self.thread.start()

    def wait_for(self, text: str, timeout: float) -> float:
        """Seconds until a line containing `text` appeared (fails after `timeout`)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if any(text in line for line in self.lines):
                return time.monotonic() - start
            time.sleep(0.02)
        pytest.fail(f"no line with {text!r} within {timeout} s:\n{''.join(self.lines)}")


def test_a_save_re_runs_the_checkpoint_within_three_seconds(tmp_path):
    course = make_copy(tmp_path / "course", module_count=1)
    assert course.doit().returncode == 0
    env = dict(os.environ, PYTHONPATH=str(course.root), COLUMNS="100", NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.pop("TINYTORCH_ROOT", None)
    process = subprocess.Popen([sys.executable, "-m", "tito", "watch", "setup"], cwd=course.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        output = Lines(process)
        output.wait_for("Ctrl-C to stop", timeout=30)
        lesson = course.path("modules/01_setup/setup.py")
        text = lesson.read_text()
        assert "    global _generator\n" in text
        lesson.write_text(text.replace("    global _generator\n", "    global _generator  # saved\n", 1))
        started = output.wait_for("saved modules/01_setup/setup.py: running checkpoint:00", timeout=10)
        finished = output.wait_for("build took", timeout=60)
        print(f"re-run started {started:.2f} s and finished {finished:.2f} s after the save")
        assert started < 3, f"the re-run started {started:.1f} s after the save"
        report = "".join(output.lines)
        assert re.search(r"✓ module 01_setup · checkpoint 00 environment: (\d+)/\1 tests passed", report), report

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        output.thread.join(timeout=5)
        assert "Stopped watching." in output.lines[-1] and "Traceback" not in "".join(output.lines)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_stop_request_ends_a_burst_of_saves():
    """Ctrl-C puts None into the event queue (tito/watch.py): the burst of saves ends there, what
    follows stays in the queue, and no None reaches the build's list of saved files."""
    from tito.watch import saved_sources

    events = queue.SimpleQueue()
    for item in ("modules/b.py", "modules/a.py", None, "modules/c.py"):
        events.put(item)
    assert saved_sources(events, "modules/b.py") == ["modules/a.py", "modules/b.py"]
    assert events.get_nowait() == "modules/c.py"
