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
# # Module 14 · Benchmarking: numbers you can defend
#
# "My model runs in 2 ms" is not a result. Run it again and you get 2.3 ms; run it while a browser
# compiles JavaScript and you get 9 ms. A benchmark is a **distribution**, and a claim about it
# needs statistics: a centre, a spread, an interval, and -- when comparing two systems -- a test
# that says whether the difference is more than noise.
#
# The second lesson is that *how* a model is used changes what "fast" means. MLPerf, the industry's
# benchmark, defines scenarios; we build three of them:
#
# ```
#   single-stream   one query at a time, next one when the last is done   → latency p50/p90/p99
#       q──►[model]──► q──►[model]──► q──►[model]
#
#   server          queries arrive at random (Poisson) at a target rate  → latency incl. waiting
#       q  q q    q   q q q        (a query that arrives while the model is busy waits in a queue)
#       └──►[model][model][model][model]...
#
#   offline         all samples available at once, processed in big batches → throughput
#       [batch of 256]──►[model]──► [batch of 256]──►[model]
# ```
#
# | tool | what it gives |
# |---|---|
# | `StatisticalValidator` | mean, median, std, 95 % confidence interval, CV; Welch's t-test between two systems |
# | `BenchmarkScenarios` | the three scenarios with their settings |
# | `TinyTorchPerf` | runs a model under a scenario → `BenchmarkResult` (percentiles, throughput) |
# | `PerformanceReporter` | a Rich table and a JSON report |

# %%
#| default_exp core.benchmarking

# %%
#| export
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.setup import rng
from tinytorch.core.tensor import Tensor

# %%
from tinytorch.core.dataloader import load_digits
from tinytorch.core.networks import MLP
from tinytorch.core.setup import set_seed, time_it

# %% [markdown]
# ## 1. One number lies: look at the distribution
#
# We time the same small network on the same input 200 times. The figures are not equal: caches,
# the OS scheduler, other processes, CPU frequency changes all add noise, and the noise is
# **skewed**: a call can be much slower than usual, never much faster. So the mean is dragged up
# by outliers, the median is not, and the slow tail (p99: the latency 1 % of users see) is a
# property of the system worth reporting on its own.

# %%
set_seed(0)
X_digits, y_digits = load_digits()
model = MLP([64, 256, 256, 10])  # untrained: its speed does not depend on its weights
one_sample = Tensor(X_digits[:1])
times = []
with no_grad():
    for _ in range(200):
        start = time.perf_counter()
        model(one_sample)
        times.append(time.perf_counter() - start)
times_us = np.array(times) * 1e6
print(f"200 runs of one inference: min {times_us.min():.0f} µs, median {np.median(times_us):.0f} µs, "
      f"mean {times_us.mean():.0f} µs, p99 {np.percentile(times_us, 99):.0f} µs, max {times_us.max():.0f} µs")  # fmt: skip

# %% [markdown]
# ## 2. Summary statistics and a confidence interval
#
# For n measurements x₁..xₙ:
#
# - mean x̄ and median; **sample** standard deviation s = √(Σ(xᵢ - x̄)² / (n - 1)) -- dividing by
#   n - 1 (Bessel's correction, `ddof=1`) because x̄ was itself estimated from the same data;
# - the **coefficient of variation** CV = s / x̄: noise relative to the value (CV < 5 % is a calm
#   benchmark, > 20 % a noisy one);
# - a **95 % confidence interval** for the true mean: x̄ ± t · s / √n. With few measurements the
#   estimate s is itself uncertain, so the multiplier t comes from **Student's t distribution**
#   with n - 1 degrees of freedom, wider than the normal's 1.96 (t = 12.7 for n = 2, 2.26 for
#   n = 10, 1.98 for n = 100).
#
# No SciPy: we compute Student's t ourselves. Its CDF is a *regularized incomplete beta function*:
# for t ≥ 0 with ν degrees of freedom, the two-sided tail is
#
# `P(|T| > t) = I_x(ν/2, 1/2)` with `x = ν / (ν + t²)`
#
# and I_x(a, b) has a continued fraction that converges in a few dozen steps (Numerical Recipes
# §6.4, evaluated with Lentz's method). The critical value t for a confidence level is then found
# by **bisection**: the tail shrinks as t grows, so we halve an interval until it is 1e-12 wide.

