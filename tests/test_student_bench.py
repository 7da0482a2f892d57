"""The benchmarks in the student edition: at every stage they run what is finished and say what waits."""
from __future__ import annotations

import sys


def test_benchmarks_of_unfinished_modules_are_skipped_with_a_line(student_foundation):
    result = student_foundation.run(sys.executable, "-m", "bench", "architecture", "training", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "⏭ bench/architecture skipped: waits for 01_setup … 07_attention to pass" in result.stdout
    assert "⏭ bench/training skipped: waits for" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_training_tinygpt_says_what_is_missing_and_checks_its_settings(student_foundation):
    bad = student_foundation.run(sys.executable, "-m", "bench.train_tinygpt", "--iters", "30")
    assert bad.returncode == 2 and "--warmup (100) must be fewer than --iters (30)" in bad.stderr, bad.stderr
    heads = student_foundation.run(sys.executable, "-m", "bench.train_tinygpt", "--n-embd", "130")
    assert heads.returncode == 2 and "--n-embd (130) must be a multiple of --n-head (4)" in heads.stderr
    fresh = student_foundation.run(sys.executable, "-m", "bench.train_tinygpt", "--iters", "30", "--warmup", "3")
    assert fresh.returncode == 1 and "Run `make` first" in fresh.stderr, fresh.stderr
    assert "Traceback" not in fresh.stderr + bad.stderr + heads.stderr
