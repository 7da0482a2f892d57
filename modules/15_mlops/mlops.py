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
# # Module 15 · MLOps: version, monitor and serve your models
#
# A model in a notebook helps nobody. In production it must be **stored** so that exactly this
# version can be loaded again, **served** to other programs, **watched** (is it still fast, still
# right?), and **replaced** when the world changes -- but only by a model that is really better.
#
# ```
#            data ──► validate ──► train ──► evaluate ──► register ──► deploy ──┐
#              ▲                                              │     (or roll back) │
#              │                                        ModelRegistry            ▼
#     RetrainingTrigger ◄── DriftDetector ◄── ModelMonitor ◄── PredictionServer (/predict)
#      "retrain now?"       "inputs changed?"   latency, accuracy      /health  /metrics
# ```
#
# | piece | job |
# |---|---|
# | `ModelRegistry` | versioned models on disk: weights (.npz), metadata (JSON), a SHA-256 checksum |
# | `PredictionServer` | an HTTP service (standard library only) answering `/predict`, `/health`, `/metrics` |
# | `ModelMonitor` | latency and accuracy over a sliding window, with threshold alerts |
# | `DriftDetector` | PSI and Kolmogorov-Smirnov: do today's inputs look like the training data? |
# | `RetrainingTrigger` | turns monitoring figures into a retrain decision, with reasons |
# | `MLOpsPipeline` | validate → train → evaluate → register → deploy, with rollback |

# %%
#| default_exp core.mlops

# %%
#| export
import hashlib
import json
import math
import os
import tempfile
import threading
import time
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DataLoader
from tinytorch.core.layers import Dense
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.networks import Flatten, Sequential
from tinytorch.core.optimizers import Adam
from tinytorch.core.regularization import Dropout
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Accuracy, Trainer

# %%
import shutil
import urllib.error
import urllib.request

from tinytorch.core.dataloader import digits_split
from tinytorch.core.networks import MLP
from tinytorch.core.setup import time_it

# %% [markdown]
# ## 1. A model you can write down: architecture as data
#
# `state_dict()` (Module 04) holds the numbers, not the structure: to load weights you need a
# model of the right shape first. A registry that can hand out a model by name must therefore also
# store the **architecture** -- as data, not as code (pickling Python objects would tie the file
# to the exact source code, and loading a pickle runs arbitrary code).
#
# `model_spec(model)` describes a network built from the course's standard layers as a small JSON
# document; `build_model(spec)` builds a fresh network from it. Sequential networks (an `MLP`
# included) nest; any layer outside the table is refused with a clear message.
#
# ```
#   MLP([64, 32, 10]) ─► {"type": "Sequential", "layers": [
#                           {"type": "Dense", "args": {"input_size": 64, "output_size": 32, "bias": true}},
#                           {"type": "ReLU", "args": {}},
#                           {"type": "Dense", "args": {"input_size": 32, "output_size": 10, "bias": true}}]}
# ```

# %%
#| export
def _pool_args(layer):
    return {"kernel_size": list(layer.kernel_size), "stride": layer.stride}


_LAYERS = {  # type name -> (class, the constructor arguments of an instance)
    "Dense": (Dense, lambda l: {"input_size": l.input_size, "output_size": l.output_size, "bias": l.bias is not None}),
    "Conv2D": (Conv2D, lambda l: {"in_channels": l.in_channels, "out_channels": l.out_channels,
                                  "kernel_size": list(l.kernel_size), "stride": l.stride, "padding": l.padding,
                                  "bias": l.bias is not None}),  # fmt: skip
    "MaxPool2D": (MaxPool2D, _pool_args),
    "AvgPool2D": (AvgPool2D, _pool_args),
    "Flatten": (Flatten, lambda l: {}),
    "Dropout": (Dropout, lambda l: {"p": l.p}),
    "ReLU": (ReLU, lambda l: {}),
    "Sigmoid": (Sigmoid, lambda l: {}),
    "Tanh": (Tanh, lambda l: {}),
    "GELU": (GELU, lambda l: {}),
    "Softmax": (Softmax, lambda l: {"dim": l.dim}),
    "LogSoftmax": (LogSoftmax, lambda l: {"dim": l.dim}),
}


def model_spec(model):
    """A JSON-able description of a Sequential network of standard layers."""
    if isinstance(model, Sequential):
        return {"type": "Sequential", "layers": [model_spec(layer) for layer in model.layers]}
    name = type(model).__name__
    if name not in _LAYERS or type(model) is not _LAYERS[name][0]:
        raise ValueError(f"cannot describe a {name} layer: use Sequential networks of {sorted(_LAYERS)}")
    return {"type": name, "args": _LAYERS[name][1](model)}


def build_model(spec):
    """A new network (fresh weights) with the architecture described by model_spec."""
    if spec["type"] == "Sequential":
        return Sequential([build_model(layer) for layer in spec["layers"]])
    if spec["type"] not in _LAYERS:
        raise ValueError(f"unknown layer type {spec['type']!r} in the model description")
    return _LAYERS[spec["type"]][0](**spec["args"])


