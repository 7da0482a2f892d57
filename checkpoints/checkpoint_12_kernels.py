"""Checkpoint 12 · kernels: I can write fast compute kernels and measure them against the hardware."""
import time

import numpy as np
import pytest

from tinytorch.core.kernels import (
    cache_friendly_matmul,
    matmul_baseline,
    parallel_batch_processing,
    parallel_relu,
    quantized_matmul,
    quantized_relu,
    time_kernel,
    vectorized_operations,
    vectorized_relu,
)
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(12)


@pytest.mark.parametrize(
    "m, k, n, block",
    [(1, 1, 1, 1), (5, 7, 3, 2), (64, 64, 64, 32), (130, 70, 257, 64), (33, 129, 65, 32), (10, 20, 30, 500)],
)
def test_blocked_matmul_equals_numpy_for_any_shape(m, k, n, block):
    a, b = RNG.standard_normal((m, k)), RNG.standard_normal((k, n))
    np.testing.assert_allclose(cache_friendly_matmul(a, b, block_size=block), a @ b, rtol=1e-12, atol=1e-12)
    ints_a, ints_b = RNG.integers(-9, 10, (m, k)), RNG.integers(-9, 10, (k, n))
    assert np.array_equal(cache_friendly_matmul(ints_a, ints_b, block_size=block), ints_a @ ints_b)


