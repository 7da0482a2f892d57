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
# # Module 13 · Kernels: fast compute, measured against the hardware
#
# A **kernel** is the innermost routine that touches every number: a matrix product, a ReLU, a
# convolution. Everything a network does at inference time is a sequence of kernels, so their speed
# *is* the model's speed. This module writes the kernels a framework needs and measures each one
# against the best this machine can do: the GFLOP/s of `np.matmul`, i.e. of a tuned BLAS.
#
# Two numbers decide how fast a kernel can possibly run:
#
# ```
#   arithmetic intensity  =  floating-point operations  /  bytes moved to and from memory
#
#   GFLOP/s ▲                      ____________________  compute roof (BLAS matmul)
#           │                    /
#           │                  /   memory roof: bandwidth × intensity
#           │                /
#           │   ReLU ●     /          ● blocked matmul (high intensity: data reused from cache)
#           │        ↑   /
#           └────────┼──────────────────────────► flops per byte
#                 0.125 (1 flop per 8 bytes)
# ```
#
# A kernel that does little work per byte (ReLU: 1 comparison per 4 bytes read + 4 written) is
# **memory bound**: no cleverness with arithmetic helps, only moving fewer bytes. A matrix product
# does 2n³ operations on 3n² numbers; if the data is *reused from cache* it can be **compute
# bound** and approach the machine's peak. Caches are what make reuse possible:
#
# ```
#   registers ─ L1 (64 KB, ~1 ns) ─ L2 (~1 MB, ~4 ns) ─ L3 (~32 MB, ~15 ns) ─ RAM (~80 ns, ~10-20 GB/s)
# ```
#
# We work on NumPy arrays directly (kernels live below the Tensor; a Tensor passed in is unwrapped).

# %%
#| default_exp core.kernels

# %%
#| export
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tinytorch.core.setup import time_it
from tinytorch.core.spatial import im2col
from tinytorch.core.tensor import Tensor

_all_ = ["im2col"]  # re-exported: the kernel behind every convolution (section 7)

# %%

from tinytorch.core.compression import quantize_layer_weights
from tinytorch.core.setup import matmul_gflops, peak_memory, system_info

# %% [markdown]
# ## 1. Timing a kernel, and the machine's peak
#
# `time_kernel` is `time_it` from Module 01 with kernel-sized defaults: more warm-up calls (the
# first calls fill caches and let the CPU raise its clock) and more repeats (kernels are short, so
# the median of many runs is stable). It returns `(median seconds, result)` so you can check the
# answer of the very call you timed.
#
# GFLOP/s = operations / seconds / 10⁹. A product of (m, k) by (k, n) costs m·n·k multiplies and
# as many adds: **2·m·n·k** operations. `matmul_gflops` of Module 01 measures `np.matmul` on this
# machine: that is our **peak**, the roof every kernel is compared with.

