"""Inference Deployment figures: kernels against the machine's peak, int8 and pruning on the digits
CNN, the benchmark harness's own overhead.

- kernels: GFLOP/s of each kernel and its ratio to np.matmul's GFLOP/s (the peak), with PyTorch's
  equivalent timed alongside where one exists;
- compression: the digits CNN trained with the framework (the recipe of lesson 12), its size and
  test accuracy as float32 and int8, and the pruning curve (sparsity -> accuracy, without and
  with 3 epochs of fine-tuning at 80 %);
- int8 Dense layer against PyTorch's dynamically quantized Linear;
- harness: what TinyTorchPerf itself costs per query (a model that does nothing).
"""
from __future__ import annotations

import copy

import numpy as np

from bench.harness import Measurement, compare, median_time, torch
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.benchmarking import TinyTorchPerf
from tinytorch.core.compression import (
    MaskedOptimizer,
    QuantizedDense,
    model_size_bytes,
    prune_model,
    quantize_model,
)
from tinytorch.core.dataloader import DataLoader, RandomCrop, digits_split
from tinytorch.core.kernels import (
    cache_friendly_matmul,
    matmul_baseline,
    parallel_relu,
    quantized_matmul,
    vectorized_relu,
)
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Flatten, Sequential
from tinytorch.core.optimizers import Adam, CosineWithWarmup
from tinytorch.core.regularization import Dropout
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Accuracy, Trainer

DATA = np.random.default_rng(0)


def _gflops(operations, seconds):
    return round(operations / seconds / 1e9, 3)


def kernel_cases():
    pt = torch()
    n = 512
    a = DATA.standard_normal((n, n)).astype(np.float32)
    b = DATA.standard_normal((n, n)).astype(np.float32)
    flops = 2 * n**3
    peak_s = median_time(lambda: np.matmul(a, b), repeat=20)
    peak = _gflops(flops, peak_s)
    cases = [Measurement(f"np.matmul {n}² (the peak)", peak_s, extra={"gflops": peak, "of_peak": 1.0})]

    def matmul_case(name, fn, operations, torch_fn=None, repeat=10):
        m = compare(name, fn, torch_fn, repeat=repeat, warmup=1)
        m.extra.update(gflops=_gflops(operations, m.tinytorch_s), of_peak=round(operations / m.tinytorch_s / 1e9 / peak, 4))
        return m

    pa, pb = (pt.from_numpy(a), pt.from_numpy(b)) if pt else (None, None)
    for block in (64, 128, 256):
        cases.append(matmul_case(f"cache_friendly_matmul {n}² block {block}", lambda t=block: cache_friendly_matmul(a, b, t),
                                 flops, (lambda: pa @ pb) if pt else None))  # fmt: skip
    small = a[:64, :64].copy()
    cases.append(matmul_case("matmul_baseline 64² (Python loops)", lambda: matmul_baseline(small, small), 2 * 64**3, repeat=3))

    x = DATA.standard_normal((2048, 2048)).astype(np.float32)  # 16 MB
    px = pt.from_numpy(x) if pt else None
    relu = compare("vectorized_relu 2048² (16 MB)", lambda: vectorized_relu(x), (lambda: pt.relu(px)) if pt else None)
    relu.extra.update(gflops=_gflops(x.size, relu.tinytorch_s), gb_per_s=round(2 * x.nbytes / relu.tinytorch_s / 1e9, 1),
                      of_peak=round(x.size / relu.tinytorch_s / 1e9 / peak, 4))  # fmt: skip
    huge = DATA.standard_normal((4096, 4096)).astype(np.float32)  # 64 MB
    serial_s = median_time(lambda: vectorized_relu(huge), repeat=5)
    threads = compare("parallel_relu 4096² (64 MB), 2 threads", lambda: parallel_relu(huge, 2), repeat=5)
    threads.extra.update(gflops=_gflops(huge.size, threads.tinytorch_s), serial_ms=round(serial_s * 1e3, 2),
                         speedup_vs_serial=round(serial_s / threads.tinytorch_s, 2))  # fmt: skip

    qa = DATA.integers(-128, 128, (n, n)).astype(np.int8)
    qb = DATA.integers(-128, 128, (n, n)).astype(np.int8)
    int32_s = median_time(lambda: qa.astype(np.int32) @ qb.astype(np.int32), repeat=3, warmup=1)
    quant = matmul_case(f"quantized_matmul {n}² int8 (exact via float32 BLAS)", lambda: quantized_matmul(qa, qb, 0.01, 0.02), flops)
    quant.extra.update(numpy_int32_gflops=_gflops(flops, int32_s))
    return cases + [relu, threads, quant]