# %%
#| export
def _beta_continued_fraction(a, b, x, max_iter=300, eps=1e-15):
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, max_iter + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # the even step
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # the odd step  # fmt: skip
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a, b, x):
    """I_x(a, b) = B(x; a, b) / B(a, b) for x in [0, 1]."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # the fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use I_x(a, b) = 1 - I_{1-x}(b, a)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t, df):
    """P(T <= t) for Student's t distribution with df (> 0, not necessarily integer) degrees of freedom."""
    ### HINT: tail = regularized_incomplete_beta(df / 2, 0.5, df / (df + t*t)) is P(|T| > |t|); the CDF is 1 - tail/2 for t >= 0, tail/2 below
    ### BEGIN SOLUTION
    tail = regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail / 2.0 if t >= 0 else tail / 2.0
    ### END SOLUTION


def student_t_ppf(q, df):
    """The t with P(T <= t) = q (0 < q < 1), by bisection on student_t_cdf."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    if q < 0.5:
        return -student_t_ppf(1.0 - q, df)  # the distribution is symmetric
    ### HINT: grow hi (start 1.0, double) until cdf(hi) >= q; then bisect [0, hi] until hi - lo < 1e-12
    ### BEGIN SOLUTION
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < q:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if student_t_cdf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2.0
    ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: Student's t against closed forms and printed tables
#
# Two special cases have closed forms: ν = 1 is the Cauchy distribution, CDF = 1/2 + atan(t)/π;
# ν = 2 has CDF = 1/2 + t / (2√(2 + t²)). The critical values are the classic table's.

# %%
for t in (-3.0, -0.5, 0.0, 0.7, 2.0, 25.0):
    assert abs(student_t_cdf(t, 1) - (0.5 + math.atan(t) / math.pi)) < 1e-12
    assert abs(student_t_cdf(t, 2) - (0.5 + t / (2 * math.sqrt(2 + t * t)))) < 1e-12
table = {1: 12.7062047, 2: 4.3026527, 5: 2.5705818, 10: 2.2281389, 30: 2.0422725, 1000: 1.9623391}
for df, critical in table.items():
    assert abs(student_t_ppf(0.975, df) - critical) < 1e-6, (df, student_t_ppf(0.975, df))
assert abs(student_t_ppf(0.995, 9) - 3.2498355) < 1e-6 and abs(student_t_ppf(0.025, 4) + 2.7764451) < 1e-6
print("t(0.975) for 1, 2, 5, 10, 30, 1000 degrees of freedom:", [round(student_t_ppf(0.975, df), 4) for df in table])

# %% [markdown]
# ## 3. The validator: describe one system, compare two
#
# **Comparing** two systems A and B (say, a float and a quantized model): is mean(A) ≠ mean(B), or
# is the gap noise? **Welch's t-test** does not assume equal variances (a faster system is often
# also less noisy):
#
# `t = (x̄_A - x̄_B) / √(s_A²/n_A + s_B²/n_B)`,
# `ν = (s_A²/n_A + s_B²/n_B)² / ((s_A²/n_A)²/(n_A - 1) + (s_B²/n_B)²/(n_B - 1))`
#
# and the two-sided p-value is `P(|T_ν| > |t|)`: the probability of a gap at least this large if
# the true means were equal. p < 0.05 = "significant at 95 %". A significant difference can still
# be tiny: always report the ratio of the means too.
#
# One caveat: the test assumes independent measurements. Consecutive timings are correlated
# (a busy period slows several in a row), so interleave the two systems' runs, as
# `bench.harness.compare` does.

# %%
#| export
@dataclass
class StatisticalValidation:
    """Summary of one set of measurements (all in the measurements' unit)."""

    n: int
    mean: float
    median: float
    std: float  # sample standard deviation (ddof=1)
    ci_low: float
    ci_high: float
    cv: float  # coefficient of variation, std / mean
    confidence: float = 0.95

    @property
    def confidence_interval(self):
        return (self.ci_low, self.ci_high)


@dataclass
class SignificanceTest:
    """Welch's t-test of system A against system B."""

    mean_a: float
    mean_b: float
    t_statistic: float
    df: float
    p_value: float
    significant: bool

    @property
    def ratio(self):
        """mean_a / mean_b: e.g. how many times slower A is than B."""
        return self.mean_a / self.mean_b


class StatisticalValidator:
    """Statistics of benchmark measurements at a confidence level (0.95 by default)."""

    def __init__(self, confidence=0.95):
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        self.confidence = confidence

    def analyze_measurements(self, values):
        """Mean, median, sample std, t confidence interval and CV of at least two measurements."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size < 2:
            raise ValueError(f"need at least 2 measurements for a spread, got {x.size}")
        ### HINT: std with ddof=1; half-width = student_t_ppf((1 + confidence) / 2, n - 1) * std / sqrt(n); cv = std / mean (infinite when the mean is 0)
        ### BEGIN SOLUTION
        n, mean, std = x.size, float(x.mean()), float(x.std(ddof=1))
        half_width = student_t_ppf((1.0 + self.confidence) / 2.0, n - 1) * std / math.sqrt(n)
        cv = std / mean if mean != 0 else math.inf
        return StatisticalValidation(n, mean, float(np.median(x)), std, mean - half_width, mean + half_width, cv, self.confidence)
        ### END SOLUTION

    def compare(self, a, b):
        """Welch's t-test: is the mean of measurements `a` different from that of `b`?"""
        a = np.asarray(a, dtype=np.float64).ravel()
        b = np.asarray(b, dtype=np.float64).ravel()
        if a.size < 2 or b.size < 2:
            raise ValueError("each system needs at least 2 measurements")
        ### HINT: va = var(a, ddof=1) / len(a) (same for b); t = (mean_a - mean_b) / sqrt(va + vb); df = (va+vb)² / (va²/(na-1) + vb²/(nb-1)); p = 2 * (1 - student_t_cdf(|t|, df))
        ### HINT: With no variance at all (va + vb == 0) a difference is certain: t = ±inf with its sign, df = inf, p = 0; equal means give t = 0, p = 1.
        ### BEGIN SOLUTION
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        difference = float(a.mean() - b.mean())
        if va + vb == 0:  # no noise at all: any difference is certain
            t, df, p = math.copysign(math.inf, difference) if difference else 0.0, math.inf, float(difference == 0)
        else:
            t = difference / math.sqrt(va + vb)
            df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
            p = regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))  # P(|T| > |t|), two-sided
        return SignificanceTest(float(a.mean()), float(b.mean()), float(t), float(df), float(p), bool(p < 1.0 - self.confidence))
        ### END SOLUTION


