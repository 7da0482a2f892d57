"""Evidence: the values a checkpoint test checks, and the grader's verdict from them.

A graded learner's code runs inside the same process as the checkpoint tests, so anything that
process reports (a result file, pytest's outcomes) can be forged by it. The verdict therefore rests
on what the tests *looked at*: before grading, `instrument` rewrites the instructor's checkpoint
files so that every checked value -- each operand of an `assert` comparison that is not a literal,
the actual value given to NumPy's comparison helpers, whether a `pytest.raises` block raised -- is
recorded by tito.evidence_plugin. The instructor's own solution is run the same way, twice (values
that are not bit-identical in those two runs, such as timings, are "volatile": only their kind is
compared).
A learner's test is verified when its records agree, one by one, with the reference's and the test
returned, exactly once. Only this module, in the grader's own process, decides.

Evidence files are read defensively (size, encoding, JSON, types, depth): anything malformed makes
the whole checkpoint `InvalidEvidence`, which scores 0 with a note.
"""
from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field

HELPERS = frozenset({
    "assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_almost_equal", "assert_equal",
    "allclose", "isclose", "array_equal",
})  # fmt: skip  # NumPy comparisons whose first argument is the value under test
RTOL, ATOL = 1e-3, 1e-5  # agreement of a learner's number with the reference's
MAX_BYTES = 16 * 2**20  # of one evidence file
MAX_DEPTH = 8  # of one recorded value


class InvalidEvidence(ValueError):
    """An evidence file that is not what tito.evidence_plugin writes; the message says why."""


# --- the instructor's checkpoints, instrumented ----------------------------------------------------


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _checked(test: ast.expr) -> list[ast.expr]:
    """The values an assert's test looks at."""
    if isinstance(test, ast.Compare):
        return [e for e in (test.left, *test.comparators) if not _literal(e)]
    if isinstance(test, ast.BoolOp):
        return [e for value in test.values for e in _checked(value)]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _checked(test.operand)
    if isinstance(test, ast.Call) and _helper(test):
        return []  # its first argument is recorded as a helper's
    return [test]


def _helper(call: ast.Call) -> bool:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return name in HELPERS


def _wrapped(tree: ast.AST) -> list[ast.expr]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            found += _checked(node.test)
        elif isinstance(node, ast.Call) and _helper(node) and node.args and not isinstance(node.args[0], ast.Starred):
            found.append(node.args[0])
    return [node for node in found if not isinstance(node, (ast.GeneratorExp, ast.Starred, ast.NamedExpr))]


def instrument(source: str, filename: str = "<checkpoint>") -> str:
    """The checkpoint's source with every checked value passed through `__evidence__(line, value)`.

    Text is only inserted, never moved: line numbers stay those of the instructor's file.
    """
    tree = ast.parse(source, filename)
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:  # ast columns count UTF-8 bytes
        return starts[line - 1] + len(lines[line - 1].encode("utf-8")[:column].decode("utf-8"))

    events = []  # (offset, 0 = closing before 1 = opening at the same place, text)
    for node in _wrapped(tree):
        events.append((offset(node.lineno, node.col_offset), 1, f"__evidence__({node.lineno}, "))
        events.append((offset(node.end_lineno, node.end_col_offset), 0, ")"))
    pieces, done = [], 0
    for position, _, text in sorted(events, key=lambda e: (e[0], e[1])):
        pieces += [source[done:position], text]
        done = position
    result = "".join(pieces) + source[done:]
    compile(result, filename, "exec")  # an instrumenting mistake is the grader's, found here, not in a learner's row
    return result


# --- reading what a run recorded -------------------------------------------------------------------


@dataclass
class TestEvidence:
    __test__ = False  # not a pytest test class

    values: list[tuple[int, object]] = field(default_factory=list)  # (line, canonical value)
    ends: int = 0  # times the test function returned


