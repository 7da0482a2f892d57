# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 01 · Setup: a reproducible, measured environment
#
# Every result in this course is a number: a loss, an accuracy, a speed-up. A number is only worth
# something if you can get it again tomorrow and know what machine produced it. Before we write a
# single tensor we build four small tools, and a fifth the framework needs later:
#
# | tool | question it answers |
# |---|---|
# | `system_info()` | what am I running on? (Python, NumPy, cores, memory, BLAS) |
# | `check_environment()` | is this machine fit for the course? |
# | `set_seed(seed)` / `rng()` | will my random numbers be the same next time? |
# | `time_it(fn)` / `peak_memory(fn)` | how long does it take, and how much memory? |
# | `set_num_threads(n)` / `map_chunks(work, chunks)` | how many cores does the framework use? |
#
# ```
#   your code ──► random numbers ──► results
#        ▲              ▲               │
#        │          set_seed(42)        ▼
#   system_info()                  time_it / peak_memory
# ```

# %%
#| default_exp core.setup

# %%
#| export
import os
import platform
import random
import statistics
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

# %% [markdown]
# ## 1. What am I running on?
#
# NumPy hands matrix products to a BLAS library (OpenBLAS, MKL, Accelerate). The same code can be
# ten times faster on one BLAS than another, so a benchmark that does not say which BLAS it used is
# hard to trust. `numpy.show_config(mode="dicts")` tells us; `os.cpu_count()` and `/proc/meminfo`
# give the cores and memory.
#
# **Your task:** fill in `system_info()` so it returns a dictionary with the keys `python`,
# `numpy`, `platform`, `cpu_count`, `memory_gb` and `blas`.

# %%
#| export
def _memory_gb():
    """Total physical memory in GiB, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _blas_name():
    """The BLAS library NumPy was built against, e.g. 'scipy-openblas'."""
    try:
        config = np.show_config(mode="dicts")
        return config["Build Dependencies"]["blas"]["name"]
    except Exception:  # older NumPy has no dict mode: the name is simply unknown
        return "unknown"


def system_info():
    """Describe this machine: Python and NumPy versions, platform, cores, memory and BLAS."""
    ### HINT: Return a dict with the keys the check below reads (python, numpy, platform, cpu_count, memory_gb, blas);
    ### HINT: each value comes from the standard library, NumPy or a helper defined above.
    ### BEGIN SOLUTION
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_count": os.cpu_count() or 1,
        "memory_gb": _memory_gb(),
        "blas": _blas_name(),
    }
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: system_info

# %%
info = system_info()
assert set(info) >= {"python", "numpy", "platform", "cpu_count", "memory_gb", "blas"}
assert info["numpy"] == np.__version__ and info["cpu_count"] >= 1
print(info)

# %% [markdown]
# ## 2. Timing and memory, measured properly
#
# One timing is noise: the first call pays for cold caches and lazy imports, and the OS may
# interrupt any call. So we **warm up** first, **repeat**, and report the **median**, which one slow
# outlier cannot drag. `time.perf_counter()` is the right clock: monotonic and high resolution.
#
# For memory, Python's `tracemalloc` records every allocation, NumPy's arrays included. The
# **peak** during a call is what decides whether a batch fits in RAM; what is still **held** after
# it (`held_memory`) is what its result keeps alive.

# %%
#| export
def time_it(fn, *args, repeat=5, warmup=1, **kwargs):
    """Run fn(*args, **kwargs) `warmup` times unmeasured, then `repeat` times.

    Returns (median seconds per call, the last result).
    """
    ### HINT: Call fn `warmup` times without timing it; then time each of the `repeat` calls on its own (at least one)
    ### HINT: and return the median of those times with the result of the last call.
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
    ### END SOLUTION


def peak_memory(fn, *args, **kwargs):
    """Peak bytes allocated while fn runs (NumPy arrays included). Returns (peak bytes, result)."""
    ### HINT: tracemalloc sees Python's and NumPy's allocations. Report the highest allocation reached during the
    ### HINT: call, minus what was already allocated before it, counting from a fresh peak; leave tracing as you found
    ### HINT: it (stop it only if you started it).
    ### BEGIN SOLUTION
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        result = fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - base, result
    ### END SOLUTION


def held_memory(fn, *args, **kwargs):
    """Bytes still allocated once fn has returned, while its result is alive (what a result keeps:
    Module 02 uses it to weigh the computation graph). Returns (bytes, result)."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        if started_here:  # leave tracing as it was found
            tracemalloc.stop()


# %% [markdown]
# ### 🧪 Check: a naive loop against NumPy, timed and weighed
#
# Summing a million numbers in a Python loop against `np.sum`: the vectorised call runs in C over
# contiguous memory and is typically 50-100x faster. Memory: a million float64 values are 8 MB.