# %%
set_seed(0)
mlp = MLP([64, 32, 10])
rebuilt = build_model(json.loads(json.dumps(model_spec(mlp))))
assert model_spec(rebuilt) == model_spec(mlp) and rebuilt.state_dict().keys() == mlp.state_dict().keys()
print(json.dumps(model_spec(mlp))[:120], "...")

# %% [markdown]
# ## 2. The registry: versions, metadata, checksums
#
# ```
#   registry/
#   └── digits/
#       ├── v1/  weights.npz   metadata.json  {"version": 1, "sha256": "9f2c…", "metrics": {...}, "spec": {...}}
#       ├── v2/  weights.npz   metadata.json
#       └── deployed.json  {"version": 2}
# ```
#
# - **Versions never change.** Saving again creates the next version; `os.mkdir` of the version
#   folder is atomic, so two processes saving at once cannot take the same number.
# - **Files are written atomically**: to a temporary name in the same folder, then renamed.
#   A crash leaves the old state, never half a file.
# - **A checksum** (SHA-256 of the weights file) is recorded in the metadata and verified on every
#   load: a truncated download, a disk error or a manual edit is detected *before* the model
#   serves a single wrong prediction, with an error that says which file is bad.

# %%
#| export
class RegistryError(Exception):
    """A missing, corrupted or inconsistent model in the registry."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path, write):
    """Call write(handle) on a temporary file next to `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class ModelRegistry:
    """Versioned models under `root`: root/<name>/v<N>/{weights.npz, metadata.json}."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def versions(self, name):
        """The completely saved version numbers of `name` (metadata written last), ascending."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()]
        return sorted(int(p.name[1:]) for p in found if (p / "metadata.json").exists())

    def latest_version(self, name):
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"no model called {name!r} in {self.root}")
        return versions[-1]

    def save(self, model, name, metrics=None, metadata=None):
        """Store model weights + architecture + metadata as the next version; returns the version."""
        spec = model_spec(model)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        ### HINT: claim version = latest + 1 with os.mkdir (retry on FileExistsError); write weights.npz atomically (np.savez of state_dict), then metadata.json with its sha256, spec, metrics
        ### BEGIN SOLUTION
        version = (self.versions(name) or [0])[-1] + 1
        while True:
            try:
                os.mkdir(self.root / name / f"v{version}")  # atomic: exactly one saver gets each number
                break
            except FileExistsError:
                version += 1
        folder = self.root / name / f"v{version}"
        weights = folder / "weights.npz"
        _write_atomic(weights, lambda handle: np.savez(handle, **model.state_dict()))
        record = {
            "name": name, "version": version, "saved_at": datetime.now(timezone.utc).isoformat(),
            "sha256": _sha256(weights), "spec": spec, "metrics": dict(metrics or {}), "metadata": dict(metadata or {}),
        }  # fmt: skip
        text = json.dumps(record, indent=2, default=float).encode()
        _write_atomic(folder / "metadata.json", lambda handle: handle.write(text))
        return version
        ### END SOLUTION

    def metadata(self, name, version=None):
        """The metadata dict of a version (the latest by default)."""
        version = self.latest_version(name) if version is None else version
        path = self.root / name / f"v{version}" / "metadata.json"
        if not path.exists():
            raise RegistryError(f"{name} v{version} does not exist (saved versions: {self.versions(name)})")
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RegistryError(f"{path} is corrupted: {error}") from None

    def load(self, name, version=None):
        """The model of a version (the latest by default), after verifying its checksum."""
        record = self.metadata(name, version)
        weights = self.root / name / f"v{record['version']}" / "weights.npz"
        ### HINT: compare _sha256(weights) with record["sha256"] (RegistryError naming the file if it differs), then build_model(record["spec"]) and load_state_dict from np.load
        ### BEGIN SOLUTION
        if not weights.exists():
            raise RegistryError(f"{weights} is missing")
        actual = _sha256(weights)
        if actual != record["sha256"]:
            raise RegistryError(
                f"checksum mismatch for {name} v{record['version']}: {weights} has sha256 {actual[:12]}…, "
                f"the registry recorded {record['sha256'][:12]}… (the file was modified or corrupted)"
            )
        model = build_model(record["spec"])
        with np.load(weights) as archive:
            model.load_state_dict({key: archive[key] for key in archive.files})
        return model.eval()
        ### END SOLUTION

    def promote(self, name, version):
        """Mark `version` as the deployed one (what a server should load)."""
        self.metadata(name, version)  # it must exist
        text = json.dumps({"version": version}).encode()
        _write_atomic(self.root / name / "deployed.json", lambda handle: handle.write(text))

    def deployed_version(self, name):
        """The deployed version of `name`, or None before the first deployment."""
        path = self.root / name / "deployed.json"
        return json.loads(path.read_text())["version"] if path.exists() else None


# %% [markdown]
# ### 🧪 Check: a trained model round-trips with identical outputs, and tampering is caught

# %%
X_train, y_train, X_test, y_test = digits_split()
set_seed(0)
model = MLP([64, 64, 10])
optimizer = Adam(model.parameters(), lr=0.01)
Trainer(model, optimizer, CrossEntropyLoss()).fit(DataLoader(X_train, y_train, batch_size=64, shuffle=True), epochs=8, progress=False)
with no_grad():
    reference = model(Tensor(X_test)).data
model_accuracy = float(np.mean(reference.argmax(1) == y_test))
print(f"digits MLP 64-64-10: test accuracy {model_accuracy:.2%}")

registry = ModelRegistry(tempfile.mkdtemp(prefix="registry-"))
v1 = registry.save(model, "digits", metrics={"accuracy": model_accuracy})
v2 = registry.save(model, "digits", metadata={"note": "same weights, second version"})
assert (v1, v2) == (1, 2) and registry.versions("digits") == [1, 2]
loaded = registry.load("digits", 1)
with no_grad():
    assert np.array_equal(loaded(Tensor(X_test)).data, reference)  # bit for bit
assert registry.metadata("digits", 1)["metrics"]["accuracy"] == model_accuracy

weights_file = registry.root / "digits" / "v2" / "weights.npz"
data = bytearray(weights_file.read_bytes())
data[-100] ^= 0xFF  # flip the bits of one byte
weights_file.write_bytes(bytes(data))
try:
    registry.load("digits", 2)
    raise AssertionError("tampering was not detected")
except RegistryError as error:
    print("caught:", error)

# %% [markdown]
# ## 3. Serving predictions over HTTP
#
# Other programs talk to the model over HTTP with JSON. Python's standard library has everything:
# `http.server.ThreadingHTTPServer` answers each connection in its own thread. Our service:
#
# | request | answer |
# |---|---|
# | `POST /predict` `{"inputs": [[64 numbers], ...]}` | `{"predictions": [7, ...], "outputs": [[10 scores], ...]}` |
# | `GET /health` | `{"status": "ok", "model": ..., "version": ...}` |
# | `GET /metrics` | requests, errors and latency percentiles (from a `ModelMonitor`) |
#
# Production habits, even in a small server:
#
# - **Bind to 127.0.0.1, port 0**: only this machine can connect, and the OS picks a free port
#   (`server.url` says which), so tests never collide.
# - **Bound every request**: a body must declare its `Content-Length` and stay under a limit
#   (413 otherwise); a connection that sends nothing times out. Bad JSON or wrong shapes get a 400
#   with a message, never a crash of the server.
# - **One inference at a time**: `no_grad()` switches a *process-wide* flag, and two threads
#   toggling it interleaved could leave gradients off (or on) for everyone. A lock serialises the
#   model call; the HTTP parsing still runs in parallel.
# - **Clean shutdown**: `stop()` ends the serving loop, closes the socket and joins the thread.
#
# JSON numbers are written with Python's shortest round-trip representation, so the scores a
# client reads back are exactly the float32 values the model computed.

# %%
#| export
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client thread never keeps the process alive
    request_queue_size = 64  # connections waiting to be accepted (the default, 5, drops bursts)


class PredictionServer:
    """Serve `model` over HTTP on host:port (port 0: the OS picks a free one).

    input_shape: the shape of one sample (e.g. (64,) or (1, 8, 8)); the inputs are reshaped to it.
    """

    def __init__(self, model, input_shape, host="127.0.0.1", port=0, name="model", version=None,
                 monitor=None, max_body_bytes=1_000_000, timeout=5.0):  # fmt: skip
        self.model, self.input_shape = model.eval() if hasattr(model, "eval") else model, tuple(input_shape)
        self.name, self.version, self.max_body_bytes = name, version, max_body_bytes
        self.monitor = monitor if monitor is not None else ModelMonitor()
        self.monitor.register_model(name)
        self._lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), self._handler_class(timeout))
        self._thread = None

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def predict(self, inputs):
        """(predictions, outputs) for a batch of samples, exactly what /predict answers."""
        ### HINT: x = np.asarray(inputs, float32), a ValueError unless x.shape[1:] is input_shape or (its size,); reshape to (-1, *input_shape); under self._lock and no_grad(): outputs = model(Tensor(x)).data; log the latency to the monitor
        ### BEGIN SOLUTION
        x = np.asarray(inputs, dtype=np.float32)
        flat = (math.prod(self.input_shape),)
        if x.ndim < 2 or len(x) == 0 or x.shape[1:] not in (self.input_shape, flat):
            raise ValueError(f"inputs must be a list of samples of shape {self.input_shape} (or {flat[0]} numbers), got {x.shape}")
        x = x.reshape(-1, *self.input_shape)
        with self._lock, no_grad():
            start = time.perf_counter()
            outputs = self.model(Tensor(x)).data
            seconds = time.perf_counter() - start
        for _ in range(len(x)):
            self.monitor.log_prediction(self.name, seconds / len(x))
        return outputs.argmax(axis=-1), outputs
        ### END SOLUTION

    def _handler_class(self, connection_timeout):
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = connection_timeout  # seconds a connection may stay silent before it is dropped

            def log_message(self, format, *args):  # keep the console quiet; /metrics has the figures
                pass

            def _discard(self, length):
                """Read and drop a refused body in small pieces (closing a socket with unread data
                resets the connection, and the client would never see our answer); beyond 16x
                the limit, just hang up."""
                self.close_connection = True
                if length > 16 * server.max_body_bytes:
                    return
                try:
                    while length > 0:
                        chunk = self.rfile.read(min(length, 1 << 16))
                        if not chunk:  # the client hung up
                            return
                        length -= len(chunk)
                except OSError:  # a timeout: the client stopped sending
                    return

            def _reply(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                if self.path == "/health":
                    self._reply(200, {"status": "ok", "model": server.name, "version": server.version})
                elif self.path == "/metrics":
                    self._reply(200, server.monitor.summary(server.name))
                else:
                    self._reply(404, {"error": f"unknown path {self.path}; try /predict, /health, /metrics"})

            def do_POST(self):
                if self.path != "/predict":
                    return self._reply(404, {"error": f"unknown path {self.path}; POST to /predict"})
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    return self._reply(411, {"error": "a Content-Length header is required"})
                if int(length) > server.max_body_bytes:
                    self._discard(int(length))
                    return self._reply(413, {"error": f"body of {length} bytes exceeds {server.max_body_bytes}"})
                try:
                    request = json.loads(self.rfile.read(int(length)))
                    predictions, outputs = server.predict(request["inputs"])
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
                    server.monitor.log_error(server.name)
                    return self._reply(400, {"error": f"bad request: {type(error).__name__}: {error}"})
                self._reply(200, {"predictions": predictions.tolist(), "outputs": outputs.tolist(),
                                  "model": server.name, "version": server.version})  # fmt: skip

        return Handler

    def start(self):
        """Serve in a background thread; returns self (so `with PredictionServer(...).start() as s:` works)."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, close the socket and wait for the thread."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# %% [markdown]
# ## 4. Monitoring: latency and accuracy windows, alerts
#
# The monitor keeps the last `window_size` predictions of each model (a `deque` with `maxlen`:
# old entries fall out on their own, memory stays bounded). From the window it reports latency
# percentiles and -- when the true label arrives later (a user corrects a prediction, a delivery
# confirms an address) -- the accuracy. Alerts fire when a figure crosses its threshold:
#
# ```
#   window  [ ... last 100 predictions ... ]
#   p95 latency  > latency_threshold_ms    → "latency"   alert
#   accuracy     < accuracy_threshold      → "accuracy"  alert (only once min_samples labels arrived)
# ```