def _valid_value(value, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_valid_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _valid_value(v, depth + 1) for k, v in value.items())
    return False


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _record(line: str, number: int) -> tuple[str, int | None, object]:
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidEvidence(f"line {number}: not JSON ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("t"), str):
        raise InvalidEvidence(f"line {number}: not an evidence record")
    if record.keys() == {"t", "end"} and record["end"] is True:
        return record["t"], None, None
    if record.keys() != {"t", "l", "v"} or type(record["l"]) is not int or not _valid_value(record["v"]):
        raise InvalidEvidence(f"line {number}: not an evidence record")
    return record["t"], record["l"], record["v"]


def parse(data: bytes) -> dict[str, TestEvidence]:
    """Evidence by test node id, from the bytes of one evidence file."""
    if len(data) > MAX_BYTES:
        raise InvalidEvidence(f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvidence(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    tests: dict[str, TestEvidence] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        nodeid, where, value = _record(line, number)
        test = tests.setdefault(nodeid, TestEvidence())
        if where is None:
            test.ends += 1
        else:
            test.values.append((where, value))
    return tests


# --- the verdict -----------------------------------------------------------------------------------


def agree(mine, reference, volatile: bool = False) -> bool:
    """Whether a learner's recorded value stands for the reference's (within RTOL/ATOL for numbers);
    a volatile value only has to be of the same kind and shape."""
    if isinstance(reference, bool) or isinstance(mine, bool) or reference is None or isinstance(reference, str):
        return type(mine) is type(reference) and (volatile or mine == reference)
    if isinstance(reference, (int, float)):
        return isinstance(mine, (int, float)) and not isinstance(mine, bool) and (
            volatile or math.isclose(mine, reference, rel_tol=RTOL, abs_tol=ATOL))
    if isinstance(reference, list):
        return isinstance(mine, list) and len(mine) == len(reference) and all(
            agree(m, r, volatile) for m, r in zip(mine, reference))
    if isinstance(reference, dict):
        return isinstance(mine, dict) and mine.keys() == reference.keys() and all(
            agree(mine[k], reference[k], volatile or k == "sums") if k != "shape" else mine[k] == reference[k]
            for k in reference)  # fmt: skip
    return False


@dataclass(frozen=True)
class Reference:
    """What the instructor's solution recorded for one checkpoint: the expected tests, in order."""

    tests: dict[str, TestEvidence]
    volatile: dict[str, frozenset[int]]  # positions whose value differed between the two reference runs

    def to_json(self) -> dict:
        return {
            "tests": {n: {"values": [list(v) for v in t.values], "ends": t.ends} for n, t in self.tests.items()},
            "volatile": {n: sorted(positions) for n, positions in self.volatile.items()},
        }

    @classmethod
    def from_json(cls, data) -> Reference:
        """A reference stored by `to_json` (the Gradescope bundle carries one per checkpoint)."""
        try:
            tests = {n: TestEvidence([(int(line), value) for line, value in t["values"]], int(t["ends"]))
                     for n, t in data["tests"].items()}  # fmt: skip
            volatile = {n: frozenset(int(p) for p in positions) for n, positions in data["volatile"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidEvidence(f"not a stored reference ({error})") from None
        return cls(tests, volatile)

    @classmethod
    def from_runs(cls, first: dict[str, TestEvidence], second: dict[str, TestEvidence]) -> Reference:
        volatile = {}
        for nodeid, test in first.items():
            other = second.get(nodeid, TestEvidence())
            if len(other.values) != len(test.values):
                volatile[nodeid] = frozenset(range(len(test.values)))
                continue
            # Not bit-identical is volatile. Agreement within tolerance would not do: two timings on a
            # quiet machine can agree to 1e-3 by chance, and the learner's third run then would not.
            volatile[nodeid] = frozenset(i for i, ((_, a), (_, b)) in enumerate(zip(test.values, other.values)) if a != b)
        return cls(first, volatile)


def verdict(reference: Reference, nodeid: str, mine: TestEvidence | None) -> str | None:
    """None when the learner's test is verified, else why not (one line)."""
    expected = reference.tests[nodeid]
    if mine is None or mine.ends == 0:
        return "did not finish"
    if mine.ends != 1:
        return f"reported {mine.ends} times"
    if len(mine.values) != len(expected.values):
        return f"checked {len(mine.values)} values where the reference checks {len(expected.values)}"
    volatile = reference.volatile.get(nodeid, frozenset())
    for position, ((line, value), (ref_line, ref_value)) in enumerate(zip(mine.values, expected.values)):
        if line != ref_line or not agree(value, ref_value, position in volatile):
            return f"the value checked at line {ref_line} differs from the reference solution's"
    return None