# %%
numbers = np.random.default_rng(0).random(1_000_000)
loop_time, loop_total = time_it(lambda: sum(float(x) for x in numbers), repeat=3)
numpy_time, numpy_total = time_it(np.sum, numbers)
assert abs(loop_total - numpy_total) < 1e-6 * numpy_total
print(f"python loop {loop_time * 1e3:.1f} ms, np.sum {numpy_time * 1e3:.2f} ms: {loop_time / numpy_time:.0f}x faster")
peak, array = peak_memory(np.ones, 1_000_000)
assert 8_000_000 <= peak < 8_200_000, peak
print(f"np.ones(1_000_000) peaks at {peak / 1e6:.1f} MB")
held, _ = held_memory(lambda: np.ones(1_000_000).sum())  # the array is freed before the call returns
assert held < 1_000, held

# %% [markdown]
# ## 3. Reproducibility: one seed for every source of randomness
#
# Weight initialisation, data shuffling, dropout: all draw random numbers. `set_seed(seed)` seeds
# Python's `random`, NumPy's global generator, and the framework's own generator `rng()` (a modern
# `np.random.Generator`), which every later module uses. Same seed, same numbers, same training run.

# %%
#| export
_generator = np.random.default_rng()


def rng():
    """The framework's random generator; every module draws from it, so set_seed controls them all."""
    return _generator


def set_seed(seed):
    """Seed Python's `random`, NumPy's global state and the framework generator; return the generator."""
    global _generator
    ### HINT: Three generators start from the same seed: Python's `random`, NumPy's global one, and this module's
    ### HINT: `_generator`, which is replaced by a new generator. Return the new generator.
    ### BEGIN SOLUTION
    random.seed(seed)
    np.random.seed(seed)
    _generator = np.random.default_rng(seed)
    return _generator
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: same seed, same numbers

# %%
set_seed(42)
first = (random.random(), np.random.rand(), rng().normal())
set_seed(42)
assert first == (random.random(), np.random.rand(), rng().normal())
set_seed(43)
assert first[2] != rng().normal()
print("seeding is reproducible:", first)

# %% [markdown]
# ## 4. Is this machine fit for the course?
#
# `check_environment()` turns the facts above into pass/fail checks, each with a detail a learner
# can act on. One of them measures this machine's matrix-multiply speed in GFLOP/s: a product of
# two n×n matrices costs 2n³ floating-point operations, so GFLOP/s = 2n³ / seconds / 1e9. Later
# modules compare their kernels against this figure. The check itself counts the **CPU time** this
# process spent (`time.process_time`), not the wall-clock time: on a machine busy with other work a
# wall clock measures the crowd, while the question is whether NumPy's matrix product is fast.

# %%
#| export
def matmul_gflops(n=256, repeat=5, cpu_time=False):
    """Measured GFLOP/s of an n×n float32 matrix product (2·n³ operations).

    cpu_time=True counts only the CPU time this process spent, so a machine busy with other work
    does not look slow: what the environment check wants to know is whether NumPy's BLAS is fast.
    """
    a = np.ones((n, n), dtype=np.float32)
    if not cpu_time:
        seconds, _ = time_it(np.matmul, a, a, repeat=repeat)
        return 2 * n**3 / seconds / 1e9
    np.matmul(a, a)  # warm-up
    start = time.process_time()
    for _ in range(repeat):
        np.matmul(a, a)
    return 2 * n**3 * repeat / max(time.process_time() - start, 1e-9) / 1e9


def check_environment():
    """A list of (check name, passed, detail) for this machine."""
    ### HINT: Five checks in this order, each (name, passed, detail): 'python >= 3.10', 'numpy >= 1.24' (compare
    ### HINT: (major, minor) as numbers: 1.100 is newer than 1.24), 'matmul is correct' (a small product whose answer
    ### HINT: you know), 'float64 is IEEE double' (epsilon 2**-52), 'matmul speed' (matmul_gflops(cpu_time=True)
    ### HINT: above 0.5 GFLOP/s: CPU time, so that a busy machine does not fail it). The detail is the measured value.
    ### BEGIN SOLUTION
    info = system_info()
    numpy_major_minor = tuple(int(p) for p in np.__version__.split(".")[:2])
    product = np.array([[1.0, 2.0], [3.0, 4.0]]) @ np.array([[5.0], [6.0]])
    gflops = matmul_gflops(cpu_time=True)
    return [
        ("python >= 3.10", sys.version_info >= (3, 10), info["python"]),
        ("numpy >= 1.24", numpy_major_minor >= (1, 24), info["numpy"]),
        ("matmul is correct", bool(np.array_equal(product, [[17.0], [39.0]])), product.ravel().tolist()),
        ("float64 is IEEE double", np.finfo(np.float64).eps == 2.0**-52, float(np.finfo(np.float64).eps)),
        ("matmul speed", gflops > 0.5, f"{gflops:.1f} GFLOP/s with {info['blas']}"),
    ]
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: the whole environment