# %% [markdown]
# ### 🧪 Check: statistics by hand, and Welch's test with a known answer
#
# For [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, median 4.5, Σ(x - 5)² = 32, s = √(32/7), and with
# t(0.975, 7) = 2.3646243 the interval is 5 ± 2.3646243 · s / √8.
#
# For Welch's test we pick samples whose answer we can compute another way: two samples of size 2
# with equal variances give exactly ν = 2 degrees of freedom, where the tail has the closed form
# P(|T| > t) = 1 - t / √(2 + t²).

# %%
validator = StatisticalValidator()
stats = validator.analyze_measurements([2, 4, 4, 4, 5, 5, 7, 9])
s = math.sqrt(32 / 7)
assert stats.mean == 5 and stats.median == 4.5 and abs(stats.std - s) < 1e-12 and abs(stats.cv - s / 5) < 1e-12
assert abs(stats.ci_high - (5 + 2.3646243 * s / math.sqrt(8))) < 1e-6 and abs(stats.ci_low + stats.ci_high - 10) < 1e-12

test = validator.compare([1.0, 3.0], [4.0, 6.0])  # means 2 and 5, both variances 2
t_expected = -3 / math.sqrt(2 / 2 + 2 / 2)
assert abs(test.t_statistic - t_expected) < 1e-12 and abs(test.df - 2) < 1e-12
assert abs(test.p_value - (1 - abs(t_expected) / math.sqrt(2 + t_expected**2))) < 1e-12
print(f"Welch: t = {test.t_statistic:.4f}, ν = {test.df:g}, p = {test.p_value:.4f} (significant: {test.significant})")