# %%
#| export
def _array(x):
    """The ndarray behind a Tensor, or the array itself (kernels work on raw arrays)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def time_kernel(fn, *args, warmup=2, repeat=10):
    """Median seconds of fn(*args) over `repeat` timed calls after `warmup` untimed ones.

    Returns (seconds, result of the last call). Built on tinytorch.core.setup.time_it.
    """
    ### HINT: reject repeat < 1 or warmup < 0 with a ValueError, then return time_it(fn, *args, repeat=repeat, warmup=warmup)
    ### BEGIN SOLUTION
    if repeat < 1 or warmup < 0:
        raise ValueError(f"time_kernel needs repeat >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}")
    return time_it(fn, *args, repeat=repeat, warmup=warmup)
    ### END SOLUTION


# %%
def gflops(operations, seconds):
    """Operations per second, in billions."""
    return operations / seconds / 1e9


calls = []
seconds, last = time_kernel(lambda: calls.append(len(calls)) or len(calls), warmup=3, repeat=4)
assert len(calls) == 7 and last == 7 and seconds >= 0  # 3 warm-up + 4 timed calls, the last returned
info = system_info()
PEAK = matmul_gflops(n=512)
print(f"{info['cpu_count']} cores, BLAS {info['blas']}: np.matmul peaks at {PEAK:.0f} GFLOP/s (n=512, float32)")

# %% [markdown]
# ## 2. The baseline: three nested loops
#
# The definition of a matrix product, `out[i, j] = Σ_p a[i, p] · b[p, j]`, written as loops.
# We convert the arrays to Python lists first (indexing a NumPy array from Python is slower than a
# list), and read `b` by columns from its transpose, so the inner loop walks two rows.
# Each multiply-add is a handful of interpreted bytecodes: expect MFLOP/s, not GFLOP/s.

# %%
#| export
def _check_matmul(a, b):
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs (m, k) @ (k, n) matrices, got {a.shape} @ {b.shape}")


def matmul_baseline(a, b):
    """out[i, j] = sum_p a[i, p] * b[p, j] with Python loops: the reference for small sizes only."""
    a, b = _array(a), _array(b)
    _check_matmul(a, b)
    ### HINT: rows = a.tolist(), cols = b.T.tolist(); for each (i, j) add up rows[i][p] * cols[j][p] over p into out[i, j]
    ### BEGIN SOLUTION
    rows, cols = a.tolist(), b.T.tolist()
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            total = 0.0
            for p in range(len(row)):
                total += row[p] * col[p]
            out[i, j] = total
    return out
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: the loops agree with NumPy, and how slow they are

# %%
data = np.random.default_rng(0)
a64 = data.standard_normal((64, 64)).astype(np.float32)
b64 = data.standard_normal((64, 64)).astype(np.float32)
assert matmul_baseline([[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]]).tolist() == [[17.0], [39.0]]
loop_s, loop_out = time_kernel(matmul_baseline, a64, b64, warmup=0, repeat=1)
np.testing.assert_allclose(loop_out, a64 @ b64, rtol=1e-4, atol=1e-4)
FLOPS_64 = 2 * 64**3
print(f"loops, n=64: {loop_s * 1e3:.0f} ms = {gflops(FLOPS_64, loop_s) * 1e3:.1f} MFLOP/s, "
      f"{gflops(FLOPS_64, loop_s) / PEAK:.1e} of the np.matmul peak")  # fmt: skip

# %% [markdown]
# ## 3. Caches and tiling: the blocked matrix product
#
# Vectorising the loops is the first step: compute one output **row** at a time, `a[i] @ b`. That
# kills the interpreter overhead, but look at the memory traffic. Each row reads **all of b**
# (n² numbers) to do 2n² operations: an intensity of 2n² / 4n² bytes = **0.5 flop per byte**. For
# n = 1024, b is 4 MB: more than L2, so every row streams b again from L3.
#
# **Tiling** fixes the traffic. Cut the matrices into (T, T) blocks small enough that three of them
# sit in cache together, and compute the product block by block:
#
# ```
#        b:  ┌──┬──┬──┐            out[I, J] += a[I, P] @ b[P, J]   for every block P
#            │  │PJ│  │            three T×T tiles = 3·4·T² bytes (T=256: 768 KB, fits L2)
#            ├──┼──┼──┤            2·T³ flops on 3·T² numbers loaded:
#   a:       │  │  │  │            intensity ≈ T/6 flop/byte (T=256: ≈ 43, vs 0.5 per row)
#  ┌──┬──┬──┐└──┴──┴──┘
#  │IP│  │  │ ──► out[I, J] stays in cache while P runs along the row of a and column of b
#  └──┴──┴──┘
# ```
#
# Each block is loaded once and then **reused T times** from cache. Larger tiles reuse more, until
# three of them no longer fit in cache. In Python there is a second force: every block is one call
# from the interpreter (a few µs), and there are (n/T)³ of them, so tiny tiles drown in call
# overhead. The best tile balances the two -- we measure it. (BLAS tiles the same way, several
# levels deep, down to the registers: that is why `np.matmul` is the roof.)

# %%
#| export
def cache_friendly_matmul(a, b, block_size=128):
    """a @ b computed tile by tile: out[I, J] += a[I, P] @ b[P, J] over (block_size)² blocks.

    Each tile is loaded into cache once and reused block_size times. Any shapes: the edge tiles
    are simply smaller when a dimension is not a multiple of block_size.
    """
    a, b = _array(a), _array(b)
    _check_matmul(a, b)
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    (m, k), n, t = a.shape, b.shape[1], block_size
    ### HINT: out = zeros (m, n); loop i over rows, j over columns, p over k in steps of t; out[i:i+t, j:j+t] += a[i:i+t, p:p+t] @ b[p:p+t, j:j+t]
    ### BEGIN SOLUTION
    out = np.zeros((m, n), dtype=np.result_type(a, b))
    for i in range(0, m, t):
        for j in range(0, n, t):
            tile = out[i : i + t, j : j + t]  # a view: the output tile stays put while p runs
            for p in range(0, k, t):
                tile += a[i : i + t, p : p + t] @ b[p : p + t, j : j + t]
    return out
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: equal to NumPy for awkward shapes, then measured

# %%
for shape_a, shape_b in [((7, 5), (5, 3)), ((130, 70), (70, 257)), ((1, 300), (300, 1))]:
    x, y = data.standard_normal(shape_a), data.standard_normal(shape_b)
    np.testing.assert_allclose(cache_friendly_matmul(x, y, block_size=32), x @ y, rtol=1e-12, atol=1e-12)
assert np.array_equal(cache_friendly_matmul([[1, 2]], [[3], [4]], block_size=1), [[11]])


def matmul_by_rows(a, b):
    """One output row at a time: vectorised, but every row streams all of b from memory."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for i in range(a.shape[0]):
        out[i] = a[i] @ b
    return out