# %%
#| export
class ModelMonitor:
    """Sliding-window latency/accuracy statistics per model, with threshold alerts."""

    def __init__(self):
        self.configure()
        self.models = {}

    def configure(self, window_size=100, latency_threshold_ms=100.0, accuracy_threshold=0.9, min_samples=20):
        """Set the window length and the alert thresholds; returns self."""
        self.window_size, self.min_samples = int(window_size), int(min_samples)
        self.latency_threshold_ms, self.accuracy_threshold = latency_threshold_ms, accuracy_threshold
        return self

    def register_model(self, name, baseline_accuracy=None):
        if name not in self.models:
            self.models[name] = {"latencies": deque(maxlen=self.window_size), "correct": deque(maxlen=self.window_size),
                                 "count": 0, "errors": 0, "baseline_accuracy": baseline_accuracy, "alerts": []}  # fmt: skip
        return self.models[name]

    def _model(self, name):
        if name not in self.models:
            raise KeyError(f"model {name!r} is not registered with the monitor (registered: {sorted(self.models)})")
        return self.models[name]

    def log_prediction(self, name, latency_s, correct=None):
        """Record one prediction: its latency and, if known, whether it was right."""
        ### HINT: append latency_s to the model's latencies deque, correct (if not None) to its correct deque, count += 1
        ### BEGIN SOLUTION
        record = self._model(name)
        record["latencies"].append(float(latency_s))
        if correct is not None:
            record["correct"].append(bool(correct))
        record["count"] += 1
        ### END SOLUTION

    def log_error(self, name):
        self._model(name)["errors"] += 1

    def latency_stats(self, name):
        """p50/p95/mean latency in ms over the window (None when nothing was logged)."""
        latencies = np.array(self._model(name)["latencies"]) * 1e3
        if latencies.size == 0:
            return None
        return {"p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95)),
                "mean_ms": float(latencies.mean()), "window": int(latencies.size)}  # fmt: skip

    def accuracy(self, name):
        """Accuracy over the window's labelled predictions (None before the first label)."""
        correct = self._model(name)["correct"]
        return float(np.mean(correct)) if correct else None

    def check_alerts(self, name):
        """The alerts raised by the current window (also appended to the model's alert history)."""
        ### HINT: a {"type": "latency", ...} alert if p95_ms > latency_threshold_ms; {"type": "accuracy", ...} if at least min_samples labels and accuracy < accuracy_threshold
        ### BEGIN SOLUTION
        record, alerts = self._model(name), []
        stats = self.latency_stats(name)
        if stats and stats["p95_ms"] > self.latency_threshold_ms:
            alerts.append({"type": "latency", "value": stats["p95_ms"], "threshold": self.latency_threshold_ms,
                           "message": f"p95 latency {stats['p95_ms']:.1f} ms > {self.latency_threshold_ms} ms"})  # fmt: skip
        accuracy = self.accuracy(name)
        if accuracy is not None and len(record["correct"]) >= self.min_samples and accuracy < self.accuracy_threshold:
            alerts.append({"type": "accuracy", "value": accuracy, "threshold": self.accuracy_threshold,
                           "message": f"accuracy {accuracy:.1%} < {self.accuracy_threshold:.1%}"})  # fmt: skip
        record["alerts"] += alerts
        return alerts
        ### END SOLUTION

    def summary(self, name):
        record = self._model(name)
        return {"model": name, "predictions": record["count"], "errors": record["errors"],
                "latency": self.latency_stats(name), "accuracy": self.accuracy(name),
                "alerts": list(record["alerts"])}  # fmt: skip