# %% [markdown]
# Now on real timings: a small network against a larger one (clearly different), and the same
# network against itself (an "A/A test": the p-value should usually be large -- and 5 % of the
# time it will be below 0.05 by pure chance; that is what 95 % confidence means).
#
# Section 1 showed single calls with stalls a hundred times the typical latency. One such outlier
# inflates the standard deviation so much that no test can see anything. So each measurement
# below is the **median of 5 calls**: stalls are filtered, the measurements stay independent.

# %%
small, large = MLP([64, 32, 10]), MLP([64, 512, 512, 10])
batch = Tensor(X_digits[:32])


def timings(net, runs=30):
    """`runs` measurements, each the median of 5 calls: one stall of the OS cannot swamp a sample."""
    with no_grad():
        return [time_it(net, batch, repeat=5, warmup=0)[0] for _ in range(runs)]


timings(small, 5)  # warm up both before measuring
small_times, large_times, again_times = timings(small), timings(large), timings(small)
for name, values in (("small", small_times), ("large", large_times)):
    summary = validator.analyze_measurements(np.array(values) * 1e6)
    print(f"{name}: mean {summary.mean:.0f} µs, 95% CI [{summary.ci_low:.0f}, {summary.ci_high:.0f}], "
          f"median {summary.median:.0f}, CV {summary.cv:.0%}")  # fmt: skip
versus = validator.compare(large_times, small_times)
same = validator.compare(small_times, again_times)
print(f"large vs small: {versus.ratio:.1f}x slower, p = {versus.p_value:.1e}; small vs itself: p = {same.p_value:.2f}")

# %% [markdown]
# These figures are printed, never asserted: they depend on the machine and on everything else it
# runs. On a busy machine even the A/A test can come out "significant": the load changes between
# the first and the third series, so the two series of the same network are not samples of one
# distribution. The t-test is only as good as its independence assumption -- interleave the runs
# of the systems you compare, and repeat the whole comparison before you believe a small p-value.

# %% [markdown]
# ## 4. Scenarios and results
#
# A scenario fixes what is measured and how much. The settings are ours (MLPerf's are far larger):
#
# | scenario | batch | queries | extra |
# |---|---|---|---|
# | single_stream | 1 | 200 | -- |
# | server | 1 | 200 | target 100 queries/s, p99 latency bound 50 ms |
# | offline | 256 | 1024 samples | -- |
#
# A `BenchmarkResult` keeps every latency (seconds) and derives percentiles from them with
# `np.percentile` (linear interpolation between ranks).

# %%
#| export
@dataclass(frozen=True)
class BenchmarkScenario:
    """What to measure: `num_queries` queries of `batch_size` samples (offline: samples in total)."""

    name: str
    description: str
    batch_size: int
    num_queries: int
    target_qps: float | None = None  # server only: mean arrival rate
    latency_bound_s: float | None = None  # server only: the p99 latency a valid run must meet


class BenchmarkScenarios:
    """The three MLPerf-style scenarios, by name."""

    SCENARIOS = {
        "single_stream": BenchmarkScenario(
            "single_stream", "one query at a time; latency percentiles", batch_size=1, num_queries=200
        ),
        "server": BenchmarkScenario(
            "server", "Poisson arrivals at a target rate; latency including queueing",
            batch_size=1, num_queries=200, target_qps=100.0, latency_bound_s=0.050,
        ),  # fmt: skip
        "offline": BenchmarkScenario(
            "offline", "every sample available at once, big batches; throughput", batch_size=256, num_queries=1024
        ),
    }

    @classmethod
    def names(cls):
        return list(cls.SCENARIOS)

    @classmethod
    def get_scenario(cls, name):
        """The scenario called `name`; a clear ValueError listing the valid names otherwise."""
        if name not in cls.SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}: choose one of {', '.join(cls.SCENARIOS)}")
        return cls.SCENARIOS[name]