N = 1024
big_a = data.standard_normal((N, N)).astype(np.float32)
big_b = data.standard_normal((N, N)).astype(np.float32)
FLOPS_N = 2 * N**3
tiling = {"np.matmul (BLAS)": time_kernel(np.matmul, big_a, big_b, repeat=3)[0],
          "row by row (0.5 flop/B)": time_kernel(matmul_by_rows, big_a, big_b, warmup=1, repeat=3)[0]}  # fmt: skip
for t in (32, 64, 128, 256):
    tiling[f"tiles of {t} ({(N // t) ** 3:,} calls)"] = time_kernel(
        cache_friendly_matmul, big_a, big_b, t, warmup=1, repeat=3
    )[0]
print(f"n = {N}, float32, {FLOPS_N / 1e9:.1f} GFLOP per product")
for name, seconds in tiling.items():
    print(f"  {name:26} {seconds * 1e3:7.1f} ms  {gflops(FLOPS_N, seconds):6.1f} GFLOP/s  "
          f"{tiling['np.matmul (BLAS)'] / seconds:5.0%} of np.matmul")  # fmt: skip

# %% [markdown]
# What to read in these figures. On a quiet 2-core AMD EPYC (OpenBLAS) we measured, in GFLOP/s:
# np.matmul 150-180, row by row 27-50, tiles of 32: 11-15, of 64: 43-55, of 128: 78-86, of 256:
# 97-139. They vary run to run by 10-20 %; the *shape* does not -- unless other programs compete
# for the cores: then OpenBLAS's threads wait for each other and any figure can be 10x worse.
# Benchmark on a quiet machine, and repeat.
#
# - **Row by row** is far below the peak although every row is a BLAS call: 0.5 flop per byte means
#   the CPU waits for memory. Bandwidth, not arithmetic, is its limit.
# - **Tiles of 32** are slower still: 32,768 Python-level calls of a few µs each, each doing only
#   65 k operations. Overhead per call dominates.
# - **Tiles of 128-256** approach the peak: few calls, each with high intensity, data reused from
#   cache. Our default is 128, a safe size for a 1-2 MB L2 cache.
# - None beats `np.matmul`: BLAS tiles for registers and L1 too, in hand-written vector assembly,
#   and packs tiles into contiguous buffers. Our tiling reaches the same *principle* from Python.
#
# ## 4. Vectorised elementwise kernels: memory bound by nature
#
# Module 03 measured a Python-loop ReLU against `np.maximum`: hundreds of times slower. The
# vectorised kernel below adds one idea: an optional `out` buffer. Without it each call allocates
# a fresh result; with it a caller that runs the same shapes again and again (an inference server)
# reuses memory, and `parallel_relu` below writes each chunk straight into its slice of the output.
#
# `vectorized_operations` computes the elementwise results a loss or an optimizer needs: sum,
# product and squared difference. Each is one pass over memory producing a new array, so its
# cost is bytes moved (read x and y, write the result: 12 bytes per float32 element), and its memory
# is the outputs. `(x - y) ** 2` looks like it needs two temporaries; NumPy notices that `x - y` is
# a temporary nobody else holds and squares it **in place** ("temporary elision", for arrays above
# 256 KB, where the platform lets NumPy check that it is safe) -- we measure whether it happened.

