"""Checkpoint 13 · benchmarking: I can benchmark models with statistical rigour."""
import json
import math

import numpy as np
import pytest

from tinytorch.core.benchmarking import (
    BenchmarkScenarios,
    PerformanceReporter,
    StatisticalValidator,
    TinyTorchPerf,
    regularized_incomplete_beta,
    student_t_cdf,
    student_t_ppf,
)
from tinytorch.core.setup import set_seed


class FakeClock:
    """A clock that only moves when the fake model says so: every statistic is exact."""

    def __init__(self, start=0.0):
        self.now = start

    def __call__(self):
        return self.now


class ScriptedModel:
    """Each call takes the next service time of a script (cycling), plus `per_sample` per sample."""

    def __init__(self, clock, script, per_sample=0.0):
        self.clock, self.script, self.per_sample, self.calls = clock, list(script), per_sample, []

    def __call__(self, x):
        self.calls.append(x.shape[0])
        self.clock.now += self.script[(len(self.calls) - 1) % len(self.script)] + self.per_sample * x.shape[0]
        return x


def test_summary_statistics_equal_hand_computed_values():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]  # mean 4, deviations -3 -2 -1 0 6: sum of squares 50
    stats = StatisticalValidator().analyze_measurements(values)
    std = math.sqrt(50 / 4)
    assert stats.n == 5 and stats.mean == 4.0 and stats.median == 3.0
    assert abs(stats.std - std) < 1e-12 and abs(stats.cv - std / 4) < 1e-12
    half = 2.7764451052 * std / math.sqrt(5)  # t(0.975, 4) from the printed table
    assert abs(stats.ci_low - (4 - half)) < 1e-8 and abs(stats.ci_high - (4 + half)) < 1e-8
    wide = StatisticalValidator(confidence=0.99).analyze_measurements(values)
    assert abs(wide.ci_high - (4 + 4.6040948713 * std / math.sqrt(5))) < 1e-8  # t(0.995, 4)
    with pytest.raises(ValueError):
        StatisticalValidator().analyze_measurements([1.0])
    assert StatisticalValidator().analyze_measurements([1.0, 1.0]).cv == 0.0  # no spread at all
    assert StatisticalValidator().analyze_measurements([-1.0, 1.0]).cv == math.inf  # a mean of 0


def test_student_t_against_closed_forms_and_tables():
    for t in (-7.0, -1.2, 0.0, 0.3, 1.0, 4.5, 80.0):
        assert abs(student_t_cdf(t, 1) - (0.5 + math.atan(t) / math.pi)) < 1e-12  # Cauchy
        assert abs(student_t_cdf(t, 2) - (0.5 + t / (2 * math.sqrt(2 + t * t)))) < 1e-12
        u = t / math.sqrt(3)  # nu = 3: 1/2 + (u / (1 + u²) + atan(u)) / pi
        assert abs(student_t_cdf(t, 3) - (0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi)) < 1e-12
    table = {(0.975, 1): 12.7062047362, (0.975, 3): 3.1824463053, (0.975, 20): 2.0859634473,
             (0.95, 7): 1.8945786050, (0.995, 12): 3.0545395894, (0.9995, 2): 31.5990545764,
             (0.9995, 1): 636.6192487687}  # fmt: skip
    for (q, df), value in table.items():
        assert abs(student_t_ppf(q, df) - value) < 1e-7 * value, (q, df)
        assert abs(student_t_ppf(1 - q, df) + value) < 1e-7 * value
    # quantiles near the median lie below 1: the search starts from 0 (closed forms for 1 and 2 degrees)
    assert abs(student_t_ppf(0.6, 1) - math.tan(0.1 * math.pi)) < 1e-9
    assert abs(student_t_ppf(0.6, 2) - 0.2 / math.sqrt(2 * 0.6 * 0.4)) < 1e-9
    assert abs(regularized_incomplete_beta(2.0, 3.0, 0.4) - 0.5248) < 1e-12  # polynomial: 6x²-8x³+3x⁴
    with pytest.raises(ValueError):
        student_t_ppf(1.0, 5)