# %%
for name, passed, detail in check_environment():
    print(f"{'✅' if passed else '❌'} {name}: {detail}")
assert all(passed for _, passed, _ in check_environment())

# %% [markdown]
# ## 5. How many cores the framework computes with
#
# NumPy's matrix products already run on every core BLAS was given (`OPENBLAS_NUM_THREADS`, set
# before the process starts). Everything else NumPy does -- copies, sums, elementwise maxima -- runs
# on **one** core. Later modules (06 first) cut big operations into independent **chunks** (a few
# images of a batch each) and can run them on several cores at once. Like PyTorch's
# `torch.set_num_threads`, the framework owns that setting, and one pool of worker threads that
# lives as long as the process (starting threads at every call would cost more than small chunks):
#
# | function | what it does |
# |---|---|
# | `get_num_threads()` | the framework's thread count: `set_num_threads`'s value, else as many as BLAS was given |
# | `set_num_threads(n)` | how many chunks run at once from now on (1: one after another, no pool) |
# | `with num_threads(n):` | the same inside the block only |
# | `map_chunks(work, chunks)` | `[work(chunk) for chunk in chunks]`, computed on the pool, in order |
#
# Three rules make `map_chunks` safe, and Module 13 explains the first in depth (section 5 there):
#
# 1. **BLAS gets one thread inside.** Two workers each calling a BLAS that runs two threads of its
#    own ask for four busy threads on two cores; BLAS threads wait for each other by spinning, so
#    that is slower than no workers at all. Inside `map_chunks` BLAS is limited to one thread
#    (`threadpoolctl`, which knows how to tell OpenBLAS, MKL and OpenMP) and restored afterwards:
#    each chunk's product runs on its worker's core.
# 2. **One parallel region at a time.** A worker whose chunk calls `map_chunks` again, or a second
#    thread of the learner's calling it meanwhile, gets the plain loop: nothing stacks.
# 3. **Errors travel back.** An exception in a worker is raised in the caller, after every chunk has
#    finished (no worker is left writing into an array the caller has given up on).
#
# (And a process forked from this one starts a pool of its own: threads are not copied by `fork`,
# and a pool whose threads are missing would wait for ever.)
#
# Workers run only NumPy on arrays: the GIL is released inside NumPy's loops, so the chunks really
# run at the same time, and nothing the workers do depends on per-thread state of the framework
# (Module 02's recording switch is per thread). The check below also measures what a parallel
# region costs when the chunks do nothing: about a tenth of a millisecond (more on a busy machine)
# to hand the chunks over, wake the workers and limit BLAS, so a region must hold far more work
# than that (Module 06's hold milliseconds).

# %%
#| export
_threads = None  # set_num_threads's count; None until then: as many as BLAS was given
_pool = None  # the worker threads, made at the first parallel call and kept (remade when the count changes)
_pool_size = 0
_parallel_region = threading.Lock()  # held while chunks run on the pool: a second caller runs them serially


@cache
def _blas():
    """threadpoolctl's handle on the BLAS libraries NumPy loaded; made once: finding them takes ~10 ms."""
    return ThreadpoolController().select(user_api="blas")


@cache
def _blas_threads():
    """BLAS's own thread count, read once: it is fixed when the process starts (OpenBLAS cannot grow its
    pool later), and reading it costs ~7 µs, which map_chunks would pay at every call. 1 where no BLAS
    library can be found: then nothing could be kept from stacking on it."""
    return max((pool["num_threads"] for pool in _blas().info()), default=1)


def get_num_threads():
    """How many chunks `map_chunks` runs at once: set_num_threads's value, else BLAS's own thread count."""
    return _threads if _threads is not None else _blas_threads()


def set_num_threads(count):
    """Run up to `count` chunks at once from now on; 1 runs them one after another on the caller's thread.

    BLAS's own thread count is not changed: it is fixed when the process starts (OPENBLAS_NUM_THREADS)."""
    global _threads
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"set_num_threads({count!r}): the count must be a whole number of at least 1")
    _threads = int(count)


@contextmanager
def num_threads(count):
    """set_num_threads(count) inside a `with` block; the setting found before is set again after it."""
    global _threads
    before = _threads
    set_num_threads(count)
    try:
        yield
    finally:
        _threads = before