@dataclass
class BenchmarkResult:
    """The latencies (seconds) of one run and what follows from them."""

    scenario: str
    latencies: list
    num_samples: int
    total_time_s: float
    info: dict = field(default_factory=dict)

    def percentile(self, q):
        return float(np.percentile(self.latencies, q))

    @property
    def p50(self):
        return self.percentile(50)

    @property
    def p90(self):
        return self.percentile(90)

    @property
    def p99(self):
        return self.percentile(99)

    @property
    def mean_latency(self):
        return float(np.mean(self.latencies))

    @property
    def throughput(self):
        """Samples per second over the whole run."""
        return self.num_samples / self.total_time_s if self.total_time_s > 0 else math.inf

    def as_dict(self):
        return {"scenario": self.scenario, "num_samples": self.num_samples, "total_time_s": self.total_time_s,
                "mean_latency_s": self.mean_latency, "p50_s": self.p50, "p90_s": self.p90, "p99_s": self.p99,
                "throughput": self.throughput, **self.info}  # fmt: skip


# %% [markdown]
# ## 5. TinyTorchPerf: running the scenarios
#
# **single_stream**: time each query alone; the result's latencies are the service times.
#
# **server** is the interesting one. Queries arrive as a **Poisson process**: the gaps between
# arrivals are independent, exponentially distributed with mean 1 / QPS (that is what "users acting
# independently" looks like). The model serves one query at a time, so a query that arrives while
# it is busy **waits**:
#
# ```
#   arrivals   a₀      a₁  a₂          a₃
#   service    [──s₀──][──s₁──][──s₂──]   [──s₃──]
#   start_i = max(a_i, finish_{i-1});  finish_i = start_i + s_i;  latency_i = finish_i - a_i
# ```
#
# We do not sleep until each arrival (the run would take as long as the simulated traffic, and
# sleeping is imprecise). We run the model query by query to measure each real service time sᵢ,
# draw the arrival times from the seeded generator, and compute the queue exactly with the
# recurrence above. The load ρ = QPS × mean service time decides everything: as ρ → 1 the queue,
# and the p99 latency, explode.
#
# **offline**: every sample at once, in batches of `batch_size`: one matrix product per layer
# serves 256 samples, so throughput is far higher than one at a time.
#
# The clock is a parameter (default `time.perf_counter`): tests give `TinyTorchPerf` a fake clock
# that a fake model advances by a fixed amount, so every statistic is known exactly.