def int8_dense_case():
    """Our int8 Dense (int32 accumulation in NumPy) against PyTorch's dynamic int8 Linear."""
    pt = torch()
    set_seed(0)
    dense = Dense(512, 512)
    x = DATA.standard_normal((64, 512)).astype(np.float32)
    quantized = QuantizedDense(dense)
    torch_fn = None
    if pt is not None:
        reference = pt.ao.nn.quantized.dynamic.Linear(512, 512)
        weight = pt.quantize_per_channel(pt.from_numpy(dense.weights.data.T.copy()),
                                         pt.from_numpy(quantized.weight_scale.ravel().astype(np.float64)),
                                         pt.zeros(512, dtype=pt.int64), axis=0, dtype=pt.qint8)  # fmt: skip
        reference.set_weight_bias(weight, pt.from_numpy(dense.bias.data))
        px = pt.from_numpy(x)
        torch_fn = lambda: reference(px)  # noqa: E731
        difference = np.abs(reference(px).numpy() - quantized(Tensor(x)).data).max()
    m = compare("int8 Dense 512->512, batch 64 (vs torch dynamic quantized Linear)", lambda: quantized(Tensor(x)), torch_fn)
    with no_grad():
        float_s = median_time(lambda: dense(Tensor(x)))
    m.extra.update(float32_ms=round(float_s * 1e3, 3))
    if pt is not None:
        m.extra.update(max_abs_difference_vs_torch=float(f"{difference:.2e}"))
    return m


def _make_cnn():
    return Sequential(Conv2D(1, 16, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(16, 32, 3, padding=1), ReLU(),
                      MaxPool2D(2), Flatten(), Dropout(0.25), Dense(128, 64), ReLU(), Dense(64, 10))  # fmt: skip


def _fit(model, X, y, epochs, lr, wrap=None):
    loader = DataLoader(X, y, batch_size=64, shuffle=True, transform=RandomCrop(8, padding=1))
    optimizer = Adam(model.parameters(), lr=lr)
    schedule = CosineWithWarmup(optimizer, warmup_steps=len(loader), total_steps=epochs * len(loader))
    Trainer(model, wrap(optimizer) if wrap else optimizer, CrossEntropyLoss(), scheduler=schedule).fit(
        loader, epochs=epochs, progress=False
    )


def compression_cases():
    X_train, y_train, X_test, y_test = digits_split(images=True)

    def accuracy(model):
        model.eval()
        with no_grad():
            return round(Accuracy()(model(Tensor(X_test)), y_test), 4)

    set_seed(0)
    cnn = _make_cnn()
    _fit(cnn, X_train, y_train, epochs=10, lr=0.01)
    int8 = quantize_model(cnn)
    with no_grad():
        float_s = median_time(lambda: cnn(Tensor(X_test)), repeat=5)
    int8_s = median_time(lambda: int8(Tensor(X_test)), repeat=5)
    float_bytes, int8_bytes = model_size_bytes(cnn), model_size_bytes(int8)
    quant = Measurement("digits CNN int8 vs float32 (359 test images)", int8_s, extra={
        "float32_ms": round(float_s * 1e3, 2), "float32_bytes": float_bytes, "int8_bytes": int8_bytes,
        "size_reduction": round(1 - int8_bytes / float_bytes, 4), "float32_accuracy": accuracy(cnn),
        "int8_accuracy": accuracy(int8)})  # fmt: skip

    curve = {}
    for sparsity in (0.5, 0.7, 0.8, 0.9, 0.95):
        pruned = copy.deepcopy(cnn)
        prune_model(pruned, sparsity)
        curve[f"{sparsity:.0%}"] = accuracy(pruned)
    set_seed(1)
    pruned = copy.deepcopy(cnn)
    masks = prune_model(pruned, 0.8)
    _fit(pruned, X_train, y_train, epochs=3, lr=0.003, wrap=lambda opt: MaskedOptimizer(opt, masks))
    pruning = Measurement("digits CNN magnitude pruning (global), accuracy by sparsity", None, extra={
        "dense": accuracy(cnn), **{f"pruned {k}": v for k, v in curve.items()},
        "80% + 3 epochs fine-tuning": accuracy(pruned)})  # fmt: skip
    return [quant, pruning]


def harness_case():
    data = DATA.random((100, 64)).astype(np.float32)
    noop = TinyTorchPerf(lambda x: x, data).run_single_stream(num_queries=5000)
    set_seed(0)
    mlp = Sequential(Dense(64, 256), ReLU(), Dense(256, 10))
    real = TinyTorchPerf(mlp, data).run_single_stream(num_queries=2000)
    return Measurement("TinyTorchPerf overhead per query (no-op model)", noop.total_time_s / 5000, extra={
        "timed_region_p50_us": round(noop.p50 * 1e6, 3), "per_query_total_us": round(noop.total_time_s / 5000 * 1e6, 2),
        "mlp_64_256_10_p50_us": round(real.p50 * 1e6, 1),
        "overhead_share_of_mlp": round(noop.total_time_s / 5000 / (real.total_time_s / 2000), 3)})  # fmt: skip


def run():
    return [*kernel_cases(), int8_dense_case(), *compression_cases(), harness_case()]
