"""The checkpoint result schema and the status words: the one owner of build/checkpoints/NN.json.

`CheckpointResult` (one checkpoint run) holds `TestRecord`s (one test each). The runner writes them,
the pytest plugin reports the tests, `state`, `views`, `failures` and `grade` read them, and every
reader gets objects validated by `from_json`: a damaged or forged file is an `InvalidResult`, never a
KeyError three modules later. `Status` is every status word tito says, in one enum; the frozensets
below say which words each field may hold. Standard library only (`tito checkpoint status` is fast).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Status(str, Enum):
    """Every status word: a run's, a test's, a checkpoint's place in the course, a graded cell's."""

    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"  # the whole run was stopped
    ERROR = "error"  # pytest ended before writing a result
    SKIPPED = "skipped"  # a test pytest skipped
    NEVER = "never"  # no result yet (a checkpoint judged alone)
    STALE = "stale"  # passed before, inputs changed since
    READY = "ready"  # every earlier checkpoint passed, never run
    LOCKED = "locked"  # an earlier checkpoint is not passed
    UNAVAILABLE = "unavailable"  # the lesson or checkpoint file does not exist in this course
    MISSING = "missing"  # grading: the learner did not submit the lesson
    SYNTAX_ERROR = "syntax error"  # grading: the submitted lesson does not compile

    def __str__(self) -> str:
        return self.value


RUN_STATUSES = frozenset({Status.PASSED, Status.FAILED, Status.TIMEOUT, Status.ERROR})  # CheckpointResult.status
TEST_OUTCOMES = frozenset({Status.PASSED, Status.FAILED, Status.SKIPPED})  # TestRecord.outcome
COLLECTION = "collection"  # the name of the pseudo-test recording a collection error


class InvalidResult(ValueError):
    """A result file that is not a checkpoint result; the message says what is wrong."""


def _get(data: dict, key: str, kind, where: str, default=...):
    """data[key], checked to be of `kind` (a type or tuple of types)."""
    if key not in data:
        if default is ...:
            raise InvalidResult(f"{where}: '{key}' is missing")
        return default
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise InvalidResult(f"{where}: '{key}' is {type(value).__name__}, not {_names(kind)}")
    return value


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _as_tuple(kind))


def _status(value: str, allowed: frozenset, where: str) -> Status:
    try:
        status = Status(value)
    except ValueError:
        status = None
    if status not in allowed:
        raise InvalidResult(f"{where}: '{value}' is not one of {sorted(s.value for s in allowed)}")
    return status


@dataclass(frozen=True)
class Frame:
    """One traceback entry of a failure: a file, a line, and pytest's note (`in function`)."""

    path: str
    line: int
    message: str = ""

    def to_json(self) -> dict:
        return {"path": self.path, "line": self.line, "message": self.message}

    @classmethod
    def from_json(cls, data, where: str = "frame") -> Frame:
        if not isinstance(data, dict):
            raise InvalidResult(f"{where}: not an object")
        line = _get(data, "line", int, where)
        return cls(_get(data, "path", str, where), line, _get(data, "message", str, where, ""))


@dataclass(frozen=True)
class Ran:
    """A function of the exported package that a failed test ran, and how many passing tests ran it too."""

    path: str
    line: int  # its first line (a decorator's, when decorated)
    name: str  # qualified: `Tensor.__init__`, `_binary.<locals>.method`
    passing: int

    def to_json(self) -> dict:
        return {"path": self.path, "line": self.line, "name": self.name, "passing": self.passing}

    @classmethod
    def from_json(cls, data, where: str = "ran") -> Ran:
        if not isinstance(data, dict):
            raise InvalidResult(f"{where}: not an object")
        return cls(_get(data, "path", str, where), _get(data, "line", int, where), _get(data, "name", str, where),
                   _get(data, "passing", int, where))  # fmt: skip


@dataclass(frozen=True)
class TestRecord:
    """One test of a checkpoint run, as the pytest plugin saw it."""

    __test__ = False  # not a pytest test class, whatever its name says

    name: str
    nodeid: str
    outcome: Status  # one of TEST_OUTCOMES
    duration: float
    message: str = ""  # the failure or skip reason
    traceback: tuple[Frame, ...] = ()  # innermost last
    # A failed test's functions of the exported package, those the fewest passing tests ran first:
    # where a wrong value most likely comes from (tito.pytest_plugin).
    executed: tuple[Ran, ...] = ()

    @property
    def failed(self) -> bool:
        return self.outcome is Status.FAILED

    def to_json(self) -> dict:
        return {
            "name": self.name, "nodeid": self.nodeid, "outcome": self.outcome.value, "duration": self.duration,
            "message": self.message, "traceback": [f.to_json() for f in self.traceback],
            "executed": [r.to_json() for r in self.executed],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data, where: str = "test") -> TestRecord:
        if not isinstance(data, dict):
            raise InvalidResult(f"{where}: not an object")
        name = _get(data, "name", str, where)
        where = f"{where} {name}"
        duration = float(_get(data, "duration", (int, float), where))
        if duration < 0:
            raise InvalidResult(f"{where}: negative duration")
        frames = _get(data, "traceback", list, where, [])
        executed = _get(data, "executed", list, where, [])
        return cls(
            name, _get(data, "nodeid", str, where), _status(_get(data, "outcome", str, where), TEST_OUTCOMES, where),
            duration, _get(data, "message", (str, type(None)), where, "") or "",
            tuple(Frame.from_json(f, f"{where} traceback") for f in frames),
            tuple(Ran.from_json(r, f"{where} executed") for r in executed),
        )  # fmt: skip