# %% [markdown]
# ### 🧪 Check: the service answers exactly what the model computes in-process

# %%
monitor = ModelMonitor().configure(window_size=50, latency_threshold_ms=50.0)


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


with PredictionServer(loaded, input_shape=(64,), name="digits", version=1, monitor=monitor).start() as server:
    print("serving on", server.url)
    assert get(server.url + "/health") == {"status": "ok", "model": "digits", "version": 1}
    answer = post(server.url + "/predict", {"inputs": X_test[:20].tolist()})
    assert answer["predictions"] == reference[:20].argmax(1).tolist()
    # Exact: the same 20 rows through the same model in-process (a BLAS kernel may round a
    # 20-row product differently from the full batch, so slicing the full-batch answer is not a fair reference).
    in_process = loaded(Tensor(X_test[:20])).data
    assert np.array_equal(np.array(answer["outputs"], dtype=np.float32), in_process)  # exact
    try:
        post(server.url + "/predict", {"inputs": [[1.0, 2.0, 3.0]]})
        raise AssertionError("a wrong shape was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400
        print("400:", json.loads(error.read())["error"])
    round_trip_s, _ = time_it(lambda: post(server.url + "/predict", {"inputs": X_test[:1].tolist()}), repeat=20)
    metrics = get(server.url + "/metrics")
print(f"one prediction over HTTP: {round_trip_s * 1e3:.2f} ms round trip; the model itself: "
      f"p50 {metrics['latency']['p50_ms'] * 1e3:.0f} µs per sample; {metrics['predictions']} predictions, {metrics['errors']} errors")  # fmt: skip
assert metrics["errors"] == 1

# %% [markdown]
# The round trip costs far more than the model: connection set-up, HTTP parsing, JSON encoding
# and the thread hand-offs dominate for a network this small. Real services batch requests and
# keep connections open for exactly this reason.
#
# ### 🧪 Check: alerts

# %%
watch = ModelMonitor().configure(window_size=40, latency_threshold_ms=10.0, accuracy_threshold=0.9, min_samples=20)
watch.register_model("m")
for i in range(40):
    watch.log_prediction("m", latency_s=0.002, correct=i % 10 != 0)  # 90 % right, 2 ms
assert watch.check_alerts("m") == []
for i in range(20):
    watch.log_prediction("m", latency_s=0.030, correct=i % 2 == 0)  # a slow, bad spell
alerts = watch.check_alerts("m")
assert [a["type"] for a in alerts] == ["latency", "accuracy"]
assert abs(watch.accuracy("m") - (18 + 10) / 40) < 1e-12  # the window holds the last 40 only
print([a["message"] for a in alerts])

# %% [markdown]
# ## 5. Drift: do today's inputs look like the training data?
#
# Labels often arrive late, or never; the inputs arrive with every request. If their
# distribution moves away from the training data (a new camera, a new user group), the model is
# working outside what it learned, and accuracy will follow. Two standard scores per feature:
#
# - **PSI** (population stability index): bin the feature by the reference's quantiles (10 bins of
#   ~10 % each), compare the fraction of new data in each bin:
#   `PSI = Σ (new_i - ref_i) · ln(new_i / ref_i)`. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate,
#   > 0.25 a real shift. (An empty bin would give ln 0: fractions are floored at 1e-4.)
# - **KS** (Kolmogorov-Smirnov) statistic: the largest vertical gap between the two empirical
#   CDFs, `max_x |F_ref(x) - F_new(x)|`, from 0 (identical) to 1 (disjoint). No bins to choose.
#
# ```
#   F(x) 1 ┤        ______----      ref
#          │     _/    __---        new (shifted right)
#          │   _/  __--   ↕ KS = the largest gap
#        0 ┼--/--------------------► x
# ```

# %%
#| export
class DriftDetector:
    """Per-feature PSI and KS statistics of new data against a reference sample."""

    def __init__(self, bins=10, psi_threshold=0.25, ks_threshold=0.2):
        self.bins, self.psi_threshold, self.ks_threshold = bins, psi_threshold, ks_threshold
        self.reference = None

    def fit_reference(self, X):
        """Remember the reference data (N, features): sorted columns and quantile bin edges."""
        X = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64).reshape(len(X), -1)
        self.reference = np.sort(X, axis=0)
        interior = np.linspace(0, 1, self.bins + 1)[1:-1]
        self.edges = [np.unique(np.quantile(column, interior)) for column in self.reference.T]
        self.reference_fractions = [self._fractions(column, edges) for column, edges in zip(self.reference.T, self.edges)]
        return self

    @staticmethod
    def _fractions(values, edges):
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return np.maximum(counts / len(values), 1e-4)

    def detect_drift(self, X):
        """{"psi": per-feature array, "ks": per-feature array, "psi_max", "ks_max", "drift": bool}."""
        if self.reference is None:
            raise RuntimeError("call fit_reference(X) before detect_drift")
        X = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64).reshape(len(X), -1)
        if X.shape[1] != self.reference.shape[1]:
            raise ValueError(f"expected {self.reference.shape[1]} features, got {X.shape[1]}")
        ### HINT: PSI per feature = sum((new - ref) * log(new / ref)) of the bin fractions; KS per feature: evaluate both empirical CDFs (searchsorted side="right" / n) at every value of both samples and take the largest |difference|
        ### BEGIN SOLUTION
        psi, ks = [], []
        for j, (edges, expected) in enumerate(zip(self.edges, self.reference_fractions)):
            actual = self._fractions(X[:, j], edges)
            psi.append(float(np.sum((actual - expected) * np.log(actual / expected))))
            reference, new = self.reference[:, j], np.sort(X[:, j])
            points = np.concatenate([reference, new])
            cdf_reference = np.searchsorted(reference, points, side="right") / len(reference)
            cdf_new = np.searchsorted(new, points, side="right") / len(new)
            ks.append(float(np.abs(cdf_reference - cdf_new).max()))
        psi, ks = np.array(psi), np.array(ks)
        ### END SOLUTION
        return {"psi": psi, "ks": ks, "psi_max": float(psi.max()), "ks_max": float(ks.max()),
                "drift": bool(psi.max() > self.psi_threshold or ks.max() > self.ks_threshold)}  # fmt: skip