# %%
#| export
def vectorized_relu(x, out=None):
    """max(x, 0) elementwise in one NumPy call (SIMD in C); writes into `out` when given."""
    ### HINT: np.maximum(array, 0, out=out) -- keep the input's dtype
    ### BEGIN SOLUTION
    x = _array(x)
    return np.maximum(x, np.zeros((), dtype=x.dtype), out=out)
    ### END SOLUTION


def vectorized_operations(x, y):
    """Elementwise x + y, x * y and (x - y)² as a dict of arrays, each one vectorised NumPy pass."""
    x, y = _array(x), _array(y)
    ### HINT: return {"add": x + y, "multiply": x * y, "squared_diff": (x - y) ** 2}
    ### BEGIN SOLUTION
    return {"add": x + y, "multiply": x * y, "squared_diff": (x - y) ** 2}
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: values, dtypes, memory and bandwidth

# %%
assert vectorized_relu(np.array([-2, 0, 3], dtype=np.int8)).tolist() == [0, 0, 3]
assert vectorized_relu(Tensor([-1.5, 2.5])).dtype == np.float32
results = vectorized_operations(np.array([1.0, 2.0]), np.array([4.0, 0.5]))
assert {k: v.tolist() for k, v in results.items()} == {"add": [5.0, 2.5], "multiply": [4.0, 1.0], "squared_diff": [9.0, 2.25]}

ACT = data.standard_normal((2048, 2048)).astype(np.float32)  # 16 MB
buffer = np.empty_like(ACT)
relu_s, _ = time_kernel(vectorized_relu, ACT)
relu_out_s, _ = time_kernel(vectorized_relu, ACT, buffer)
assert np.array_equal(buffer, np.maximum(ACT, 0))
ops_s, _ = time_kernel(vectorized_operations, ACT, buffer, repeat=5)
ops_peak, _ = peak_memory(vectorized_operations, ACT, buffer)
square_peak, _ = peak_memory(lambda: (ACT - buffer) ** 2)
print(f"ReLU on 16 MB: {relu_s * 1e3:.2f} ms = {2 * ACT.nbytes / relu_s / 1e9:.1f} GB/s moved, "
      f"{gflops(ACT.size, relu_s):.2f} GFLOP/s; into a reused buffer {relu_out_s * 1e3:.2f} ms")  # fmt: skip
print(f"vectorized_operations: {ops_s * 1e3:.2f} ms for 4 passes (add, multiply, subtract, square) = "
      f"{gflops(4 * ACT.size, ops_s):.2f} GFLOP/s; peak {ops_peak / 2**20:.0f} MiB = its three 16 MiB results")  # fmt: skip
print(f"(x - y) ** 2 alone peaks at {square_peak / 2**20:.0f} MiB "
      f"({'the temporary was reused in place' if square_peak < 1.5 * ACT.nbytes else 'two arrays: no elision here'})")
assert ops_peak >= 3 * ACT.nbytes  # the three results exist at the same time

# %% [markdown]
# ReLU reaches a few GFLOP/s -- a few percent of the peak -- and that is *fine*: it moves 8 bytes
# per operation, so bandwidth × intensity (≈ 10-20 GB/s × 0.125) is its roof, and it sits near it.
# Writing into a reused buffer can save the page faults of a fresh 16 MB allocation (a new
# allocation is fresh memory the OS must map page by page, on first touch).
#
# ## 5. Parallel kernels: threads, the GIL, and BLAS
#
# This machine has several cores. Python threads share one interpreter, and the **GIL** (global
# interpreter lock) lets only one thread run Python bytecode at a time. So threads speed up work
# only while they are *outside* the interpreter: NumPy **releases the GIL** inside its C loops
# (ufuncs like `np.maximum` on large arrays, copies, BLAS calls). Three cases, measured below:
#
# | work per chunk | GIL | threads help? |
# |---|---|---|
# | big NumPy elementwise op (`np.maximum`, `np.exp`) | released | yes, up to the memory bandwidth |
# | a matrix product | released, but BLAS **already** runs its own threads | no: cores are already busy |
# | Python code (loops) | held | no: threads take turns |
#
# And starting threads costs ~0.1 ms: for small arrays it is pure loss.
#
# ```
#   x (rows) ──► chunk 0 ──► thread 0 ──► np.maximum(chunk, 0, out=out[chunk])
#            ──► chunk 1 ──► thread 1 ──►  ...        (each writes its own slice: no locks)
# ```

