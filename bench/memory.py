"""Peak memory of one call, measured in a fresh process, the same way for tinytorch and PyTorch.

tracemalloc sees NumPy's buffers but not PyTorch's, so both sides are measured by the operating
system instead: the growth of the resident set (RSS) during one call. The child process builds the
case, makes one warm-up call (lazy initialisation, optimizer state), hands freed memory back to
the system (`malloc_trim`), resets the kernel's high-water mark (`/proc/self/clear_refs`), then
makes the measured call: peak RSS minus RSS before it. Large buffers are mapped and unmapped one
by one (MALLOC_MMAP_THRESHOLD_), so the resident set follows the arrays alive at each moment.
Linux only: elsewhere the figure is None.

    python -m bench.memory bench.bench_scaling:attention_steps torch '[64]'    # one figure, in bytes
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE).group(1)) * 1024


def _release_freed_memory() -> None:
    gc.collect()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def measure(fn) -> int:
    """Peak growth of this process's resident set during one call of fn (after one warm-up call)."""
    fn()
    _release_freed_memory()
    CLEAR_REFS.write_text("5")  # the high-water mark VmHWM restarts from the current RSS
    before = _status_bytes("VmRSS")
    fn()
    return _status_bytes("VmHWM") - before


def peak_bytes(factory: str, side: str, *args) -> int | None:
    """Peak RSS growth of one call of `module:function(*args)[side]`, measured in a fresh process."""
    if not CLEAR_REFS.exists():
        return None
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run([sys.executable, "-m", "bench.memory", factory, side, json.dumps(args)],
                            env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {factory} {side} {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    module, function = argv[0].split(":")
    sides = getattr(importlib.import_module(module), function)(*json.loads(argv[2]))
    print(json.dumps(measure(sides[argv[1]])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
