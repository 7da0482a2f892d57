"""Every lesson runs top to bottom as a script, so its inline checks pass with the full solutions."""
import os
import subprocess
import sys

import pytest

from tito import manifest
from tito.runner import blas_threads

from .conftest import ROOT

COURSE = manifest.load(ROOT)
LESSONS = [m for m in COURSE.modules if (ROOT / m.source).exists()]


@pytest.mark.parametrize("module", LESSONS, ids=lambda m: m.id)
def test_lesson_runs_as_a_script(module):
    # one BLAS thread, as the checkpoints run: on a busy machine (CI, a class run) two spinning BLAS
    # threads made lesson 16's small products 6x more costly (100 s of CPU instead of 15)
    result = subprocess.run([sys.executable, str(module.source)], cwd=ROOT, capture_output=True, text=True, timeout=240,
                            env={**os.environ, **blas_threads(1)})  # fmt: skip
    assert result.returncode == 0, f"{module.source} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