# %%
#| export
def _workers(num_workers):
    return max(1, num_workers or os.cpu_count() or 1)


def parallel_relu(x, num_workers=None):
    """ReLU with the flattened array cut into one contiguous chunk per thread.

    Each thread runs vectorized_relu on its chunk, writing into its slice of the output; NumPy
    releases the GIL inside the loop, so the chunks really run at the same time.
    """
    x = np.ascontiguousarray(_array(x))
    workers = _workers(num_workers)
    ### HINT: out = np.empty_like(x); cut range(x.size) into `workers` slices of flat views; pool.map vectorized_relu(flat_x[s], flat_out[s]) in a ThreadPoolExecutor
    ### BEGIN SOLUTION
    out = np.empty_like(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    bounds = np.linspace(0, x.size, workers + 1).astype(int)
    chunks = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda s: vectorized_relu(flat_x[s], flat_out[s]), chunks))
    return out
    ### END SOLUTION


def parallel_batch_processing(batch_data, operation, num_workers=None):
    """[operation(item) for item in batch_data], computed by a pool of threads, in order."""
    ### HINT: with ThreadPoolExecutor(_workers(num_workers)) as pool: return list(pool.map(operation, batch_data))
    ### BEGIN SOLUTION
    with ThreadPoolExecutor(_workers(num_workers)) as pool:
        return list(pool.map(operation, batch_data))
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: parallel results equal serial ones, then the speed-ups measured

# %%
odd = data.standard_normal((3, 5, 7))  # 105 values cut into uneven chunks
assert np.array_equal(parallel_relu(odd, num_workers=4), np.maximum(odd, 0))
assert np.array_equal(parallel_relu(odd.transpose(2, 0, 1), num_workers=3), np.maximum(odd.transpose(2, 0, 1), 0))
assert parallel_batch_processing([1, 2, 3], lambda v: v * 10) == [10, 20, 30]

HUGE = data.standard_normal((4096, 4096)).astype(np.float32)  # 64 MB: bigger than every cache
SMALL = HUGE[:64, :256].copy()  # 64 KB
threads = {}
for label, array in (("64 MB", HUGE), ("64 KB", SMALL)):
    serial_s, _ = time_kernel(vectorized_relu, array, repeat=5)
    parallel_s, _ = time_kernel(parallel_relu, array, 2, repeat=5)
    threads[f"ReLU {label}"] = (serial_s, parallel_s)

matrices = [data.standard_normal((256, 256)).astype(np.float32) for _ in range(8)]
threads["8 matmuls 256² (BLAS threads)"] = (
    time_kernel(lambda: [m @ m for m in matrices], repeat=5)[0],
    time_kernel(parallel_batch_processing, matrices, lambda m: m @ m, 2, repeat=5)[0],
)
small_mats = [m[:20, :20] for m in matrices[:4]]
threads["4 loop matmuls 20² (Python, GIL)"] = (
    time_kernel(lambda: [matmul_baseline(m, m) for m in small_mats], warmup=1, repeat=3)[0],
    time_kernel(parallel_batch_processing, small_mats, lambda m: matmul_baseline(m, m), 2, warmup=1, repeat=3)[0],
)
for name, (serial_s, parallel_s) in threads.items():
    print(f"{name:34} serial {serial_s * 1e3:8.3f} ms   2 threads {parallel_s * 1e3:8.3f} ms   speed-up {serial_s / parallel_s:4.2f}x")