def _worker_pool(size):
    """The persistent pool, with `size` workers."""
    global _pool, _pool_size
    if _pool_size != size:
        if _pool is not None:
            _pool.shutdown()
        _pool, _pool_size = ThreadPoolExecutor(size, thread_name_prefix="tinytorch"), size
    return _pool


def _forget_pool():
    """In a forked child: none of the parent's threads exist there, so it starts its own pool when needed."""
    global _pool, _pool_size, _parallel_region
    _pool, _pool_size, _parallel_region = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows starts processes afresh
    os.register_at_fork(after_in_child=_forget_pool)


def map_chunks(work, chunks):
    """[work(chunk) for chunk in chunks], computed on up to get_num_threads() threads, results in order.

    Serial when there is one thread or one chunk, or when a parallel region is already running (a
    worker calling map_chunks, another thread of the caller's). Inside, BLAS runs one thread per
    worker. An exception raised by `work` is raised here once every chunk has finished."""
    chunks = list(chunks)
    threads = get_num_threads()
    if threads < 2 or len(chunks) < 2 or not _parallel_region.acquire(blocking=False):
        return [work(chunk) for chunk in chunks]
    try:
        pool = _worker_pool(threads)  # sized by the setting, not by the chunk count: kept between calls
        with _blas().limit(limits=1):
            futures = [pool.submit(work, chunk) for chunk in chunks]
            wait(futures)
        return [future.result() for future in futures]  # the first failure, in chunk order, is raised
    finally:
        _parallel_region.release()


# %% [markdown]
# ### 🧪 Check: the pool gives the loop's results, in order, and its errors

# %%
blas_before = _blas().info()
with num_threads(2):
    assert get_num_threads() == 2
    with num_threads(1):
        assert get_num_threads() == 1
    assert get_num_threads() == 2
    assert map_chunks(lambda n: n * n, range(7)) == [n * n for n in range(7)]  # order kept, nothing dropped
    workers = set(map_chunks(lambda n: (time.sleep(0.01), threading.current_thread().name)[1], range(4)))
    assert all(name.startswith("tinytorch") for name in workers)  # the chunks ran on the pool
    assert map_chunks(lambda n: map_chunks(lambda m: m + n, range(3)), range(2)) == [[0, 1, 2], [1, 2, 3]]  # nested
    try:
        map_chunks(lambda n: 1 // (n - 3), range(5))
        raise AssertionError("the worker's ZeroDivisionError must reach the caller")
    except ZeroDivisionError:
        pass
    assert _blas().info() == blas_before  # BLAS got its threads back after each parallel region
    region_s, _ = time_it(map_chunks, abs, [-1, -2], repeat=200)
with num_threads(1):
    assert set(map_chunks(lambda n: threading.current_thread().name, range(4))) == {threading.current_thread().name}
    loop_s, _ = time_it(map_chunks, abs, [-1, -2], repeat=200)
blas_threads = ", ".join(f"{pool['internal_api']} {pool['num_threads']}" for pool in blas_before) or "none found"
print(f"map_chunks runs {get_num_threads()} chunk(s) at once by default here: {os.cpu_count()} cores, "
      f"BLAS threads: {blas_threads}")
print(f"two chunks of no work: {region_s * 1e6:.0f} µs on two threads, {loop_s * 1e6:.1f} µs as the plain loop")

# %% [markdown]
# ## What you built
#
# `system_info`, `check_environment`, `set_seed`/`rng`, `time_it`, `peak_memory` and the thread
# setting (`get_num_threads`, `set_num_threads`, `num_threads`, `map_chunks`) are now part of
# `tinytorch.core.setup`. Run `tito module complete 01_setup` to export them and unlock checkpoint 00.
# Next: **Module 02 · Tensor**, the data structure everything else is made of.

# %% [markdown]
# ## More hints
#
# Each exercise's first hint sits right above it. Stuck after trying it? `tito hint NAME --level 2`
# shows the next one (NAME as below, e.g. `tito hint system_info --level 2`). They wait here, out of
# the way, so that you read each one only when you need it.
#
# - `system_info` 2: platform gives the Python version, the system and the machine; os.cpu_count() can return None (use 1 then); _memory_gb() and _blas_name() give the last two.
# - `time_it` 2: time.perf_counter() just before and just after each call; statistics.median of the list of durations.
# - `peak_memory` 2: tracemalloc.is_tracing(), start(), reset_peak(); get_traced_memory() returns (current, peak): take `current` before the call and `peak` after it; stop() in a `finally`.
# - `set_seed` 2: random.seed, np.random.seed, and np.random.default_rng(seed) assigned to the global _generator.
# - `check_environment` 2: sys.version_info compares with a tuple; the NumPy version string splits on '.'; np.finfo(np.float64).eps; system_info() has the versions and the BLAS name for the details.
