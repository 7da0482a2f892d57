"""The framework's thread setting and pool (lesson 01: get_num_threads, set_num_threads, num_threads,
map_chunks).

Given code, not an exercise, so tested here rather than in checkpoint 00; checkpoints 05 and 08 check
that Conv2D's forward and backward give the serial numbers on two threads."""
import os
import signal
import threading
import time

import pytest
from threadpoolctl import threadpool_info

import tinytorch.core.setup as setup
from tinytorch.core.setup import get_num_threads, map_chunks, num_threads, set_num_threads


def blas_thread_counts():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_the_thread_count_defaults_to_blas_and_can_be_set(monkeypatch):
    monkeypatch.setattr(setup, "_threads", None)  # as in a fresh process
    assert get_num_threads() == max(blas_thread_counts(), default=1)
    set_num_threads(3)
    assert get_num_threads() == 3
    for wrong in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads"):
            set_num_threads(wrong)
    assert get_num_threads() == 3


def test_num_threads_sets_the_count_for_its_block_only(monkeypatch):
    monkeypatch.setattr(setup, "_threads", None)
    default = get_num_threads()
    with num_threads(5):
        assert get_num_threads() == 5
    assert setup._threads is None and get_num_threads() == default  # still following BLAS
    set_num_threads(4)
    with pytest.raises(KeyError), num_threads(1):
        raise KeyError("inside")
    assert get_num_threads() == 4


def test_map_chunks_runs_the_chunks_at_once_with_one_blas_thread_each():
    both_inside = threading.Barrier(2, timeout=10)  # passes only when two chunks run at the same time

    def work(chunk):
        both_inside.wait()
        return chunk * 10, max(blas_thread_counts(), default=1), threading.get_ident()

    blas_before = blas_thread_counts()
    with num_threads(2):
        results = map_chunks(work, [1, 2])
        assert map_chunks(lambda n: n * n, range(11)) == [n * n for n in range(11)]  # every chunk, in order
    assert [value for value, _, _ in results] == [10, 20]
    assert all(blas == 1 for _, blas, _ in results)  # BLAS limited to one thread inside...
    assert blas_thread_counts() == blas_before  # ...and given its threads back afterwards
    assert threading.get_ident() not in {ident for _, _, ident in results}


def test_map_chunks_with_one_thread_or_nested_is_the_plain_loop():
    def inner(outer):
        return map_chunks(lambda n: (outer, n, threading.get_ident()), range(3))

    with num_threads(2):
        nested = map_chunks(inner, range(2))
    assert [[(o, n) for o, n, _ in results] for results in nested] == [[(o, n) for n in range(3)] for o in range(2)]
    assert all(len({ident for _, _, ident in results}) == 1 for results in nested)  # each on its outer chunk's thread
    with num_threads(1):
        assert {ident for _, _, ident in inner(0)} == {threading.get_ident()}


def test_an_error_in_a_chunk_reaches_the_caller_after_every_chunk_finished():
    finished = []

    def work(n):
        if n == 2:
            raise KeyError(f"chunk {n}")
        time.sleep(0.01)
        finished.append(n)

    blas_before = blas_thread_counts()
    with num_threads(2):
        with pytest.raises(KeyError, match="chunk 2"):
            map_chunks(work, range(6))
        assert sorted(finished) == [0, 1, 3, 4, 5] and blas_thread_counts() == blas_before
        assert map_chunks(str, range(3)) == ["0", "1", "2"]  # the pool still works afterwards


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_pool_of_its_own():
    both_inside = threading.Barrier(2, timeout=10)
    with num_threads(2):
        assert map_chunks(lambda n: (both_inside.wait(), -n)[1], [1, 2]) == [-1, -2]  # the parent's 2 threads exist
        time.sleep(0.05)  # both back to idle
        pid = os.fork()
        if pid == 0:  # the child: its copy of the pool has no threads behind it
            os._exit(0 if map_chunks(abs, [-3, -4, -5]) == [3, 4, 5] else 1)
    deadline = time.monotonic() + 30
    while not (done := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    if not done[0]:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] and os.waitstatus_to_exitcode(done[1]) == 0, "map_chunks in a forked child hung or failed"


def test_the_pool_is_kept_between_calls_and_remade_when_the_count_changes():
    with num_threads(2):
        map_chunks(abs, [-1, -2])
        pool = setup._pool
        map_chunks(abs, range(-7, 0))  # more chunks than threads: the same pool
        assert setup._pool is pool
    with num_threads(3):
        map_chunks(abs, [-1, -2])  # fewer chunks than threads: a pool of 3 all the same
        assert setup._pool is not pool and setup._pool_size == 3
        pool = setup._pool
        map_chunks(abs, range(-5, 0))
        assert setup._pool is pool