# %% [markdown]
# Typical reading on our 2-core machine: the 64 MB ReLU gains 1.1-1.5x (two cores pull more
# bandwidth than one, but they share the memory bus, so never 2x); the 64 KB ReLU *loses* 10-40x
# (starting threads costs more than the 7 µs of work); the Python loops gain nothing (the GIL lets
# one thread at a time run them: ~0.6x, the switching costs extra). And the matrix products
# **lose badly**, 5-15x: OpenBLAS already spreads every product over both cores, so two Python
# threads calling it at once ask for four busy threads on two cores, and OpenBLAS's threads, which
# wait for each other by spinning, keep pre-empting one another. Never stack your own threads on
# top of a threaded BLAS. Real frameworks keep one pool of threads alive, parallelise inside the
# kernel rather than around it, and only above a size threshold -- for exactly these reasons.
# TinyTorch has done the same since Module 06: `map_chunks` (Module 01) runs Conv2D's chunks on one
# persistent pool of `get_num_threads()` workers and limits BLAS to **one** thread per worker while
# they run, so the copies around each product use the second core too and no threads stack on
# BLAS; a chunk is a few images, about 512 KB of window matrix, well above the threshold where
# threads pay.
#
# ## 6. Quantized kernels: int8 in, int32 accumulated
#
# Module 12 stored weights as int8 with a scale: `w ≈ scale_w · q_w`. A product of two quantized
# matrices is then
#
# `a @ b ≈ (s_a · q_a) @ (s_b · q_b) = s_a · s_b · (q_a @ q_b)`
#
# so the whole product runs in integers and the scales are applied once at the end. Each int8 ×
# int8 product fits in 15 bits (|q| ≤ 128, 128² = 2¹⁴), but a sum of k of them does not fit in 8 or
# 16 bits: hardware accumulates in **int32**. That is what int8 inference units (VNNI, tensor cores)
# do, moving 4x fewer bytes than float32.
#
# NumPy has no int8 BLAS: `q_a.astype(int32) @ q_b.astype(int32)` runs in a generic C loop at a few
# GFLOP/s. The trick below is **exact**: a float32 has a 24-bit significand, so every integer up to
# 2²⁴ is represented exactly. If k · 128² ≤ 2²⁴ (k ≤ 1024), every partial sum of the product is
# such an integer, whatever order BLAS adds them in, so float32 BLAS computes the int32 result
# *exactly*, at full speed. Above that we use float64 (exact up to 2⁵³).
#
# `quantized_relu` never leaves the integer domain: for symmetric quantization (zero point 0)
# `relu(s · q) = s · max(q, 0)`; with a zero point z the real zero is q = z, so it is `max(q, z)`.

# %%
#| export
def _exact_int_matmul(a_q, b_q):
    """a_q @ b_q for int8 matrices, accumulated exactly (the int32 result) with a float BLAS."""
    k = a_q.shape[-1]
    # each |product| <= 128*128 = 2**14; all partial sums stay exact in float32 while k * 2**14 <= 2**24
    exact = np.float32 if k * 2**14 <= 2**24 else np.float64
    return (a_q.astype(exact) @ b_q.astype(exact)).astype(np.int32)


def quantized_matmul(a_q, b_q, a_scale, b_scale):
    """(a_scale · a_q) @ (b_scale · b_q) for int8 a_q (m, k) and b_q (k, n), as float32.

    The integer product is accumulated exactly (int32); the scales are applied once at the end.
    a_scale: a number or per-row (m, 1); b_scale: a number or per-column (n,).
    """
    a_q, b_q = _array(a_q), _array(b_q)
    _check_matmul(a_q, b_q)
    if a_q.dtype != np.int8 or b_q.dtype != np.int8:
        raise TypeError(f"quantized_matmul takes int8 matrices, got {a_q.dtype} and {b_q.dtype}")
    ### HINT: accumulate = _exact_int_matmul(a_q, b_q) (int32); return it times a_scale * b_scale, as float32
    ### BEGIN SOLUTION
    accumulated = _exact_int_matmul(a_q, b_q)
    scale = np.asarray(a_scale, dtype=np.float32) * np.asarray(b_scale, dtype=np.float32)
    return accumulated.astype(np.float32) * scale
    ### END SOLUTION


