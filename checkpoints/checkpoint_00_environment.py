"""Checkpoint 00 · environment: I can set up a reproducible, measured ML environment."""
import os
import random
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinytorch.core.setup as setup
from tinytorch.core.setup import (
    check_environment, get_num_threads, map_chunks, peak_memory, rng, set_num_threads, set_seed, system_info, time_it,
)  # fmt: skip


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


def blas_thread_counts():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture
def two_threads():
    """The test runs with set_num_threads(2); the count found before is set again afterwards."""
    before = get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(before)


def test_the_thread_count_defaults_to_blas_and_can_be_set(monkeypatch):
    monkeypatch.setattr(setup, "_threads", None)  # as in a fresh process
    assert get_num_threads() == max(blas_thread_counts(), default=1)
    set_num_threads(3)
    assert get_num_threads() == 3
    for wrong in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads"):
            set_num_threads(wrong)
    assert get_num_threads() == 3


def test_map_chunks_runs_the_chunks_at_once_with_one_blas_thread_each(two_threads):
    both_inside = threading.Barrier(2, timeout=10)  # passes only when two chunks run at the same time

    def work(chunk):
        both_inside.wait()
        return chunk * 10, max(blas_thread_counts(), default=1), threading.get_ident()

    blas_before = blas_thread_counts()
    results = map_chunks(work, [1, 2])
    assert [value for value, _, _ in results] == [10, 20]
    assert all(blas == 1 for _, blas, _ in results)  # BLAS limited to one thread inside...
    assert blas_thread_counts() == blas_before  # ...and given its threads back afterwards
    assert threading.get_ident() not in {ident for _, _, ident in results}
    assert map_chunks(lambda n: n * n, range(11)) == [n * n for n in range(11)]  # every chunk, in order


def test_map_chunks_with_one_thread_or_nested_is_the_plain_loop(two_threads):
    caller = threading.get_ident()

    def inner(outer):
        return map_chunks(lambda n: (outer, n, threading.get_ident()), range(3))

    for outer_results in map_chunks(inner, range(2)):
        assert len({ident for _, _, ident in outer_results}) == 1  # all on the outer chunk's own thread
    assert [[(o, n) for o, n, _ in results] for results in map_chunks(inner, range(2))] == [
        [(o, n) for n in range(3)] for o in range(2)
    ]  # fmt: skip
    set_num_threads(1)
    assert {ident for _, _, ident in inner(0)} == {caller}


def test_an_error_in_a_chunk_reaches_the_caller_after_every_chunk_finished(two_threads):
    finished = []

    def work(n):
        if n == 2:
            raise KeyError(f"chunk {n}")
        time.sleep(0.01)
        finished.append(n)

    blas_before = blas_thread_counts()
    with pytest.raises(KeyError, match="chunk 2"):
        map_chunks(work, range(6))
    assert sorted(finished) == [0, 1, 3, 4, 5] and blas_thread_counts() == blas_before
    assert map_chunks(str, range(3)) == ["0", "1", "2"]  # the pool still works afterwards