# %% [markdown]
# ### 🧪 Check: known KS values, then drift on real digits
#
# Reference [1, 2, 3, 4] against [3, 4, 5, 6]: at x = 2 the reference CDF is 0.5 and the new one
# 0, at x = 4 they are 1 and 0.5: KS = 0.5. Against itself, both scores are exactly 0.
#
# On the digits: the test images against the training images (same distribution: small scores);
# the test images shifted one pixel right (a camera moved); and brighter by 30 % (clipped at 1).

# %%
toy = DriftDetector(bins=2).fit_reference(np.array([[1.0], [2.0], [3.0], [4.0]]))
assert toy.detect_drift(np.array([[3.0], [4.0], [5.0], [6.0]]))["ks_max"] == 0.5
same = toy.detect_drift(np.array([[1.0], [2.0], [3.0], [4.0]]))
assert same["ks_max"] == 0.0 and same["psi_max"] == 0.0

detector = DriftDetector().fit_reference(X_train)
images = X_test.reshape(-1, 8, 8)
shifted = np.roll(images, 1, axis=2).reshape(-1, 64)
brighter = np.clip(X_test * 1.3, 0, 1)
scores = {"test set": detector.detect_drift(X_test), "shifted 1 px": detector.detect_drift(shifted),
          "30 % brighter": detector.detect_drift(brighter)}  # fmt: skip