def test_baseline_loops_and_shape_errors():
    assert matmul_baseline([[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]).tolist() == [[19.0, 22.0], [43.0, 50.0]]
    a, b = RNG.standard_normal((6, 9)), RNG.standard_normal((9, 4))
    np.testing.assert_allclose(matmul_baseline(Tensor(a), Tensor(b)), a @ b, rtol=1e-12)
    for kernel in (matmul_baseline, cache_friendly_matmul):
        with pytest.raises(ValueError):
            kernel(np.ones((2, 3)), np.ones((2, 3)))


def test_time_kernel_counts_warmup_and_repeats():
    calls = []

    def kernel(value):
        calls.append(value)
        return len(calls)

    seconds, result = time_kernel(kernel, "x", warmup=3, repeat=5)
    assert len(calls) == 8 and result == 8 and calls == ["x"] * 8
    calls.clear()

    def slow(value):
        time.sleep(0.002 if calls else 0.3)  # only the first (warm-up) call is slow
        calls.append(value)

    seconds, _ = time_kernel(slow, 0, warmup=1, repeat=3)
    assert 0.002 <= seconds < 0.2, f"{seconds} s: the median of the timed calls, the warm-up excluded"
    calls.clear()
    assert time_kernel(kernel, 1, warmup=0, repeat=1)[1] == 1 and len(calls) == 1
    with pytest.raises(ValueError):
        time_kernel(kernel, 1, repeat=0)


def test_vectorized_elementwise_kernels():
    x = RNG.standard_normal((17, 5)).astype(np.float32)
    y = RNG.standard_normal((17, 5)).astype(np.float32)
    relu = vectorized_relu(x)
    assert relu.dtype == np.float32 and np.array_equal(relu, np.where(x > 0, x, 0))
    buffer = np.full_like(x, np.nan)
    assert vectorized_relu(x, buffer) is buffer and np.array_equal(buffer, relu)
    assert np.array_equal(vectorized_relu(Tensor(x)), relu)  # a Tensor passed in is unwrapped
    results = vectorized_operations(x, y)
    np.testing.assert_array_equal(results["add"], x + y)
    np.testing.assert_array_equal(results["multiply"], x * y)
    np.testing.assert_allclose(results["squared_diff"], (x.astype(np.float64) - y) ** 2, rtol=1e-6)


@pytest.mark.parametrize("shape, workers", [((1,), 4), ((7,), 3), ((100, 33), 2), ((4, 5, 6), 5), ((1000,), 1)])
def test_parallel_relu_equals_serial(shape, workers):
    x = RNG.standard_normal(shape)
    out = parallel_relu(x, num_workers=workers)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.array_equal(out, np.maximum(x, 0))
    transposed = x.T  # not contiguous
    assert np.array_equal(parallel_relu(transposed, num_workers=workers), np.maximum(transposed, 0))


def test_parallel_batch_processing_keeps_order():
    matrices = [RNG.standard_normal((8, 8)) for _ in range(7)]
    serial = [m @ m.T for m in matrices]
    parallel = parallel_batch_processing(matrices, lambda m: m @ m.T, num_workers=3)
    assert len(parallel) == 7 and all(np.array_equal(p, s) for p, s in zip(parallel, serial))
    assert parallel_batch_processing(range(10), lambda v: v * v, num_workers=16) == [v * v for v in range(10)]
    assert parallel_batch_processing([], abs) == []


def _quantize(x):
    """Symmetric per-tensor int8 (the test's own, independent of Module 12)."""
    scale = np.abs(x).max() / 127.0
    return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale


@pytest.mark.parametrize("k", [1, 300, 1024, 1500])
def test_quantized_matmul_accumulates_exactly(k):
    a_q = RNG.integers(-128, 128, (9, k)).astype(np.int8)
    b_q = RNG.integers(-128, 128, (k, 11)).astype(np.int8)
    exact = a_q.astype(np.int64) @ b_q.astype(np.int64)
    assert np.array_equal(quantized_matmul(a_q, b_q, 1.0, 1.0), exact.astype(np.float32))
    worst_a, worst_b = np.full((2, k), -128, np.int8), np.full((k, 2), -128, np.int8)  # every product is 2**14
    assert np.all(quantized_matmul(worst_a, worst_b, 1.0, 1.0) == np.float32(k * 2**14))


def test_quantized_matmul_within_the_derived_error_bound():
    a = RNG.standard_normal((40, 200))
    b = RNG.standard_normal((200, 30)) * 0.1
    (a_q, s_a), (b_q, s_b) = _quantize(a), _quantize(b)
    approx = quantized_matmul(a_q, b_q, s_a, s_b)
    assert approx.dtype == np.float32
    b_hat = s_b * b_q.astype(np.float64)
    # a@b - â@b̂ = a@(b - b̂) + (a - â)@b̂ with |b - b̂| <= s_b/2 and |a - â| <= s_a/2
    bound = s_b / 2 * np.abs(a).sum(axis=1, keepdims=True) + s_a / 2 * np.abs(b_hat).sum(axis=0)
    error = np.abs(approx - a @ b)
    assert np.all(error <= bound * (1 + 1e-5) + 1e-6)
    assert error.max() > 0  # quantization does change the result
    per_column = np.abs(b).max(axis=0) / 127.0  # per-output-channel scales broadcast too
    b_q_cols = np.round(b / per_column).astype(np.int8)
    np.testing.assert_allclose(
        quantized_matmul(a_q, b_q_cols, s_a, per_column), (s_a * a_q) @ (b_q_cols * per_column), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(TypeError):
        quantized_matmul(a_q.astype(np.int32), b_q, s_a, s_b)


def test_quantized_relu_commutes_with_dequantization():
    q = RNG.integers(-128, 128, 100).astype(np.int8)
    scale = 0.05
    out = quantized_relu(q)
    assert out.dtype == np.int8
    assert np.array_equal(scale * out.astype(np.float64), np.maximum(scale * q.astype(np.float64), 0))
    zero_point = -20  # asymmetric: real value = scale * (q - zero_point)
    shifted = quantized_relu(q, zero_point)
    real = scale * (q.astype(np.float64) - zero_point)
    assert np.array_equal(scale * (shifted.astype(np.float64) - zero_point), np.maximum(real, 0))
    from_tensor = quantized_relu(Tensor(q), zero_point)  # a Tensor passed in is unwrapped
    assert from_tensor.dtype == np.int8 and np.array_equal(from_tensor, shifted)
