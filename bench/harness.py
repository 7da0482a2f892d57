"""The benchmark harness: time tinytorch against PyTorch CPU in the same process, as a ratio.

A bench file `bench/bench_<topic>.py` defines `run()` returning a list of `Measurement`s, usually
made with `compare(...)`. `python -m bench [topic ...]` (or `make bench`) runs them, prints a Rich
table and writes build/bench/<topic>.json. PyTorch is optional: without it the ratio is blank.
In quick mode (`python -m bench --quick`, what the test suite runs) every function is called once:
the figures mean nothing, but every line of every benchmark runs.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field

QUICK_VARIABLE = "TINYTORCH_BENCH_QUICK"  # set by `python -m bench --quick` for its worker processes
BLOCK = 5  # timed calls of one function in a row (median_clocks)
SETTLE_SECONDS = 0.15  # longer than OpenBLAS's worker threads spin after a call (median_clocks)


def quick() -> bool:
    """True in quick mode: one call per function, smallest sizes."""
    return os.environ.get(QUICK_VARIABLE) == "1"


@dataclass
class Measurement:
    name: str
    tinytorch_s: float | None  # median seconds per call (or bytes, when unit is "bytes")
    torch_s: float | None = None
    goal_ratio: float | None = None  # tinytorch may take at most this many times PyTorch's time (or memory)
    extra: dict = field(default_factory=dict)  # any other figures (accuracy, GFLOP/s, ...)
    unit: str = "seconds"  # or "bytes": a peak-memory figure, same columns

    @property
    def ratio(self) -> float | None:
        return self.tinytorch_s / self.torch_s if self.tinytorch_s and self.torch_s else None

    @property
    def meets_goal(self) -> bool | None:
        return None if self.ratio is None or self.goal_ratio is None else self.ratio <= self.goal_ratio

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "meets_goal": self.meets_goal}


def torch():
    """The torch module, or None when PyTorch is not installed (then only tinytorch is timed)."""
    try:
        import torch as module
    except ImportError:
        return None
    return module


def median_time(fn, repeat: int = 10, warmup: int = 2) -> float:
    return median_times([fn], repeat, warmup)[0]


def median_times(fns, repeat: int = 10, warmup: int = 2) -> list[float]:
    """Median seconds per call of each function, calling them in turn so that a change of machine
    load in the middle of a run hits all of them alike."""
    return [wall for wall, _ in median_clocks(fns, repeat, warmup)]


def median_clocks(fns, repeat: int = 10, warmup: int = 2) -> list[tuple[float, float]]:
    """(median wall-clock seconds, median CPU seconds of the whole process) per call of each function.

    The CPU time is what a call costs in core-seconds, without the waits of a busy machine: at one
    thread the steadier figure on a shared machine; at several, the work of every thread (tinytorch's
    workers, BLAS's and OpenMP's threads, counting their spinning while they wait for work), which the
    calling thread's own time would leave out.

    The functions take turns in blocks of BLOCK timed calls, so that a change of machine load hits
    them alike. Each block starts after a pause and an untimed call: with two threads, a library's
    worker threads keep spinning on the second core after its call returns (OpenBLAS for up to a
    tenth of a second, OpenMP less), and a call timed right after the *other* library's would be
    charged for them."""
    if quick():
        repeat, warmup = 1, 0
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [([], []) for _ in fns]
    for block in range(0, repeat, BLOCK):
        for fn, (wall, cpu) in zip(fns, samples):
            if not quick():
                time.sleep(SETTLE_SECONDS)
                fn()
            for _ in range(min(BLOCK, repeat - block)):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                cpu.append(time.process_time() - start_cpu)
                wall.append(time.perf_counter() - start)
    return [(statistics.median(wall), statistics.median(cpu)) for wall, cpu in samples]


def compare(name, tinytorch_fn, torch_fn=None, goal_ratio=None, repeat=10, warmup=2, **extra) -> Measurement:
    """Median time of each function, measured in turns in this process (median_clocks); the ratio of their CPU
    times (every thread of the process) goes into the extra figures as `cpu_ratio`."""
    if torch_fn is None:
        return Measurement(name, median_time(tinytorch_fn, repeat, warmup), None, goal_ratio, extra)
    (tt, tt_cpu), (pt, pt_cpu) = median_clocks([tinytorch_fn, torch_fn], repeat, warmup)
    return Measurement(name, tt, pt, goal_ratio, {**extra, "cpu_ratio": round(tt_cpu / pt_cpu, 3) if pt_cpu else None})