with no_grad():
    accuracies = {"test set": model_accuracy,
                  "shifted 1 px": float(np.mean(model(Tensor(shifted)).data.argmax(1) == y_test)),
                  "30 % brighter": float(np.mean(model(Tensor(brighter)).data.argmax(1) == y_test))}  # fmt: skip
for name, report in scores.items():
    print(f"{name:14} PSI max {report['psi_max']:.3f}  KS max {report['ks_max']:.3f}  drift {report['drift']!s:5}  "
          f"model accuracy {accuracies[name]:.1%}")  # fmt: skip
assert scores["shifted 1 px"]["psi_max"] > scores["test set"]["psi_max"]
assert scores["shifted 1 px"]["ks_max"] > scores["test set"]["ks_max"] and scores["shifted 1 px"]["drift"]
assert not scores["test set"]["drift"]

# %% [markdown]
# The shift drops the accuracy a lot, and the detector sees it without a single label. Brighter
# digits move the pixel distributions too -- whether accuracy suffers depends on the model;
# drift is a *warning* that the model is outside its experience, not proof that it fails.
#
# ## 6. When to retrain
#
# `RetrainingTrigger` turns monitoring into a decision. Any of: accuracy below a floor, drift
# above a limit, p95 latency above a budget, or enough new labelled data collected since the last
# training -- and it says **why**, because "the model retrained itself at 3 a.m." needs a reason
# in the log.

