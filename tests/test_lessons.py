"""Every lesson runs top to bottom as a script, so its inline checks pass with the full solutions."""
import subprocess
import sys

import pytest

from tito import manifest

from .conftest import ROOT

COURSE = manifest.load(ROOT)
LESSONS = [m for m in COURSE.modules if (ROOT / m.source).exists()]


@pytest.mark.parametrize("module", LESSONS, ids=lambda m: m.id)
def test_lesson_runs_as_a_script(module):
    result = subprocess.run(
        [sys.executable, str(module.source)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, f"{module.source} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