def _tests(data: dict, where: str) -> tuple[TestRecord, ...]:
    return tuple(TestRecord.from_json(t, f"{where} test") for t in _get(data, "tests", list, where))


@dataclass(frozen=True)
class PytestReport:
    """What the pytest plugin hands the runner (TITO_RESULT_JSON): the tests and when they ended."""

    tests: tuple[TestRecord, ...]
    duration: float
    finished_at: str

    def to_json(self) -> dict:
        return {"tests": [t.to_json() for t in self.tests], "duration": self.duration, "finished_at": self.finished_at}

    @classmethod
    def from_json(cls, data) -> PytestReport:
        if not isinstance(data, dict):
            raise InvalidResult("pytest report: not an object")
        where = "pytest report"
        duration = float(_get(data, "duration", (int, float), where))
        return cls(_tests(data, where), duration, _get(data, "finished_at", str, where))


@dataclass(frozen=True)
class CheckpointResult:
    """One run of one checkpoint: build/checkpoints/NN.json, written on failure too.

    Invariants (checked by from_json): 0 <= tests_passed <= tests_total; tests_passed is the number of
    passed test records; a PASSED run passed every one of at least one test.
    """

    checkpoint: str  # "08"
    name: str
    module: str
    capability: str
    status: Status  # one of RUN_STATUSES
    tests_passed: int
    tests_total: int
    duration: float | None  # seconds; None when pytest wrote no report
    finished_at: str  # ISO 8601, UTC
    note: str | None = None  # why a run ended early (timeout, crash)
    tests: tuple[TestRecord, ...] = field(default=())
    output: str = ""  # the tail of pytest's output, kept when the run did not pass

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def failed_tests(self) -> list[TestRecord]:
        return [t for t in self.tests if t.failed]

    def to_json(self) -> dict:
        return {
            "checkpoint": self.checkpoint, "name": self.name, "module": self.module, "capability": self.capability,
            "status": self.status.value, "tests_passed": self.tests_passed, "tests_total": self.tests_total,
            "duration": self.duration, "finished_at": self.finished_at, "note": self.note,
            "tests": [t.to_json() for t in self.tests], "output": self.output,
        }  # fmt: skip

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, data) -> CheckpointResult:
        if not isinstance(data, dict):
            raise InvalidResult("not a checkpoint result (not a JSON object)")
        where = f"checkpoint {data.get('checkpoint', '?')}"
        duration = _get(data, "duration", (int, float, type(None)), where)
        result = cls(
            _get(data, "checkpoint", str, where), _get(data, "name", str, where), _get(data, "module", str, where),
            _get(data, "capability", str, where), _status(_get(data, "status", str, where), RUN_STATUSES, where),
            _get(data, "tests_passed", int, where), _get(data, "tests_total", int, where),
            None if duration is None else float(duration), _get(data, "finished_at", str, where),
            _get(data, "note", (str, type(None)), where, None), _tests(data, where),
            _get(data, "output", str, where, ""),
        )  # fmt: skip
        result._check(where)
        return result

    def _check(self, where: str) -> None:
        if not 0 <= self.tests_passed <= self.tests_total:
            raise InvalidResult(f"{where}: {self.tests_passed}/{self.tests_total} tests passed is impossible")
        recorded = sum(t.outcome is Status.PASSED for t in self.tests)
        if recorded != self.tests_passed:
            raise InvalidResult(f"{where}: says {self.tests_passed} tests passed but records {recorded}")
        if self.passed and (self.tests_total == 0 or self.tests_passed != self.tests_total or self.failed_tests):
            raise InvalidResult(f"{where}: status passed with {self.tests_passed}/{self.tests_total} tests passed")

    @classmethod
    def read(cls, path: Path) -> CheckpointResult:
        """The result stored at `path`: FileNotFoundError when there is none, InvalidResult when it is
        unreadable or not a valid result."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InvalidResult(str(error)) from None
        return cls.from_json(data)