# %%
#| export
class TinyTorchPerf:
    """Run `model` (a callable on a Tensor batch) under the benchmark scenarios.

    data: an array (N, ...) of inputs; queries take samples from it in order, cycling.
    clock: a function returning seconds (time.perf_counter; a fake one makes runs deterministic).
    """

    def __init__(self, model, data, clock=time.perf_counter):
        self.model = model
        self.data = data.data if isinstance(data, Tensor) else np.asarray(data)
        self.clock = clock

    def _batch(self, start, size):
        index = np.arange(start, start + size) % len(self.data)
        return Tensor(self.data[index])

    def _service_times(self, num_queries, batch_size):
        """Latency of each query run alone, one after the other."""
        latencies = []
        with no_grad():
            for query in range(num_queries):
                batch = self._batch(query * batch_size, batch_size)
                start = self.clock()
                self.model(batch)
                latencies.append(self.clock() - start)
        return latencies

    def run_single_stream(self, num_queries=200):
        """One sample per query, sequentially: latency percentiles."""
        ### HINT: begin = clock(); latencies = self._service_times(num_queries, 1); total = clock() - begin
        ### BEGIN SOLUTION
        begin = self.clock()
        latencies = self._service_times(num_queries, 1)
        return BenchmarkResult("single_stream", latencies, num_queries, self.clock() - begin)
        ### END SOLUTION

    def run_server(self, target_qps=100.0, num_queries=200, latency_bound_s=0.050, seed=None):
        """Poisson arrivals at `target_qps` (from rng(), or a generator seeded by `seed`), one
        sample each, served in order: latency = waiting + service. Valid if p99 <= latency_bound_s."""
        generator = rng() if seed is None else np.random.default_rng(seed)
        ### HINT: arrivals = cumsum(generator.exponential(1 / target_qps, num_queries)); service = self._service_times(num_queries, 1); walk the queue with start = max(arrival, previous finish)
        ### BEGIN SOLUTION
        arrivals = np.cumsum(generator.exponential(1.0 / target_qps, num_queries))
        service = self._service_times(num_queries, 1)
        latencies, finish = [], 0.0
        for arrival, seconds in zip(arrivals, service):
            finish = max(arrival, finish) + seconds
            latencies.append(finish - arrival)
        result = BenchmarkResult("server", latencies, num_queries, finish)
        ### END SOLUTION
        result.info.update(target_qps=target_qps, latency_bound_s=latency_bound_s,
                           utilization=target_qps * float(np.mean(service)), valid=result.p99 <= latency_bound_s)  # fmt: skip
        return result

    def run_offline(self, num_samples=1024, batch_size=256):
        """Every sample at once, in batches of `batch_size`: throughput (latencies are per batch)."""
        ### HINT: num_queries = ceil(num_samples / batch_size) batches through self._service_times, timed as a whole
        ### BEGIN SOLUTION
        begin = self.clock()
        latencies = self._service_times(math.ceil(num_samples / batch_size), batch_size)
        samples = len(latencies) * batch_size
        return BenchmarkResult("offline", latencies, samples, self.clock() - begin, {"batch_size": batch_size})
        ### END SOLUTION

    def run(self, scenario):
        """Run a BenchmarkScenario (or its name)."""
        if isinstance(scenario, str):
            scenario = BenchmarkScenarios.get_scenario(scenario)
        if scenario.name == "single_stream":
            return self.run_single_stream(scenario.num_queries)
        if scenario.name == "server":
            return self.run_server(scenario.target_qps, scenario.num_queries, scenario.latency_bound_s)
        return self.run_offline(scenario.num_queries, scenario.batch_size)


# %% [markdown]
# ### 🧪 Check: exact statistics with a fake clock
#
# The fake model "takes" 2 ms + 1 ms per sample; it only moves the fake clock forward. Every
# single-stream query then lasts exactly 3 ms; an offline batch of 4 takes 6 ms; and in the server
# scenario with arrivals far apart there is no queue, so latency = service time.

# %%
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeModel:
    def __init__(self, clock, base=0.002, per_sample=0.001):
        self.clock, self.base, self.per_sample = clock, base, per_sample

    def __call__(self, x):
        self.clock.now += self.base + self.per_sample * x.shape[0]
        return x


clock = FakeClock()
fake = TinyTorchPerf(FakeModel(clock), X_digits[:10], clock=clock)
single = fake.run_single_stream(num_queries=50)
assert np.allclose(single.latencies, 0.003) and abs(single.p99 - 0.003) < 1e-12
assert abs(single.throughput - 1 / 0.003) < 1e-6
offline = fake.run_offline(num_samples=10, batch_size=4)  # 3 batches: 12 samples processed
assert offline.num_samples == 12 and abs(offline.total_time_s - 3 * 0.006) < 1e-12
quiet = fake.run_server(target_qps=0.1, num_queries=20, seed=0)  # gaps of 10 s on average (13 ms at least) >> 3 ms
assert np.allclose(quiet.latencies, 0.003) and quiet.info["valid"]
busy = fake.run_server(target_qps=1000.0, num_queries=200, seed=0)  # ρ = 3: the queue grows without end
assert busy.p99 > 0.1 and not busy.info["valid"] and busy.latencies[-1] > busy.latencies[0]
print(f"fake model at 1000 QPS (ρ = {busy.info['utilization']:.0f}): p50 {busy.p50 * 1e3:.0f} ms, p99 {busy.p99 * 1e3:.0f} ms")

# %% [markdown]
# ### On the real network: three scenarios, and latency against load

