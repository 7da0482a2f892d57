"""A pytest plugin that records a checkpoint run as JSON, test by test.

Loaded by the checkpoint runner with `-p tito.pytest_plugin`; the output path comes from the
TITO_RESULT_JSON environment variable. Collection errors (an import that fails because a module is
not exported yet, a syntax error) are recorded as a failed pseudo-test so they are never silent.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

import pytest

_records: dict[str, dict] = {}
_started = time.perf_counter()


def _location(report) -> list[dict]:
    """Every traceback entry (file, line) of a failure, innermost last."""
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", []) or []
    frames = []
    for entry in entries:
        loc = getattr(entry, "reprfileloc", None)
        if loc is not None:
            frames.append({"path": loc.path, "line": loc.lineno, "message": loc.message})
    return frames


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::")[-1]
    record = _records.setdefault(
        report.nodeid, {"name": name, "nodeid": report.nodeid, "outcome": "passed", "duration": 0.0}
    )
    record["duration"] = round(record["duration"] + report.duration, 6)
    if report.failed:
        record.update(outcome="failed", message=_message(report), traceback=_location(report))
    elif report.skipped and record["outcome"] == "passed":
        record.update(outcome="skipped", message=_message(report))


def pytest_collectreport(report):
    if report.failed:
        _records[report.nodeid or "collection"] = {
            "name": "collection",
            "nodeid": report.nodeid,
            "outcome": "failed",
            "duration": 0.0,
            "message": str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "collection failed",
            "traceback": _location(report),
        }


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("TITO_RESULT_JSON")
    if not path:
        return
    tests = list(_records.values())
    result = {
        "tests": tests,
        "tests_passed": sum(t["outcome"] == "passed" for t in tests),
        "duration": round(time.perf_counter() - _started, 3),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
