"""2018 · MLPerf: measuring what a model costs (Reddi, Mattson, Janapa Reddi, Patterson, Kanter et al.)

Accuracy alone does not ship a model. MLPerf Inference made the cost measurable and comparable:
single-stream latency (one query at a time: the 50th and 90th percentile), offline throughput
(everything at once, in batches), always reported together with accuracy. Here your benchmark
harness (module 14) measures your own digits models before and after your compression tools
(module 12): int8 quantization, magnitude pruning, and both. Every number in the table is
measured on this machine now; int8 arithmetic emulated in NumPy is not faster than float32
BLAS, and the table will say so: that is the kind of truth a benchmark is for.
"""
import copy
import io
import sys

import numpy as np

import kit
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.benchmarking import TinyTorchPerf
from tinytorch.core.compression import model_size_bytes, prune_model, quantize_model, sparsity_of
from tinytorch.core.dataloader import digits_split
from tinytorch.core.layers import Dense
from tinytorch.core.mlops import train_classifier
from tinytorch.core.networks import Flatten, MLP, Sequential
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor

SPARSITY = 0.5
PRUNED = f"pruned {SPARSITY:.0%}"


def models():
    """The two digits models: (name, model, whether it reads 8×8 images). MLP: 64-256-128-10;
    CNN: 16 3×3 filters, 2×2 max pooling, one dense layer."""
    cnn = Sequential(Conv2D(1, 16, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(16 * 4 * 4, 10))
    return [("MLP", MLP([64, 256, 128, 10]), False), ("CNN", cnn, True)]


def variants(model):
    """The model as trained, int8, pruned to SPARSITY by magnitude, and pruned then int8."""
    pruned = copy.deepcopy(model)
    prune_model(pruned, SPARSITY)
    return {"float32": model, "int8": quantize_model(model), PRUNED: pruned.eval(), f"{PRUNED} + int8": quantize_model(pruned)}


def accuracy(model, X, y):
    with no_grad():
        return float(np.mean(model(Tensor(X)).data.argmax(1) == y))


def compressed_bytes(model):
    """Bytes of the model's state saved with np.savez_compressed: what pruning's zeros save on disk."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in model.state_dict().items()})
    return buffer.getbuffer().nbytes


def measure(model, X, y, queries, samples):
    perf = TinyTorchPerf(model, X)
    single, offline = perf.run_single_stream(num_queries=queries), perf.run_offline(num_samples=samples, batch_size=256)
    return {"accuracy": accuracy(model, X, y), "bytes": model_size_bytes(model), "compressed_bytes": compressed_bytes(model),
            "p50_ms": 1e3 * single.p50, "p90_ms": 1e3 * single.p90, "throughput": offline.throughput}  # fmt: skip


def row(model_name, variant, m):
    return [model_name, variant, kit.percent(m["accuracy"]), f"{m['bytes'] / 1024:.1f}",
            f"{m['compressed_bytes'] / 1024:.1f}", f"{m['p50_ms']:.3f}", f"{m['p90_ms']:.3f}", f"{m['throughput']:,.0f}"]  # fmt: skip


HEADER = ["model", "version", "accuracy", "KiB", "KiB gz", "p50 ms", "p90 ms", "samples/s"]


def draw(run, results):
    rows = [row(name, variant, m) for name, per_variant in results.items() for variant, m in per_variant.items()]
    run.say(kit.table("accuracy, size, single-stream latency and offline throughput (digits test split)", HEADER, rows))

    def picture(fig):
        axis = fig.add_subplot()
        for (name, per_variant), marker in zip(results.items(), "os"):
            for variant, m in per_variant.items():
                axis.scatter(m["p50_ms"], 100 * m["accuracy"], s=m["bytes"] / 400, marker=marker, alpha=0.6)
                axis.annotate(f"{name} {variant}", (m["p50_ms"], 100 * m["accuracy"]), fontsize=7)
        axis.set(xlabel="single-stream p50 latency (ms)", ylabel="test accuracy (%)",
                 title="accuracy vs latency (marker area = size in memory)")  # fmt: skip

    run.png(picture)


def body(run):
    X_train, y_train, X_test, y_test = digits_split()
    queries, samples, epochs = run.size(quick=40, full=1000), run.size(quick=1024, full=8192), run.size(quick=3, full=20)
    results = {}
    set_seed(2018)
    for name, model, images in models():
        shape = (-1, 1, 8, 8) if images else (-1, 64)
        train_classifier(model, X_train.reshape(shape), y_train, epochs=epochs, lr=3e-3, batch_size=32)
        model.eval()
        versions = variants(model)
        results[name] = {variant: measure(m, X_test.reshape(shape), y_test, queries, samples) for variant, m in versions.items()}
        results[name][PRUNED]["sparsity"] = sparsity_of(versions[PRUNED])
    draw(run, results)
    run.figures.update(results=results, queries=queries, offline_samples=samples, epochs=epochs)
    mlp = results[next(iter(results))]
    shrink = mlp["float32"]["bytes"] / mlp["int8"]["bytes"]
    int8_drop = mlp["float32"]["accuracy"] - mlp["int8"]["accuracy"]
    pruned_drop = mlp["float32"]["accuracy"] - mlp[PRUNED]["accuracy"]
    floor = run.size(quick=0.85, full=0.95)
    return [
        kit.check("smaller with int8 (MLP)", shrink, f"{shrink:.1f}×", "≥ 3.5×", shrink >= 3.5),
        kit.check("accuracy lost to int8 (MLP)", int8_drop, f"{100 * int8_drop:+.1f} points", "≤ 1 point", int8_drop <= 0.01),
        kit.check(f"accuracy lost to {PRUNED} (MLP)", pruned_drop, f"{100 * pruned_drop:+.1f} points",
                  "≤ 2 points", pruned_drop <= 0.02),  # fmt: skip
        kit.check("float32 accuracy (MLP)", mlp["float32"]["accuracy"], kit.percent(mlp["float32"]["accuracy"]),
                  f"≥ {100 * floor:g} %", mlp["float32"]["accuracy"] >= floor),  # fmt: skip
    ]


if __name__ == "__main__":
    sys.exit(kit.entry(__file__, __doc__, body))
