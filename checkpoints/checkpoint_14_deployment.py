"""Checkpoint 14 · deployment: I can deploy, monitor and version models in production."""
import json
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import digits_split
from tinytorch.core import mlops
from tinytorch.core.layers import Dense, Module
from tinytorch.core.mlops import (
    DriftDetector,
    MLOpsPipeline,
    ModelMonitor,
    ModelRegistry,
    PredictionServer,
    RegistryError,
    RetrainingTrigger,
    build_model,
    model_spec,
    train_classifier,
)
from tinytorch.core.networks import MLP, Flatten, Sequential
from tinytorch.core.regularization import Dropout
from tinytorch.core.setup import set_seed
from tinytorch.core.spatial import Conv2D, MaxPool2D
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(14)


def _cnn():
    return Sequential(Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dropout(0.2), Dense(64, 10))


def _outputs(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def test_registry_round_trip_gives_identical_outputs(tmp_path):
    set_seed(0)
    registry = ModelRegistry(tmp_path / "registry")
    mlp, cnn = MLP([64, 16, 10]), _cnn()
    for p in mlp.parameters() + cnn.parameters():
        p.data[...] = RNG.standard_normal(p.shape)  # not the initial values: a real save
    assert registry.save(mlp, "digits", metrics={"accuracy": 0.5}) == 1
    assert registry.save(cnn, "vision", metadata={"owner": "me"}) == 1
    assert registry.save(mlp, "digits") == 2 and registry.versions("digits") == [1, 2]
    flat, images = RNG.random((7, 64)).astype(np.float32), RNG.random((7, 1, 8, 8)).astype(np.float32)
    loaded_mlp, loaded_cnn = registry.load("digits", 1), registry.load("vision")
    assert np.array_equal(_outputs(loaded_mlp, flat), _outputs(mlp, flat))
    assert np.array_equal(_outputs(loaded_cnn, images), _outputs(cnn, images))
    assert registry.metadata("digits", 1)["metrics"] == {"accuracy": 0.5}
    assert registry.metadata("vision")["metadata"] == {"owner": "me"} and registry.latest_version("digits") == 2
    assert model_spec(build_model(model_spec(cnn))) == model_spec(cnn)

    class Custom(Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="Custom"):  # a layer the registry cannot describe is refused
        registry.save(Sequential(Dense(2, 2), Custom()), "odd")
    assert registry.versions("digits") == [1, 2]
    (tmp_path / "registry" / "digits" / "v3").mkdir()  # claimed by another saver, still writing: not a version yet
    assert registry.save(mlp, "digits") == 4 and registry.versions("digits") == [1, 2, 4]


def test_checksum_detects_tampering(tmp_path):
    registry = ModelRegistry(tmp_path)
    model = MLP([8, 4, 2])
    registry.save(model, "m")
    weights = tmp_path / "m" / "v1" / "weights.npz"
    with np.load(weights) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["layers.0.weights"][0, 0] += 1.0  # a well-formed file with one changed weight
    np.savez(weights, **arrays)
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.load("m", 1)
    with pytest.raises(RegistryError):
        registry.load("m", 7)
    with pytest.raises(RegistryError):
        registry.load("unknown")
    registry.save(model, "m")
    (tmp_path / "m" / "v2" / "weights.npz").unlink()
    with pytest.raises(RegistryError, match="missing"):
        registry.load("m", 2)


def test_drift_scores_grow_with_the_shift():
    reference = RNG.standard_normal((2000, 3))
    detector = DriftDetector().fit_reference(reference)
    same = detector.detect_drift(reference)
    assert same["psi_max"] == 0.0 and same["ks_max"] == 0.0 and not same["drift"]
    fresh = detector.detect_drift(RNG.standard_normal((2000, 3)))
    small = detector.detect_drift(RNG.standard_normal((2000, 3)) + [0.5, 0, 0])
    large = detector.detect_drift(RNG.standard_normal((2000, 3)) + [2.0, 0, 0])
    assert fresh["psi"][0] < small["psi"][0] < large["psi"][0]
    assert fresh["ks"][0] < small["ks"][0] < large["ks"][0]
    assert not fresh["drift"] and large["drift"]
    assert abs(large["ks"][0] - 0.68) < 0.05  # the normal CDFs N(0,1) and N(2,1) differ by at most 0.683
    toy = DriftDetector(bins=2).fit_reference(np.array([[1.0], [2.0], [3.0], [4.0]]))  # one edge, at 2.5
    shifted = toy.detect_drift(np.array([[3.0], [4.0], [5.0], [6.0]]))
    assert shifted["ks_max"] == 0.5
    psi = (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (1.0 - 0.5) * np.log(1.0 / 0.5)  # bins [0 (floored), 1] vs [.5, .5]
    assert abs(shifted["psi_max"] - psi) < 1e-12
    with pytest.raises(ValueError):
        detector.detect_drift(np.zeros((5, 4)))


def test_retraining_trigger_thresholds():
    trigger = RetrainingTrigger().configure(min_accuracy=0.9, max_drift=0.25, max_latency_ms=20.0, min_new_samples=1000)
    assert not trigger.should_retrain({"accuracy": 0.9, "drift": 0.25, "latency_ms": 20.0, "new_samples": 999})
    assert trigger.reasons == []
    assert trigger.should_retrain({"accuracy": 0.8999})
    assert trigger.reasons == ["accuracy 0.900 < 0.9"]  # the measured value, then the limit
    assert trigger.should_retrain({"drift": 0.3, "latency_ms": 25.0})
    assert len(trigger.reasons) == 2
    assert trigger.should_retrain({"new_samples": 1000})
    assert not trigger.should_retrain({})  # nothing measured, nothing to act on
    assert not RetrainingTrigger().configure(min_accuracy=None, max_drift=None).should_retrain({"accuracy": 0.1, "drift": 9})


def test_monitor_windows_and_alerts():
    monitor = ModelMonitor().configure(window_size=10, latency_threshold_ms=5.0, accuracy_threshold=0.8, min_samples=5)
    monitor.register_model("m")
    latencies = [0.001 * (i + 1) for i in range(15)]  # 1..15 ms; the window keeps 6..15
    for i, latency in enumerate(latencies):
        monitor.log_prediction("m", latency, correct=i < 12)
    stats = monitor.latency_stats("m")
    window = np.array(latencies[5:]) * 1e3
    assert stats["window"] == 10 and abs(stats["p95_ms"] - np.percentile(window, 95)) < 1e-9
    assert abs(stats["p50_ms"] - np.percentile(window, 50)) < 1e-9
    assert monitor.accuracy("m") == 0.7  # 7 of the last 10 were right
    assert sorted(a["type"] for a in monitor.check_alerts("m")) == ["accuracy", "latency"]
    assert monitor.summary("m")["predictions"] == 15 and len(monitor.summary("m")["alerts"]) == 2  # the history
    monitor.register_model("quiet")
    assert monitor.check_alerts("quiet") == []  # nothing logged yet: nothing to alert on
    for correct in [True, True, True, False, False]:  # exactly min_samples labels, accuracy 0.6
        monitor.log_prediction("quiet", 0.005, correct=correct)  # p95 exactly at the 5 ms threshold
    assert [a["type"] for a in monitor.check_alerts("quiet")] == ["accuracy"]  # latency alerts only above
    monitor.register_model("fine")
    for correct in [True, True, True, True, False]:  # accuracy exactly at the 0.8 threshold: no alert
        monitor.log_prediction("fine", 0.001, correct=correct)
    assert monitor.check_alerts("fine") == []
    with pytest.raises(KeyError):
        monitor.log_prediction("other", 0.1)


def _quick_model(epochs):
    def factory():
        return MLP([64, 10])

    def train(model, X, y):
        return train_classifier(model, X, y, epochs=epochs)

    return factory, train


def test_pipeline_deploys_and_rolls_back(tmp_path):
    X_train, y_train, X_val, y_val = digits_split()
    pipeline = MLOpsPipeline(ModelRegistry(tmp_path))
    factory, train = _quick_model(epochs=3)
    pipeline.configure(model_factory=factory, train_fn=train, name="digits", num_classes=10, min_accuracy=0.85)
    first = pipeline.run_pipeline((X_train, y_train, X_val, y_val))
    assert first["status"] == "deployed" and first["accuracy"] > 0.85
    assert pipeline.registry.deployed_version("digits") == 1
    assert [step for step, _ in first["steps"]] == ["validate", "train", "evaluate", "register", "deploy"]
    assert first["steps"][0] == ("validate", "ok") and first["steps"][1] == ("train", "ok")

    exactly = MLOpsPipeline(ModelRegistry(tmp_path / "again"))  # the same run, the bar set at its accuracy
    exactly.configure(model_factory=factory, train_fn=train, name="digits", num_classes=10,
                      min_accuracy=first["accuracy"])  # fmt: skip
    assert exactly.run_pipeline((X_train, y_train, X_val, y_val))["status"] == "deployed"  # "at least"
    again = exactly.run_pipeline((X_train, y_train, X_val, y_val))  # the same accuracy as the deployed model's
    assert again["accuracy"] == again["previous_accuracy"] and again["status"] == "deployed"  # not worse
    exactly.configure(model_factory=factory, train_fn=train, name="digits", num_classes=10,
                      min_accuracy=first["accuracy"], tolerance=0.01)  # fmt: skip
    assert exactly.run_pipeline((X_train, y_train, X_val, y_val))["status"] == "deployed"  # within the tolerance

    def untrained(model, X, y):  # a broken training job: the model learns nothing
        for p in model.parameters():
            p.data[...] = 0.0
        return model

    pipeline.configure(model_factory=factory, train_fn=untrained, name="digits", num_classes=10, min_accuracy=0.0)
    second = pipeline.run_pipeline((X_train, y_train, X_val, y_val))
    assert second["status"] == "rolled_back" and second["version"] == 2
    assert second["previous_accuracy"] == first["accuracy"] and second["accuracy"] < first["accuracy"]
    assert pipeline.registry.deployed_version("digits") == 1

    bad_labels = y_train.copy()
    bad_labels[0] = 12
    pipeline.configure(model_factory=factory, train_fn=train, name="digits", num_classes=10)
    third = pipeline.run_pipeline((X_train, bad_labels, X_val, y_val))
    assert third["status"] == "invalid" and pipeline.registry.versions("digits") == [1, 2]


def _request(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
        return json.loads(response.read())


def test_http_service_answers_like_the_model_in_process(monkeypatch):
    set_seed(3)
    model = _cnn()
    _, _, X_test, _ = digits_split(images=True)
    expected = _outputs(model, X_test[:25])
    server = PredictionServer(model, input_shape=(1, 8, 8), name="cnn", version=4).start()
    try:
        assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0")
        assert _request(server.url + "/health") == {"status": "ok", "model": "cnn", "version": 4}
        answer = _request(server.url + "/predict", {"inputs": X_test[:25].tolist()})
        assert answer["predictions"] == expected.argmax(1).tolist()
        assert np.array_equal(np.array(answer["outputs"], dtype=np.float32), expected)
        flat = _request(server.url + "/predict", {"inputs": X_test[:3].reshape(3, 64).tolist()})
        assert flat["predictions"] == expected[:3].argmax(1).tolist()
        metrics = _request(server.url + "/metrics")
        assert metrics["predictions"] == 28 and metrics["errors"] == 0 and metrics["latency"]["p50_ms"] > 0
        ticks = iter([10.0, 10.3])  # a clock on which the next batch takes 0.3 s
        monkeypatch.setattr(mlops, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
        server.predict(np.tile(X_test, (2, 1, 1, 1))[:300])  # 300 samples: each logs a 300th of the batch's time
        monkeypatch.undo()
        latency = _request(server.url + "/metrics")["latency"]  # the window: the batch's last 100 samples
        assert abs(latency["p50_ms"] - 1.0) < 1e-9 and abs(latency["p95_ms"] - 1.0) < 1e-9
        predictions, outputs = server.predict(X_test[4:5])  # one sample is a batch too
        assert predictions.tolist() == [expected[4].argmax()]
        np.testing.assert_allclose(outputs, expected[4:5], rtol=1e-5, atol=1e-6)  # BLAS may round a lone row apart
        with pytest.raises(ValueError):
            server.predict(np.zeros((0, 1, 8, 8)))  # an empty batch is refused
    finally:
        server.stop()