def quantized_relu(q, zero_point=0):
    """ReLU in the integer domain: max(q, zero_point), the dtype kept (zero_point encodes 0.0)."""
    ### HINT: np.maximum(q, zero_point) cast back to q's dtype
    ### BEGIN SOLUTION
    q = _array(q)
    return np.maximum(q, np.asarray(zero_point, dtype=q.dtype))
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: exact accumulation, the error bound, and the speed
#
# How far can the quantized product be from the float one? Write â = a + e_a with |e_a| ≤ s_a/2
# elementwise (rounding to the nearest step), and likewise b̂. Then
# `a @ b - â @ b̂ = a @ (b - b̂) + (a - â) @ b̂`, so elementwise
#
# `|error_ij| ≤ (s_b / 2) · Σ_p |a_ip| + (s_a / 2) · Σ_p |b̂_pj|`.
#
# The exact int32 accumulation means the only error is the rounding of the inputs.

# %%
a_q = data.integers(-128, 128, (96, 1500)).astype(np.int8)  # k = 1500 > 1024: the float64 path
b_q = data.integers(-128, 128, (1500, 40)).astype(np.int8)
assert np.array_equal(_exact_int_matmul(a_q, b_q), a_q.astype(np.int64) @ b_q.astype(np.int64))
assert np.array_equal(_exact_int_matmul(a_q[:, :1024], b_q[:1024]), a_q[:, :1024].astype(np.int64) @ b_q[:1024].astype(np.int64))

act = data.standard_normal((64, 256)).astype(np.float32)
weight = data.standard_normal((256, 128)).astype(np.float32)
act_q, act_scale, _ = quantize_layer_weights(act)
weight_q, weight_scale, _ = quantize_layer_weights(weight)
approx = quantized_matmul(act_q, weight_q, act_scale, weight_scale)
weight_hat = weight_scale * weight_q.astype(np.float32)
bound = weight_scale / 2 * np.abs(act).sum(1, keepdims=True) + act_scale / 2 * np.abs(weight_hat).sum(0)
error = np.abs(approx - act @ weight)
assert np.all(error <= bound * (1 + 1e-5))
print(f"int8 matmul: worst error {error.max():.4f}, bound {bound.min():.4f}..{bound.max():.4f}, "
      f"typical {error.mean():.4f} (rounding errors mostly cancel)")  # fmt: skip

codes = np.array([-5, 0, 7], dtype=np.int8)
assert quantized_relu(codes).tolist() == [0, 0, 7] and quantized_relu(codes).dtype == np.int8
assert quantized_relu(codes, zero_point=2).tolist() == [2, 2, 7]

Q = 512
qa = data.integers(-128, 128, (Q, Q)).astype(np.int8)
qb = data.integers(-128, 128, (Q, Q)).astype(np.int8)
int32_s, int32_out = time_kernel(lambda: qa.astype(np.int32) @ qb.astype(np.int32), warmup=1, repeat=3)
exact_s, exact_out = time_kernel(_exact_int_matmul, qa, qb, repeat=5)
assert np.array_equal(int32_out, exact_out)
print(f"int8 product n={Q}: NumPy int32 loop {gflops(2 * Q**3, int32_s):.1f} GOP/s, "
      f"exact float32 BLAS {gflops(2 * Q**3, exact_s):.1f} GOP/s ({int32_s / exact_s:.0f}x)")  # fmt: skip

# %% [markdown]
# On NumPy, int8 buys **memory** (4x smaller weights, 4x less bandwidth to read them), not integer
# speed: the speed comes from BLAS, which only exists for floats. Hardware with int8 instructions
# (e.g. AVX-512 VNNI) does 4x more int8 operations per instruction than float32 ones; NumPy cannot
# reach them, PyTorch's quantized backends can.
#
# ## 7. im2col: convolution as one big matrix product
#
# Module 06 wrote `im2col`, re-exported here because it is *the* kernel trick of convolution:
# lay every (C, KH, KW) input window out as one row, and the convolution becomes a single matrix
# product of (N·OH·OW, C·KH·KW) windows by (C·KH·KW, OC) weights -- which runs at BLAS speed.
#
# ```
#   input (N, C, H, W) ──im2col──► windows (N·OH·OW, C·KH·KW) ──@ W(C·KH·KW, OC)──► (N·OH·OW, OC)
#                                 (KH·KW times the input: a 3×3 kernel copies each pixel 9 times)
# ```
#
# The view itself is free (strides), but `reshape` into a matrix must **copy** it, KH·KW times the
# input's size. That copy is memory bound; the product is compute bound. We measure both.

