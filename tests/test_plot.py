"""tinytorch.plot: the lessons' pictures, as text in the terminal and as PNGs with matplotlib."""
from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
from rich.console import Console

from tinytorch import plot


def rendered(renderable, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_a_sparkline_spans_the_series_from_lowest_to_highest():
    assert plot.sparkline([3.0, 2.0, 1.0, 0.0]) == "█▆▃▁"
    assert plot.sparkline([5, 5, 5]) == "▅▅▅", "a flat series sits mid-way"
    assert plot.sparkline([]) == ""


def test_the_history_chart_shows_each_metric_and_its_best_epoch():
    text = rendered(plot.history_chart({"loss": [2.0, 0.5, 0.7], "val_accuracy": [0.2, 0.9, 0.8], "seconds": [1, 1, 1]}))
    loss = next(line for line in text.splitlines() if line.startswith("loss"))
    accuracy = next(line for line in text.splitlines() if line.startswith("val_accuracy"))
    assert "0.5000 (epoch 2)" in loss and "█▁▂" in loss, "loss: lowest is best"
    assert "0.9000 (epoch 2)" in accuracy, "accuracy: highest is best"
    assert "seconds" not in text


def test_the_heatmap_leaves_masked_entries_blank_and_shades_the_rest():
    weights = np.array([[1.0, 0.0], [0.05, 0.95]])
    rows = rendered(plot.heatmap(weights, title="attention")).splitlines()
    assert rows[0] == "attention"
    assert rows[2].rstrip() == " 0██", "the masked entry is blank"
    assert rows[3].rstrip() == " 1░░██", "a small weight is light, not blank"


def test_bars_scale_to_the_largest_value():
    text = rendered(plot.bar_chart({"0%": 0.8, "90%": 0.4}, width=10))
    assert "██████████  80.0%" in text and "█████       40.0%" in text


def test_pngs_are_written_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    paths = [
        plot.save_history_png({"loss": [1.0, 0.5]}, tmp_path / "history.png"),
        plot.save_heatmap_png(np.eye(3), tmp_path / "a" / "heat.png", title="eye"),
        plot.save_curve_png({"global": {0.0: 0.9, 0.5: 0.8}}, tmp_path / "curve.png", "sparsity", "accuracy"),
    ]
    for path in paths:
        assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def fake_ipython(shell) -> tuple[types.ModuleType, types.ModuleType, list]:
    """IPython and IPython.display as a Jupyter kernel would have them, recording what is displayed."""
    shown = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display = types.ModuleType("IPython.display")
    display.Image = lambda filename: ("image", filename)
    display.display = shown.append
    return ipython, display, shown


@pytest.mark.parametrize("shell, inline", [
    (types.SimpleNamespace(kernel=object()), True),  # a Jupyter kernel's shell
    (types.SimpleNamespace(), False),                 # IPython in a terminal: the lesson prints the path
    (None, False),                                    # IPython imported, no shell running
])  # fmt: skip
def test_a_saved_png_is_shown_inline_only_in_a_notebook(tmp_path, monkeypatch, shell, inline):
    pytest.importorskip("matplotlib")
    ipython, display, shown = fake_ipython(shell)
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    path = plot.save_history_png({"loss": [1.0, 0.5]}, tmp_path / "history.png")
    assert shown == ([("image", str(path))] if inline else [])
