"""`python -m bench --quick`: every benchmark runs end to end (one call per function, figures
meaningless) and writes its JSON with the thread count and BLAS in effect."""
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

TOPICS = ["spatial", "scaling", "memory", "tinygpt"]


def bench(*args, cwd, timeout=600):
    """python -m bench, run in `cwd`; tests pass --out so that the repository's figures stay untouched."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.mark.timeout(900)  # four topics, each in its own process, PyTorch imported in each
def test_quick_benchmarks_write_their_figures_with_threads_and_blas(tmp_path):
    out = tmp_path / "build" / "bench"
    result = bench("--quick", "--threads", "1", "--out", str(out), *TOPICS, cwd=tmp_path, timeout=850)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for topic in TOPICS:
        report = json.loads((out / f"{topic}.json").read_text())
        assert report["quick"] is True and [run["threads"] for run in report["runs"]] == [1]
        run = report["runs"][0]
        assert run["system"]["blas"] and run["system"]["env"]["OPENBLAS_NUM_THREADS"] == "1"
        assert run["system"]["tinytorch_threads"] == 1  # the framework's pool follows BLAS's count
        assert run["cases"] and all(case["tinytorch_s"] > 0 for case in run["cases"])
        assert all(case["unit"] in ("seconds", "bytes") for case in run["cases"])


def test_thread_counts_are_checked(tmp_path):
    result = bench("--threads", "0", "tinygpt", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "thread counts" in result.stderr and "Traceback" not in result.stderr


def test_each_function_is_timed_in_blocks_each_after_an_untimed_call(monkeypatch):
    """median_clocks: BLOCK timed calls of one function in a row, each block after a pause and an
    untimed call, so that no timed call follows the other library's call directly."""
    from bench import harness

    monkeypatch.delenv(harness.QUICK_VARIABLE, raising=False)
    monkeypatch.setattr(harness, "SETTLE_SECONDS", 0.0)
    calls = []
    clocks = harness.median_clocks([lambda: calls.append("a"), lambda: calls.append("b")], repeat=7, warmup=1)
    assert len(clocks) == 2 and all(wall >= 0 and cpu >= 0 for wall, cpu in clocks)
    block, rest = harness.BLOCK + 1, 7 - harness.BLOCK + 1  # each block: one untimed call, then the timed ones
    assert "".join(calls) == "ab" + "a" * block + "b" * block + "a" * rest + "b" * rest
