"""Checkpoint 00 · environment: I can set up a reproducible, measured ML environment."""
import os
import random
import sys
import time
import tracemalloc

import numpy as np

import tinytorch.core.setup as setup
from tinytorch.core.setup import check_environment, peak_memory, rng, set_seed, system_info, time_it


def test_system_info_describes_this_machine():
    info = system_info()
    assert info["numpy"] == np.__version__
    assert info["cpu_count"] == (os.cpu_count() or 1)
    assert info["memory_gb"] is None or info["memory_gb"] > 0.1
    assert isinstance(info["blas"], str) and info["blas"]


def test_same_seed_gives_same_numbers_everywhere():
    set_seed(7)
    first = [random.random(), float(np.random.rand()), float(rng().normal())]
    set_seed(7)
    again = [random.random(), float(np.random.rand()), float(rng().normal())]
    set_seed(8)
    other = float(rng().normal())
    assert first == again
    assert other != first[2]
    # the value itself is fixed by NumPy's PCG64 generator: seeded with 7 its first normal is known
    assert abs(first[2] - np.random.default_rng(7).normal()) == 0.0
    assert set_seed(9) is rng()  # set_seed returns the new generator


def test_time_it_returns_median_and_result():
    seconds, result = time_it(lambda: time.sleep(0.01) or "done", repeat=3, warmup=0)
    assert result == "done"
    assert 0.009 <= seconds < 0.5


def test_time_it_runs_warmup_and_repeats():
    calls = []
    time_it(calls.append, 1, repeat=4, warmup=2)
    assert len(calls) == 6
    calls.clear()
    time_it(calls.append, 1, repeat=1, warmup=0)
    assert len(calls) == 1
    calls.clear()
    time_it(calls.append, 1, repeat=0, warmup=0)  # at least one timed call, to have a result
    assert len(calls) == 1


def test_peak_memory_sees_numpy_allocations():
    peak, array = peak_memory(np.zeros, (1000, 1000))
    assert array.nbytes == 8_000_000
    assert 8_000_000 <= peak < 8_500_000
    assert not tracemalloc.is_tracing()  # it started tracing, so it stopped it


def test_peak_memory_inside_a_running_trace_counts_only_the_call():
    tracemalloc.start()
    try:
        np.ones(2_000_000).sum()  # an earlier, larger peak (16 MB) that must not count
        held = np.ones(500_000)  # 4 MB alive before the call: the baseline, not part of the peak
        peak, _ = peak_memory(np.zeros, (250, 1000))
        assert 2_000_000 <= peak < 2_500_000 and held.size
        assert tracemalloc.is_tracing()  # someone else's trace is left running
    finally:
        tracemalloc.stop()


def test_environment_checks_pass():
    checks = check_environment()
    assert len(checks) >= 4
    failed = [(name, detail) for name, passed, detail in checks if not passed]
    assert not failed, failed


def _verdicts():
    return {name: passed for name, passed, _ in check_environment()}


def test_environment_thresholds_are_the_stated_ones(monkeypatch):
    # measured in CPU time (cpu_time=True), so that a busy machine does not fail the check
    monkeypatch.setattr(setup, "matmul_gflops", lambda n=256, repeat=5, cpu_time=False: 0.6 if cpu_time else 0.0)
    monkeypatch.setattr(sys, "version_info", (3, 10, 0, "final", 0))
    monkeypatch.setattr(np, "__version__", "1.24.0")
    assert _verdicts()["python >= 3.10"] and _verdicts()["numpy >= 1.24"] and _verdicts()["matmul speed"]
    monkeypatch.setattr(setup, "matmul_gflops", lambda **options: 0.5)
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.setattr(np, "__version__", "1.23.5")
    assert not any(_verdicts()[name] for name in ("python >= 3.10", "numpy >= 1.24", "matmul speed"))
    monkeypatch.setattr(np, "__version__", "1.100.0")  # versions compare as numbers, not as text
    assert _verdicts()["numpy >= 1.24"] and _verdicts()["matmul is correct"] and _verdicts()["float64 is IEEE double"]