def _welch_p_by_integration(a, b):
    """The two-sided Welch p-value computed independently: integrate the t density numerically."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = abs(a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    x = np.linspace(0.0, t, 200_001)
    density = np.exp(log_norm - (df + 1) / 2 * np.log1p(x * x / df))
    h = x[1] - x[0]  # Simpson's rule on [0, t]: P(0 < T < t)
    central = h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
    return 1.0 - 2.0 * central, t, df


def test_welch_test_p_values_computed_independently():
    validator = StatisticalValidator()
    a = [10.2, 9.8, 10.5, 10.1, 9.9, 10.4, 10.0]
    b = [10.9, 11.4, 10.7, 11.8, 11.1, 10.6]
    result = validator.compare(a, b)
    expected_p, expected_t, expected_df = _welch_p_by_integration(a, b)
    assert abs(abs(result.t_statistic) - expected_t) < 1e-12 and result.t_statistic < 0
    assert abs(result.df - expected_df) < 1e-12
    assert abs(result.p_value - expected_p) < 1e-9 and result.significant
    assert abs(result.ratio - np.mean(a) / np.mean(b)) < 1e-12
    # two samples of 2 with equal variances: exactly 2 degrees of freedom, p = 1 - t / sqrt(2 + t²)
    pair = validator.compare([3.0, 5.0], [3.5, 5.5])
    t = 0.5 / math.sqrt(2 / 2 + 2 / 2)
    assert abs(pair.t_statistic + t) < 1e-12
    assert abs(pair.df - 2) < 1e-12 and abs(pair.p_value - (1 - t / math.sqrt(2 + t * t))) < 1e-12
    assert not pair.significant
    same = validator.compare([1.0, 1.0, 1.0], [1.0, 1.0])
    assert same.p_value == 1.0 and same.t_statistic == 0.0 and not same.significant
    slower = validator.compare([1.0, 1.0, 1.0], [2.0, 2.0])  # no noise: the difference is certain, with its sign
    assert slower.t_statistic == -math.inf and slower.p_value == 0.0 and slower.significant


def test_single_stream_percentiles_are_exact():
    script = [0.004, 0.001, 0.010, 0.002, 0.003, 0.050, 0.002]
    clock = FakeClock()
    perf = TinyTorchPerf(ScriptedModel(clock, script), np.zeros((5, 3), np.float32), clock=clock)
    result = perf.run_single_stream(num_queries=70)
    latencies = np.array(script * 10)
    np.testing.assert_allclose(result.latencies, latencies, rtol=0, atol=1e-15)
    for q, value in ((50, result.p50), (90, result.p90), (99, result.p99)):
        assert abs(value - np.percentile(latencies, q)) < 1e-15
    assert abs(result.throughput - 70 / latencies.sum()) < 1e-9
    assert abs(result.mean_latency - latencies.mean()) < 1e-15
    late = FakeClock(start=64.0)  # a clock that does not start at 0: the run's total is a difference of readings
    timed = TinyTorchPerf(ScriptedModel(late, script), np.zeros((5, 3), np.float32), clock=late).run_single_stream(7)
    assert abs(timed.total_time_s - sum(script)) < 1e-12


def test_server_queueing_follows_the_recurrence():
    clock = FakeClock()
    model = ScriptedModel(clock, [0.002, 0.006, 0.004])
    perf = TinyTorchPerf(model, np.zeros((4, 2), np.float32), clock=clock)
    result = perf.run_server(target_qps=250.0, num_queries=300, latency_bound_s=0.020, seed=7)
    arrivals = np.cumsum(np.random.default_rng(7).exponential(1 / 250.0, 300))
    service = np.array([0.002, 0.006, 0.004] * 100)
    expected, finish = [], 0.0
    for arrival, seconds in zip(arrivals, service):
        finish = max(arrival, finish) + seconds
        expected.append(finish - arrival)
    np.testing.assert_allclose(result.latencies, expected, rtol=0, atol=1e-12)
    assert min(result.latencies) >= 0.002 - 1e-15  # never faster than the service itself
    assert np.mean(result.latencies) > service.mean()  # load 250 × 4 ms = 1.0: queueing adds waiting
    assert abs(result.info["utilization"] - 1.0) < 1e-12
    assert result.info["valid"] == (result.p99 <= 0.020) and set(model.calls) == {1}  # one sample a query
    set_seed(3)
    model.calls.clear()
    first = perf.run_server(target_qps=100.0, num_queries=50).latencies
    set_seed(3)
    model.calls.clear()
    assert perf.run_server(target_qps=100.0, num_queries=50).latencies == first  # rng() follows set_seed


def test_offline_throughput_and_run_by_name():
    clock = FakeClock(start=64.0)
    model = ScriptedModel(clock, [0.010], per_sample=0.0005)
    perf = TinyTorchPerf(model, np.zeros((100, 8), np.float32), clock=clock)
    result = perf.run_offline(num_samples=1000, batch_size=128)  # 8 batches, the last one full too
    assert model.calls == [128] * 8 and result.num_samples == 1024 and result.scenario == "offline"
    batch_time = 0.010 + 0.0005 * 128
    assert abs(result.total_time_s - 8 * batch_time) < 1e-12
    assert abs(result.throughput - 1024 / (8 * batch_time)) < 1e-6
    model.calls.clear()
    by_name = perf.run("single_stream")
    assert len(by_name.latencies) == BenchmarkScenarios.get_scenario("single_stream").num_queries
    assert set(model.calls) == {1}
    assert BenchmarkScenarios.names() == ["single_stream", "server", "offline"]
    assert BenchmarkScenarios.get_scenario("offline").batch_size > 1
    with pytest.raises(ValueError, match="single_stream, server, offline"):
        perf.run("multi_stream")


def test_reporter_table_and_json_of_a_measured_run(tmp_path):
    clock = FakeClock()
    perf = TinyTorchPerf(ScriptedModel(clock, [0.001, 0.002, 0.003, 0.004]), np.zeros((4, 2), np.float32), clock=clock)
    result = perf.run_single_stream(num_queries=4)
    reporter = PerformanceReporter().add("tiny", result)
    data = json.loads(reporter.to_json(tmp_path / "report.json"))
    assert data == json.loads((tmp_path / "report.json").read_text())
    assert abs(data["tiny"]["p50_s"] - np.percentile([0.001, 0.002, 0.003, 0.004], 50)) < 1e-15
    assert abs(data["tiny"]["throughput"] - 400.0) < 1e-9
    table = reporter.table()
    assert table.row_count == 1 and len(table.columns) == 8
