"""A pytest plugin that records a checkpoint run as JSON, test by test (tito.results.PytestReport).

Loaded by the checkpoint runner with `-p tito.pytest_plugin`; the output path comes from the
TITO_RESULT_JSON environment variable. Collection errors (an import that fails because a module is
not exported yet, a syntax error) are recorded as a failed pseudo-test so they are never silent.

For a wrong value (an assertion in the checkpoint, nothing raised in the learner's code) the
traceback says nothing about where the value went wrong. So each test's call records which
functions of the exported package it ran (a `sys.settrace` hook that sees only function calls and
ignores every file but the package's: no line tracing), and a failed test lists its functions, those
that the fewest passing tests ran first (spectrum-based fault localisation: a function every passing
test also ran is rarely the culprit). tito.failures maps them back to lesson lines.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tito.results import COLLECTION, Frame, PytestReport, Ran, Status, TestRecord

_records: dict[str, TestRecord] = {}
_started = time.perf_counter()
PACKAGE = os.path.join("tinytorch", "core") + os.sep
MAX_EXECUTED = 20  # functions kept per failed test
_ran: dict[str, set] = {}  # nodeid -> code objects of the package the test's call ran


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Record the package functions this test's call runs (see the module docstring)."""
    ran: set = set()

    def on_call(frame, event, arg):
        code = frame.f_code
        if PACKAGE in code.co_filename:
            ran.add(code)
        return None  # never trace lines

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)
        _ran[item.nodeid] = ran


def _executed(nodeid: str, passing: Counter) -> tuple[Ran, ...]:
    """The failed test's package functions, the ones the fewest passing tests ran first."""
    ran = sorted(_ran.get(nodeid, ()), key=lambda code: (passing[code], code.co_filename, code.co_firstlineno))
    return tuple(Ran(code.co_filename, code.co_firstlineno, getattr(code, "co_qualname", code.co_name), passing[code])
                 for code in ran[:MAX_EXECUTED])  # fmt: skip  (co_qualname: Python 3.11+)


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
    passing = Counter(code for nodeid, record in _records.items() if not record.failed for code in _ran.get(nodeid, ()))
    tests = tuple(replace(r, executed=_executed(n, passing)) if r.failed else r for n, r in _records.items())
    report = PytestReport(tests, round(time.perf_counter() - _started, 3), finished_at)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report.to_json(), handle, indent=2)
