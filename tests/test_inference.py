"""The Inference Deployment stage beyond its checkpoints: the HTTP service under bad and concurrent
requests, a registry with damaged files, and the benchmark harness on a real model."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.benchmarking import TinyTorchPerf
from tinytorch.core.compression import quantize_model
from tinytorch.core.mlops import ModelRegistry, PredictionServer, RegistryError
from tinytorch.core.networks import MLP
from tinytorch.core.setup import set_seed
from tinytorch.core.tensor import Tensor


@pytest.fixture
def model():
    set_seed(0)
    return MLP([64, 16, 10]).eval()


@pytest.fixture
def server(model):
    running = PredictionServer(model, input_shape=(64,), name="digits", max_body_bytes=20_000, timeout=0.5).start()
    yield running
    running.stop()


def _connect(server):
    host, port = server.url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=10)


def _send(server, method, path, body=None, headers=None):
    connection = _connect(server)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _expected(model, x):
    with no_grad():
        return model(Tensor(np.asarray(x, dtype=np.float32))).data


def test_bad_requests_get_clear_errors_and_the_server_survives(server, model):
    cases = [
        (b"{not json", 400),
        (json.dumps({"samples": [[0.0] * 64]}).encode(), 400),  # no "inputs"
        (json.dumps({"inputs": [[0.0] * 63]}).encode(), 400),  # wrong size
        (json.dumps({"inputs": [[0.0] * 64, [0.0] * 3]}).encode(), 400),  # ragged
        (json.dumps({"inputs": "hello"}).encode(), 400),
        (json.dumps({"inputs": []}).encode(), 400),
        (json.dumps([1, 2, 3]).encode(), 400),  # not an object
        ("{\"inputs\": [[\u00e9]]}".encode("latin-1"), 400),  # not UTF-8
    ]
    for body, status in cases:
        code, answer = _send(server, "POST", "/predict", body, {"Content-Type": "application/json"})
        assert code == status, body
        assert "error" in answer and answer["error"]
    assert _send(server, "GET", "/nowhere")[0] == 404
    assert _send(server, "POST", "/health", b"{}")[0] == 404
    x = np.random.default_rng(1).random((2, 64)).tolist()
    code, answer = _send(server, "POST", "/predict", json.dumps({"inputs": x}).encode())
    assert code == 200 and answer["predictions"] == _expected(model, x).argmax(1).tolist()
    assert _send(server, "GET", "/metrics")[1]["errors"] == len(cases)


def test_request_size_is_bounded(server):
    big = json.dumps({"inputs": [[0.5] * 64] * 200}).encode()  # ~ 26 KB > 20 KB
    assert len(big) > 20_000
    code, answer = _send(server, "POST", "/predict", big)
    assert code == 413 and "exceeds" in answer["error"]
    connection = _connect(server)  # a body without a length is refused, not read until EOF
    try:
        connection.putrequest("POST", "/predict")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411
    finally:
        connection.close()
    assert _send(server, "GET", "/health")[0] == 200


def test_a_silent_connection_times_out_without_blocking_others(server):
    host, port = server.url.removeprefix("http://").split(":")
    silent = socket.create_connection((host, int(port)))
    try:
        assert _send(server, "GET", "/health")[0] == 200  # served while the silent one waits
        silent.settimeout(5)
        start = time.perf_counter()
        assert silent.recv(1024) == b""  # the server closed it after its 0.5 s timeout
        assert time.perf_counter() - start < 4
    finally:
        silent.close()


def test_concurrent_clients_get_their_own_answers(server, model):
    rng = np.random.default_rng(2)
    batches = [rng.random((3, 64)).astype(np.float32) for _ in range(24)]
    results, errors = [None] * len(batches), []

    def client(i):
        try:
            code, answer = _send(server, "POST", "/predict", json.dumps({"inputs": batches[i].tolist()}).encode())
            results[i] = (code, answer)
        except Exception as error:  # collected and reported below, never swallowed
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    for batch, (code, answer) in zip(batches, results):
        assert code == 200
        assert np.array_equal(np.array(answer["outputs"], dtype=np.float32), _expected(model, batch))
    assert server.monitor.summary("digits")["predictions"] == 72
    assert Tensor.grad_enabled  # the serialised no_grad() left the process-wide flag as it was


def test_stop_releases_the_port(model):
    server = PredictionServer(model, input_shape=(64,)).start()
    host, port = server.url.removeprefix("http://").split(":")
    assert _send(server, "GET", "/health")[0] == 200
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    server.stop()  # stopping twice is harmless


def test_serving_a_quantized_model_from_the_registry(tmp_path, model):
    registry = ModelRegistry(tmp_path)
    registry.save(model, "digits")
    loaded = registry.load("digits")
    x = np.random.default_rng(3).random((5, 64)).astype(np.float32)
    with PredictionServer(quantize_model(loaded), input_shape=(64,)).start() as server:
        code, answer = _send(server, "POST", "/predict", json.dumps({"inputs": x.tolist()}).encode())
    assert code == 200
    assert answer["outputs"] == quantize_model(model)(Tensor(x)).data.tolist()


@pytest.mark.parametrize("damage", ["truncate", "garbage_metadata", "missing_weights", "edited_checksum"])
def test_registry_reports_damaged_files_clearly(tmp_path, model, damage):
    registry = ModelRegistry(tmp_path)
    registry.save(model, "digits")
    folder = tmp_path / "digits" / "v1"
    if damage == "truncate":
        data = (folder / "weights.npz").read_bytes()
        (folder / "weights.npz").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_metadata":
        (folder / "metadata.json").write_text("{ this is not json")
    elif damage == "missing_weights":
        (folder / "weights.npz").unlink()
    else:
        record = json.loads((folder / "metadata.json").read_text())
        record["sha256"] = "0" * 64
        (folder / "metadata.json").write_text(json.dumps(record))
    with pytest.raises(RegistryError) as error:
        registry.load("digits")
    assert "digits" in str(error.value) or str(folder) in str(error.value)


def test_concurrent_saves_get_distinct_versions(tmp_path, model):
    registry = ModelRegistry(tmp_path)
    versions, lock = [], threading.Lock()

    def save():
        version = registry.save(model, "digits")
        with lock:
            versions.append(version)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9)) and registry.versions("digits") == list(range(1, 9))
    for version in versions:
        registry.load("digits", version)  # every version complete and verified


def test_benchmark_harness_runs_a_real_model(model):
    data = np.random.default_rng(4).random((50, 64)).astype(np.float32)
    perf = TinyTorchPerf(model, data)
    for name in ("single_stream", "server", "offline"):
        result = perf.run(name)
        assert len(result.latencies) > 0 and all(t > 0 for t in result.latencies)
        assert result.p50 <= result.p90 <= result.p99 and result.throughput > 0
