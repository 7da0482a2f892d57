"""bench/reuse_tinygpt.py in its quick mode: lesson 16's claim that TinyGPT is mostly reuse, measured."""
import json
import os
import subprocess
import sys

from bench.reuse_tinygpt import main, share

from .conftest import ROOT


def test_a_training_step_runs_mostly_code_from_earlier_modules(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "reuse_tinygpt.json").read_text())
    rows = report["rows"]
    assert report["quick"] is True
    assert report["new_classes"] == ["Embedding", "PositionalEmbedding", "TinyGPT", "TransformerBlock"]
    assert rows["backward rules used"][1] == 0 and rows["backward rules used"][0] >= 10
    assert share(*rows["function calls in a training step"]) > 0.95
    assert share(*rows["learned numbers"]) > 0.5
    assert report["new_functions"] and all(name.startswith("tinygpt.") for name in report["new_functions"])
    assert rows["layer classes"] == [9, 4]  # CrossEntropyLoss, a Module, is reused
    assert "function calls in a training step" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly_with_the_figures_written(tmp_path):
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has already exited
    try:
        result = subprocess.run([sys.executable, "-m", "bench.reuse_tinygpt", "--quick", "--out", str(tmp_path)],
                                cwd=ROOT, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300)  # fmt: skip
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads((tmp_path / "reuse_tinygpt.json").read_text())["quick"] is True