# %%
#| export
class RetrainingTrigger:
    """Decides from monitoring metrics whether to retrain; `reasons` says why."""

    def __init__(self):
        self.configure()
        self.reasons = []

    def configure(self, min_accuracy=0.9, max_drift=0.25, max_latency_ms=None, min_new_samples=None):
        """Thresholds; None switches a criterion off. Returns self."""
        self.min_accuracy, self.max_drift = min_accuracy, max_drift
        self.max_latency_ms, self.min_new_samples = max_latency_ms, min_new_samples
        return self

    def should_retrain(self, metrics):
        """metrics: any of "accuracy", "drift" (e.g. PSI), "latency_ms", "new_samples"."""
        ### HINT: for each configured criterion whose metric is present, append a reason when it is crossed (accuracy < min, drift > max, latency > max, new_samples >= min); return bool(self.reasons)
        ### BEGIN SOLUTION
        checks = [
            ("accuracy", self.min_accuracy, lambda value, limit: value < limit, "accuracy {:.3f} < {}"),
            ("drift", self.max_drift, lambda value, limit: value > limit, "drift {:.3f} > {}"),
            ("latency_ms", self.max_latency_ms, lambda value, limit: value > limit, "latency {:.1f} ms > {}"),
            ("new_samples", self.min_new_samples, lambda value, limit: value >= limit, "{} new samples >= {}"),
        ]
        self.reasons = [message.format(metrics[key], limit) for key, limit, crossed, message in checks
                        if limit is not None and metrics.get(key) is not None and crossed(metrics[key], limit)]  # fmt: skip
        return bool(self.reasons)
        ### END SOLUTION


# %%
trigger = RetrainingTrigger().configure(min_accuracy=0.9, max_drift=0.25)
assert not trigger.should_retrain({"accuracy": 0.95, "drift": scores["test set"]["psi_max"]})
assert trigger.should_retrain({"accuracy": accuracies["shifted 1 px"], "drift": scores["shifted 1 px"]["psi_max"]})
print("retrain because:", trigger.reasons)

# %% [markdown]
# ## 7. The pipeline: validate → train → evaluate → register → deploy, or roll back
#
# `run_pipeline(data)` runs the steps in order and records each in a report:
#
# 1. **validate**: shapes agree, every number finite, labels are integer classes in range, enough
#    samples. Bad data never reaches training.
# 2. **train** a fresh model (`model_factory()`) with `train_fn` (default: Adam + cross-entropy).
# 3. **evaluate** it on the validation data -- and evaluate the **currently deployed** model on
#    the *same* data, so the comparison is fair (its old score was measured on other data).
# 4. **register** the new model, whatever the outcome: a rejected model is still worth keeping
#    for analysis.
# 5. **deploy** only if it reaches `min_accuracy` and is not worse than the deployed model by
#    more than `tolerance`; otherwise **roll back**: the deployed version stays what it was.

# %%
#| export
def train_classifier(model, X, y, epochs=10, lr=0.01, batch_size=64):
    """Default training step of the pipeline: Adam on cross-entropy, shuffled mini-batches."""
    optimizer = Adam(model.parameters(), lr=lr)
    loader = DataLoader(X, y, batch_size=batch_size, shuffle=True)
    Trainer(model, optimizer, CrossEntropyLoss()).fit(loader, epochs=epochs, progress=False)
    return model


def _accuracy(model, X, y):
    model.eval()
    with no_grad():
        return Accuracy()(model(Tensor(X)), y)


