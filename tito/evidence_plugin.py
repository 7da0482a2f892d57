"""The pytest plugin of graded runs: records the values each checkpoint test checks ("evidence").

Loaded inside a learner's sandbox (PYTEST_PLUGINS=tito.evidence_plugin). `tito.evidence.instrument`
has rewritten the instructor's checkpoint files so that every checked value passes through
`__evidence__(line, value)`; this plugin provides that function, records whether each
`pytest.raises` block raised what it expected, and marks each test whose body returned. Records go,
one JSON object a line, to TITO_EVIDENCE_DIR/<checkpoint file>.jsonl as they happen:

    {"t": nodeid, "l": line, "v": value}     a checked value, in the form of `canonical`
    {"t": nodeid, "end": true}               the test function returned

Nothing here decides anything: the grader compares these values with the instructor's own (see
tito.evidence). Records never raise: a value that cannot be described is recorded by its type name.
"""
from __future__ import annotations

import builtins
import json
import math
import os
import sys
from pathlib import Path

import pytest

SAMPLE = 64  # elements of an array kept as values (evenly spaced); its sums describe the rest
TEXT = 200  # characters of a string kept
ITEMS = 64  # items of a list or tuple kept
DEPTH = 4  # nesting of lists kept

_current: str | None = None
_files: dict[str, object] = {}


def _number(value: float):
    value = float(value)
    return value if math.isfinite(value) else repr(value)  # "nan", "inf", "-inf": JSON has no such numbers


def _array(array) -> dict:
    import numpy as np

    flat = np.asarray(array).ravel()
    kind = flat.dtype.kind
    if kind not in "biuf":
        return {"shape": list(np.shape(array)), "kind": kind}
    if flat.size > SAMPLE:
        sums = [_number(np.sum(flat, dtype=np.float64)), _number(np.sum(np.abs(flat), dtype=np.float64))]
        flat = flat[np.linspace(0, flat.size - 1, SAMPLE).astype(int)]
    else:
        sums = None
    values = [bool(x) for x in flat] if kind == "b" else [_number(x) for x in flat]
    return {"shape": list(np.shape(array)), "kind": "b" if kind == "b" else "n", "values": values, "sums": sums}


def canonical(value, depth: int = 0):
    """A JSON description of a checked value: numbers, text, shapes and array samples; objects by type."""
    import numpy as np

    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(value)
    if isinstance(value, str):
        return value[:TEXT]
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.dtype):
        return {"dtype": str(value)}
    if isinstance(value, (list, tuple)) and depth < DEPTH:
        return {"items": [canonical(v, depth + 1) for v in value[:ITEMS]], "length": len(value)}
    data = getattr(value, "data", None)  # a Tensor: its array is what the test looks at
    if isinstance(data, np.ndarray):
        return _array(data)
    return {"type": type(value).__name__}


def _write(record: dict) -> None:
    folder = os.environ.get("TITO_EVIDENCE_DIR")
    if not folder or _current is None:
        return
    name = Path(_current.split("::")[0]).stem
    handle = _files.get(name)
    if handle is None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        handle = _files[name] = open(Path(folder) / f"{name}.jsonl", "a", encoding="utf-8")
    handle.write(json.dumps({"t": _current, **record}) + "\n")
    handle.flush()


def evidence(line: int, value):
    """Record `value`, checked at `line` of the checkpoint, and hand it back unchanged."""
    try:
        described = canonical(value)
    except Exception as error:  # a learner's object that fails to describe itself is evidence too
        described = {"type": type(value).__name__, "error": type(error).__name__}
    _write({"l": line, "v": described})
    return value


class _Raises:
    """pytest.raises as a context manager, recording whether the block raised what was expected."""

    def __init__(self, context, expected, line: int):
        self.context, self.expected, self.line = context, expected, line

    def __enter__(self):
        return self.context.__enter__()

    def __exit__(self, kind, error, trace):
        try:
            raised = kind is not None and issubclass(kind, self.expected)
        except TypeError:
            raised = False
        _write({"l": self.line, "v": {"raised": raised}})
        return self.context.__exit__(kind, error, trace)


def _raises(original):
    def raises(expected, *args, **kwargs):
        result = original(expected, *args, **kwargs)
        if args:  # the callable form has already run
            _write({"l": sys._getframe(1).f_lineno, "v": {"raised": True}})
            return result
        return _Raises(result, expected, sys._getframe(1).f_lineno)

    return raises


def pytest_configure(config):
    builtins.__evidence__ = evidence
    pytest.raises = _raises(pytest.raises)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _current
    _current = item.nodeid
    yield
    _current = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is None:
        _write({"end": True})
