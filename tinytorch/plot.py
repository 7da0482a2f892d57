"""Pictures for the lessons: in the terminal (Rich renderables) and, when matplotlib is installed, PNGs.

Hand-written, not exported from a lesson: drawing is not what the course teaches, and no checkpoint
depends on it. The terminal pictures are text (block characters, shades) so they survive a pipe,
NO_COLOR and a screen reader; in Jupyter, Rich renders the same objects inline. matplotlib is an
optional extra (`pip install -e '.[plots]'`): without it `save_*_png` returns None and says nothing.
In a Jupyter notebook a saved PNG is also shown below the cell that saved it.

    show(history_chart(trainer.history))             loss / accuracy per epoch, one sparkline each
    show(heatmap(weights, queries, keys))              an attention matrix, darker = more weight
    show(bar_chart({"50%": 0.97, "90%": 0.41}))        accuracy against sparsity
    save_history_png(history, "build/figures/x.png")   the same as a PNG (None without matplotlib)
"""
from __future__ import annotations

import sys
from pathlib import Path

SPARKS = "▁▂▃▄▅▆▇█"
SHADES = " ░▒▓█"
FIGURES = Path("build") / "figures"


def _titled(title: str, table):
    """A title line above the table (a Rich table title would wrap to the table's width)."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="bold"), table) if title else table


def _shade(value: float, top: float) -> str:
    """Blank only for exactly zero (a masked entry), then lighter to darker up to the largest."""
    if value <= 0.0:
        return SHADES[0]
    return SHADES[max(1, round(value / top * (len(SHADES) - 1)))]


def _scaled(values, levels: int) -> list[int]:
    """Each value's level in 0..levels-1 between the smallest and the largest (a flat series sits mid-way)."""
    low, high = min(values), max(values)
    if high == low:
        return [levels // 2] * len(values)
    return [min(levels - 1, int((v - low) / (high - low) * levels)) for v in values]


def sparkline(values) -> str:
    """`▇▅▃▂▁▁`: one character per value, its height between the series' min and max."""
    values = [float(v) for v in values]
    return "".join(SPARKS[level] for level in _scaled(values, len(SPARKS))) if values else ""


def history_chart(history: dict, title: str = "training history"):
    """One row per metric of a `Trainer.fit` history: first value, the curve, last value, best epoch."""
    from rich.table import Table

    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for name, justify in (("metric", "left"), ("first", "right"), ("per epoch", "left"), ("last", "right"),
                          ("best", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)
    for name, values in history.items():
        if name == "seconds" or not values:
            continue
        pick = min if "loss" in name else max
        best = pick(range(len(values)), key=values.__getitem__)
        table.add_row(name, f"{values[0]:.4f}", sparkline(values), f"{values[-1]:.4f}",
                      f"{values[best]:.4f} (epoch {best + 1})")  # fmt: skip
    return _titled(title, table)


def heatmap(matrix, row_labels=None, column_labels=None, title: str = ""):
    """A matrix of non-negative weights as shaded cells: blank = 0, █ = the largest entry."""
    from rich.table import Table

    rows = [[float(v) for v in row] for row in matrix]
    top = max((v for row in rows for v in row), default=0.0) or 1.0  # shades relative to the largest
    row_labels = [str(label) for label in (row_labels if row_labels is not None else range(len(rows)))]
    column_labels = [str(label) for label in (column_labels if column_labels is not None else range(len(rows[0])))]
    table = Table(box=None, padding=(0, 0), pad_edge=False)
    table.add_column("", justify="right", no_wrap=True)
    for label in column_labels:
        table.add_column(label[:2].rjust(2), no_wrap=True)
    for label, row in zip(row_labels, rows):
        table.add_row(f"{label} ", *(_shade(v, top) * 2 for v in row))
    return _titled(title, table)


def bar_chart(values: dict, title: str = "", number_format: str = "{:.1%}", width: int = 30):
    """Horizontal bars, one per label, scaled to the largest value."""
    from rich.table import Table

    top = max(values.values(), default=0.0) or 1.0
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
    table.add_column("", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("", justify="right", no_wrap=True)
    for label, value in values.items():
        table.add_row(str(label), "█" * round(max(value, 0.0) / top * width), number_format.format(value))
    return _titled(title, table)


def show(renderable) -> None:
    """Print a picture (in Jupyter, Rich draws it inline)."""
    from rich.console import Console

    Console(highlight=False).print(renderable)


# ------------------------------------------------------------------------------------------- PNGs


def _save(path, draw) -> Path | None:
    """Draw on a new matplotlib figure with `draw(axes)` and save it; None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no window, no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        draw(axes)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    _show_in_notebook(path)
    return path


def _show_in_notebook(path: Path) -> None:
    """Display the PNG inline when a Jupyter kernel runs this code (its shell has a kernel; a terminal
    IPython's has not, and plain Python has no IPython loaded at all)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return
    from IPython.display import Image, display

    display(Image(filename=str(path)))


def save_history_png(history: dict, path) -> Path | None:
    def draw(axes):
        for name, values in history.items():
            if name != "seconds":
                axes.plot(range(1, len(values) + 1), values, marker="o", label=name)
        axes.set(xlabel="epoch", title="training history")
        axes.legend()

    return _save(path, draw)


def save_heatmap_png(matrix, path, row_labels=None, column_labels=None, title: str = "") -> Path | None:
    def draw(axes):
        image = axes.imshow(matrix, cmap="Greys", vmin=0.0)
        if row_labels is not None:
            axes.set_yticks(range(len(row_labels)), [str(label) for label in row_labels])
        if column_labels is not None:
            axes.set_xticks(range(len(column_labels)), [str(label) for label in column_labels])
        axes.set(xlabel="key", ylabel="query", title=title)
        axes.figure.colorbar(image, ax=axes)

    return _save(path, draw)


def save_curve_png(curves: dict, path, xlabel: str, ylabel: str, title: str = "") -> Path | None:
    """Several named curves, each a dict {x: y}, on one set of axes."""

    def draw(axes):
        for name, points in curves.items():
            axes.plot(list(points), list(points.values()), marker="o", label=name)
        axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
        axes.legend()

    return _save(path, draw)