# %%
batch, cin, cout, side, kernel = 64, 16, 32, 16, 3
images = data.standard_normal((batch, cin, side, side)).astype(np.float32)
conv_weight = data.standard_normal((cout, cin, kernel, kernel)).astype(np.float32)
out_side = side - kernel + 1
conv_flops = 2 * batch * out_side * out_side * cout * cin * kernel * kernel


def windows_matrix(x):
    windows = im2col(Tensor(x), kernel).data  # (N, C, OH, OW, KH, KW), a view
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, cin * kernel * kernel)  # the copy


copy_s, cols = time_kernel(windows_matrix, images, repeat=5)
gemm_s, conv_out = time_kernel(np.matmul, cols, conv_weight.reshape(cout, -1).T, repeat=5)
# check one output pixel against the definition
direct = np.sum(images[3, :, 2:5, 4:7] * conv_weight[5])
assert np.isclose(conv_out.reshape(batch, out_side, out_side, cout)[3, 2, 4, 5], direct, rtol=1e-4)
total_s = copy_s + gemm_s
print(f"conv {batch}×{cin}×{side}² → {cout} channels, 3×3: windows copy {copy_s * 1e3:.2f} ms "
      f"({cols.nbytes / 2**20:.1f} MiB, {cols.nbytes / images.nbytes:.1f}x the input), GEMM {gemm_s * 1e3:.2f} ms; "
      f"{gflops(conv_flops, total_s):.1f} GFLOP/s overall, {gflops(conv_flops, gemm_s):.1f} in the GEMM")  # fmt: skip

# %% [markdown]
# In our runs the copy took two to three times as long as the product it feeds: the 6-D transpose
# gathers values from scattered addresses, a memory-bound shuffle with no arithmetic at all. The
# GEMM itself runs near BLAS speed. This is why fast convolution libraries avoid building the
# whole window matrix: they pack windows tile by tile inside the GEMM ("implicit GEMM"), or use
# algorithms with fewer operations (Winograd, FFT).
#
# ## 8. Every kernel against the roof
#
# One table: each kernel's GFLOP/s (or integer GOP/s) and its fraction of the `np.matmul` peak.
# Low fractions are not failures in themselves: ask *which roof* limits the kernel. ReLU is
# capped by bandwidth (0.125 flop/byte); the loops by the interpreter; the convolution by its
# memory-bound window copy; tiling lets a Python-driven matmul reach a large part of the
# compute roof.

# %%
PEAK = max(PEAK, gflops(FLOPS_N, tiling["np.matmul (BLAS)"]))  # the best np.matmul rate seen in this run
summary = [
    ("matmul_baseline (loops, n=64)", gflops(FLOPS_64, loop_s)),
    ("row-by-row matmul (n=1024)", gflops(FLOPS_N, tiling["row by row (0.5 flop/B)"])),
    *[(f"cache_friendly_matmul {name.split(' (')[0]}", gflops(FLOPS_N, s)) for name, s in tiling.items() if name.startswith("tiles")],
    ("vectorized_relu (16 MB)", gflops(ACT.size, relu_s)),
    ("parallel_relu, 2 threads (64 MB)", gflops(HUGE.size, threads["ReLU 64 MB"][1])),
    ("int8 matmul, NumPy int32", gflops(2 * Q**3, int32_s)),
    ("quantized_matmul (exact via float32)", gflops(2 * Q**3, exact_s)),
    ("conv via im2col + GEMM", gflops(conv_flops, total_s)),
    ("np.matmul n=1024 (the roof)", gflops(FLOPS_N, tiling["np.matmul (BLAS)"])),
]
for name, rate in summary:
    print(f"{name:38} {rate:9.3f} GFLOP/s  {rate / PEAK:7.2%} of peak")

# %% [markdown]
# ## What you built
#
# `time_kernel`, `matmul_baseline`, `cache_friendly_matmul`, `vectorized_relu`,
# `vectorized_operations`, `parallel_relu`, `parallel_batch_processing`, `quantized_matmul`,
# `quantized_relu`, and `im2col` re-exported: `tinytorch.core.kernels`. You measured why a kernel is
# as fast as it is: its arithmetic intensity, the caches, the interpreter, the GIL. Run
# `tito module complete 13_kernels` to unlock checkpoint 12. Next: **Module 14 · Benchmarking**,
# measuring whole models with statistics you can defend.
