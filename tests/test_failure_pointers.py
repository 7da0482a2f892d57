"""A wrong value points at the lesson function that made it: a bug injected into five different
operators of the Tensor lesson, each reported with the right lesson line first."""
from __future__ import annotations

import shutil

import pytest

from .conftest import CourseCopy, make_copy

TENSOR = "modules/02_tensor/tensor.py"
# (the lesson line to break, the broken line, the lesson lines the report must point at first, in order)
BUGS = {
    "subtraction": ('Tensor.__sub__, Tensor.__rsub__ = _binary("sub", np.subtract)',
                    'Tensor.__sub__, Tensor.__rsub__ = _binary("sub", np.add)', ("Tensor.__sub__, Tensor.__rsub__ =",)),
    "division": ('Tensor.__truediv__, Tensor.__rtruediv__ = _binary("div", np.divide,',
                 'Tensor.__truediv__, Tensor.__rtruediv__ = _binary("div", np.multiply,', ("Tensor.__truediv__, ",)),
    "negation": ('return Tensor.from_op(-self.data, "neg", (self,))', 'return Tensor.from_op(self.data, "neg", (self,))',
                 ("def _neg(",)),
    "power": ('return Tensor.from_op(self.data**exponent, "pow"', 'return Tensor.from_op(self.data*exponent, "pow"',
              ("def _pow(",)),
    # Tensor.max is `_max`, which hands the work to `_max_values = _reduction(...)`: both are named
    "maximum": ('_max_values = _reduction("max", np.max,', '_max_values = _reduction("max", np.min,',
                ("def _max(", "_max_values =")),
}  # fmt: skip


@pytest.fixture(scope="module")
def setup_passed(tmp_path_factory) -> CourseCopy:
    """Modules 01-02 with checkpoint 00 passed: only the Tensor checkpoint is left to run."""
    course = make_copy(tmp_path_factory.mktemp("pointers") / "course", module_count=2)
    assert course.doit("checkpoint:00").returncode == 0
    return course


@pytest.mark.parametrize("bug", BUGS)
def test_a_wrong_operator_is_pointed_at_first(setup_passed, tmp_path, bug):
    course = CourseCopy(tmp_path / "course")
    shutil.copytree(setup_passed.root, course.root, ignore=shutil.ignore_patterns(".lock"))
    good, broken, culprits = BUGS[bug]
    course.edit(TENSOR, good, broken)
    lines = course.path(TENSOR).read_text().splitlines()
    expected = [f"{TENSOR}:{next(n for n, line in enumerate(lines, 1) if line.startswith(c))}" for c in culprits]

    result = course.tito("module", "complete", "tensor", env={"COLUMNS": "250", "NO_COLOR": "1"})

    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr, result.stdout
    pointers = [line.split()[2] for line in result.stdout.splitlines() if line.strip().startswith("look at ")]
    assert pointers, result.stdout
    assert pointers[: len(expected)] == expected, f"{bug}: pointers {pointers}, expected first {expected}\n" + result.stdout
    assert all(p.startswith(TENSOR) for p in pointers), "never into module 01, which passed"
