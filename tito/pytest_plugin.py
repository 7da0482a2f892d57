"""A pytest plugin that records a checkpoint run as JSON, test by test (tito.results.PytestReport).

Loaded by the checkpoint runner with `-p tito.pytest_plugin`; the output path comes from the
TITO_RESULT_JSON environment variable. Collection errors (an import that fails because a module is
not exported yet, a syntax error) are recorded as a failed pseudo-test so they are never silent.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tito.results import COLLECTION, Frame, PytestReport, Status, TestRecord

_records: dict[str, TestRecord] = {}
_started = time.perf_counter()


def _location(report) -> tuple[Frame, ...]:
    """Every traceback entry (file, line) of a failure, innermost last."""
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", []) or []
    locations = [getattr(entry, "reprfileloc", None) for entry in entries]
    return tuple(Frame(str(loc.path), int(loc.lineno), str(loc.message)) for loc in locations if loc is not None)


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


def pytest_runtest_logreport(report):
    """Called for setup, call and teardown: the test's record adds up their durations and keeps the
    first failure (or skip)."""
    name = report.nodeid.split("::")[-1]
    record = _records.get(report.nodeid) or TestRecord(name, report.nodeid, Status.PASSED, 0.0)
    record = replace(record, duration=round(record.duration + report.duration, 6))
    if report.failed and not record.failed:
        record = replace(record, outcome=Status.FAILED, message=_message(report), traceback=_location(report))
    elif report.skipped and record.outcome is Status.PASSED:
        record = replace(record, outcome=Status.SKIPPED, message=_message(report))
    _records[report.nodeid] = record


def pytest_collectreport(report):
    if report.failed:
        message = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "collection failed"
        _records[report.nodeid or COLLECTION] = TestRecord(
            COLLECTION, report.nodeid, Status.FAILED, 0.0, message, _location(report)
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("TITO_RESULT_JSON")
    if not path:
        return
    finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = PytestReport(tuple(_records.values()), round(time.perf_counter() - _started, 3), finished_at)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report.to_json(), handle, indent=2)