# %%
perf = TinyTorchPerf(model, X_digits)
results = {name: perf.run(name) for name in BenchmarkScenarios.names()}
for name, result in results.items():
    print(f"{name:14} p50 {result.p50 * 1e3:6.3f} ms  p99 {result.p99 * 1e3:6.3f} ms  {result.throughput:9.0f} samples/s")

service = results["single_stream"].mean_latency
for load in (0.2, 0.5, 0.8, 0.95):
    loaded = perf.run_server(target_qps=load / service, num_queries=400, seed=1)
    print(f"load ρ = {load:4.2f} ({load / service:7.0f} QPS): p50 {loaded.p50 * 1e3:6.3f} ms, p99 {loaded.p99 * 1e3:7.3f} ms")

# %% [markdown]
# At low load the server's latency is the service time; near ρ = 1 the p99 grows many times over
# while the median looks harmless. This is why production systems are sized for ~50-70 % load,
# and why a latency SLA is stated as a percentile, never as a mean.
#
# ## 6. Reporting: a table for people, JSON for machines

# %%
#| export
class PerformanceReporter:
    """Collects labelled BenchmarkResults; renders them as a Rich table or JSON."""

    def __init__(self):
        self.results = {}

    def add(self, label, result):
        self.results[label] = result
        return self

    def table(self, title="TinyTorch benchmark"):
        """A rich.table.Table, one row per result (times in ms)."""
        from rich.table import Table  # imported here: only reporting needs Rich

        grid = Table(title=title, title_justify="left")
        for column in ("run", "scenario", "samples", "p50 ms", "p90 ms", "p99 ms", "throughput /s", "valid"):
            grid.add_column(column, justify="left" if column in ("run", "scenario") else "right")
        for label, r in self.results.items():
            valid = {True: "[green]yes[/]", False: "[red]no[/]"}.get(r.info.get("valid"), "-")
            grid.add_row(label, r.scenario, str(r.num_samples), f"{r.p50 * 1e3:.3f}", f"{r.p90 * 1e3:.3f}",
                         f"{r.p99 * 1e3:.3f}", f"{r.throughput:,.0f}", valid)  # fmt: skip
        return grid

    def print(self, title="TinyTorch benchmark"):
        from rich.console import Console

        Console().print(self.table(title))

    def to_json(self, path=None):
        """The results as a JSON string (written to `path` too, when given)."""
        text = json.dumps({label: r.as_dict() for label, r in self.results.items()}, indent=2, default=float)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        return text


# %%
reporter = PerformanceReporter()
for name, result in results.items():
    reporter.add(f"MLP {name}", result)
reporter.add("fake, overloaded", busy)
reporter.print("MLP 64-256-256-10 on digits")
report = json.loads(reporter.to_json())
assert report["fake, overloaded"]["valid"] is False
assert abs(report["MLP single_stream"]["p99_s"] - results["single_stream"].p99) < 1e-12

# %% [markdown]
# ## 7. What does the harness itself cost?
#
# Every query pays for two clock reads, slicing a sample out of the data, wrapping it in a Tensor
# and a list append. Measured with a model that does nothing, that overhead is the floor under
# every latency we report: it must be small next to what we measure.

# %%
noop = TinyTorchPerf(lambda x: x, X_digits)
overhead = noop.run_single_stream(num_queries=2000)
print(f"harness overhead per query: p50 {overhead.p50 * 1e6:.2f} µs (inside the timed region), "
      f"{overhead.total_time_s / 2000 * 1e6:.1f} µs per query in total; "
      f"the MLP's single-stream p50 is {results['single_stream'].p50 * 1e6:.0f} µs")  # fmt: skip

# %% [markdown]
# ## What you built
#
# `StatisticalValidator` (with Student's t computed from scratch), `BenchmarkScenario(s)`,
# `BenchmarkResult`, `TinyTorchPerf` and `PerformanceReporter`: `tinytorch.core.benchmarking`.
# Run `tito module complete 14_benchmarking` to unlock checkpoint 13. Next: **Module 15 · MLOps**:
# versioning, monitoring and serving the models you can now measure.