class MLOpsPipeline:
    """validate → train → evaluate → register → deploy (or roll back), recorded in a report."""

    def __init__(self, registry):
        self.registry = registry
        self.configure(model_factory=None)

    def configure(self, model_factory, name="model", train_fn=train_classifier, min_accuracy=0.8,
                  tolerance=0.0, num_classes=None, min_samples=10, seed=0):  # fmt: skip
        """model_factory() builds an untrained model; train_fn(model, X, y) trains it. Returns self."""
        self.model_factory, self.name, self.train_fn = model_factory, name, train_fn
        self.min_accuracy, self.tolerance, self.num_classes = min_accuracy, tolerance, num_classes
        self.min_samples, self.seed = min_samples, seed
        return self

    def validate(self, data):
        """A list of problems with (X_train, y_train, X_val, y_val); empty when the data is usable."""
        problems = []
        for split, X, y in (("train", data[0], data[1]), ("validation", data[2], data[3])):
            X, y = np.asarray(X), np.asarray(y)
            if len(X) != len(y):
                problems.append(f"{split}: {len(X)} inputs but {len(y)} labels")
            if len(X) < self.min_samples:
                problems.append(f"{split}: only {len(X)} samples (at least {self.min_samples} needed)")
            if X.dtype.kind not in "fiu" or not np.all(np.isfinite(X)):
                problems.append(f"{split}: inputs must be finite numbers")
            if y.dtype.kind not in "iu":
                problems.append(f"{split}: labels must be integers, got {y.dtype}")
            elif y.size and (y.min() < 0 or (self.num_classes is not None and y.max() >= self.num_classes)):
                problems.append(f"{split}: labels outside [0, {self.num_classes})")
        if np.shape(data[0])[1:] != np.shape(data[2])[1:]:
            problems.append(f"train inputs {np.shape(data[0])[1:]} and validation inputs {np.shape(data[2])[1:]} differ in shape")
        return problems

    def run_pipeline(self, data):
        """Run every step on data = (X_train, y_train, X_val, y_val); returns the report dict."""
        if self.model_factory is None:
            raise RuntimeError("configure(model_factory=...) before run_pipeline")
        report = {"steps": [], "status": None}
        ### HINT: validate (status "invalid" and return on problems); set_seed(self.seed); train model_factory() with train_fn; accuracy on the validation split for the new and (if any) the deployed model; registry.save; promote it if accurate enough and not worse than the deployed one by more than tolerance, else status "rolled_back"
        ### HINT: "Accurate enough" is accuracy >= min_accuracy. Each step is recorded in report["steps"] as (name, result), in order: ("validate", "ok" or the problems), ("train", "ok"), ("evaluate", ...), ("register", version), ("deploy", status).
        ### BEGIN SOLUTION
        problems = self.validate(data)
        report["steps"].append(("validate", "ok" if not problems else problems))
        if problems:
            report["status"] = "invalid"
            return report
        X_train, y_train, X_val, y_val = data
        set_seed(self.seed)
        model = self.train_fn(self.model_factory(), X_train, y_train)
        report["steps"].append(("train", "ok"))
        accuracy = _accuracy(model, X_val, y_val)
        previous = self.registry.deployed_version(self.name)
        previous_accuracy = _accuracy(self.registry.load(self.name, previous), X_val, y_val) if previous else None
        report.update(accuracy=accuracy, previous_version=previous, previous_accuracy=previous_accuracy)
        report["steps"].append(("evaluate", {"new": accuracy, "deployed": previous_accuracy}))
        version = self.registry.save(model, self.name, metrics={"val_accuracy": accuracy})
        report["version"] = version
        report["steps"].append(("register", version))
        good_enough = accuracy >= self.min_accuracy
        not_worse = previous_accuracy is None or accuracy >= previous_accuracy - self.tolerance
        if good_enough and not_worse:
            self.registry.promote(self.name, version)
            report["status"], report["deployed_version"] = "deployed", version
        else:
            report["status"], report["deployed_version"] = "rolled_back", previous
        report["steps"].append(("deploy", report["status"]))
        return report
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: a good model is deployed, a worse one is rolled back, bad data is refused
#
# Run 1 trains on the real training split. Run 2 trains on the same images with 60 % of the
# labels scrambled (a broken labelling job): its model is worse, so version 1 stays deployed.
# Run 3 gets data with a NaN in it and stops at validation.

# %%
pipeline = MLOpsPipeline(ModelRegistry(tempfile.mkdtemp(prefix="pipeline-")))
pipeline.configure(model_factory=lambda: MLP([64, 32, 10]), name="digits", num_classes=10,
                   train_fn=lambda m, X, y: train_classifier(m, X, y, epochs=6))  # fmt: skip
first = pipeline.run_pipeline((X_train, y_train, X_test, y_test))
print("run 1:", first["status"], f"v{first['version']} accuracy {first['accuracy']:.2%}")
assert first["status"] == "deployed" and pipeline.registry.deployed_version("digits") == 1

scrambled = y_train.copy()
chosen = np.random.default_rng(0).random(len(y_train)) < 0.6
scrambled[chosen] = np.random.default_rng(1).integers(0, 10, chosen.sum())
second = pipeline.run_pipeline((X_train, scrambled, X_test, y_test))
print("run 2:", second["status"], f"v{second['version']} accuracy {second['accuracy']:.2%} "
      f"against deployed v{second['previous_version']} at {second['previous_accuracy']:.2%}")  # fmt: skip
assert second["status"] == "rolled_back" and pipeline.registry.deployed_version("digits") == 1
assert pipeline.registry.versions("digits") == [1, 2]  # the rejected model is kept for analysis

broken = X_train.copy()
broken[5, 3] = np.nan
third = pipeline.run_pipeline((broken, y_train, X_test, y_test))
print("run 3:", third["status"], third["steps"][0][1])
assert third["status"] == "invalid" and pipeline.registry.versions("digits") == [1, 2]

for folder in (registry.root, pipeline.registry.root):  # the lesson's registries were temporary
    shutil.rmtree(folder)

# %% [markdown]
# ## What you built
#
# `ModelRegistry` (versions, metadata, checksums, a deployed pointer), `PredictionServer`
# (`/predict`, `/health`, `/metrics` on the standard library), `ModelMonitor`, `DriftDetector`
# (PSI and KS), `RetrainingTrigger` and `MLOpsPipeline` with rollback: `tinytorch.core.mlops`.
# Run `tito module complete 15_mlops` to unlock checkpoint 14 and complete the Inference
# Deployment stage: *I can deploy optimized models for production inference*.
# Next: **Module 16 · TinyGPT**, a language model built from everything so far.
