"""What the six milestones share: their command line, their result file and their pictures.

A milestone is a script, run from the course folder:

    python milestones/03_1986_backprop.py            # the full run: the historical figure
    python milestones/03_1986_backprop.py --quick    # a smaller run that still has to learn (CI)

It tells its story, trains with your own `tinytorch` package, draws its picture in the terminal,
saves a PNG under build/milestones/ when matplotlib is installed (`pip install -e '.[plots]'`)
and writes build/milestones/NN.json. It exits 0 when every figure reached its goal, 1 otherwise.
The machine learning in a milestone uses only `tinytorch`; this file only talks and draws.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tito.manifest import find_root, load
from tito.milestones import Check, MilestoneResult

ACHIEVED, MISSED = 0, 1
MARKERS = "•x+*"  # one per line of a chart, so lines differ without colour too


def check(name: str, value: float, shown: str, goal: str, met: bool) -> Check:
    """One figure and its goal; `met` is computed by the caller from `value`, never assumed."""
    return Check(name, float(value), shown, goal, bool(met))


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f} %"


@dataclass
class Run:
    """One run of one milestone: its mode, where it writes, and what it has drawn."""

    number: str  # "03", from the file name
    stem: str  # "03_1986_backprop"
    quick: bool
    out: Path
    console: Console
    figures: dict = field(default_factory=dict)
    picture: Path | None = None

    def size(self, quick, full):
        """The quick or the full value of a setting (epochs, sizes ...)."""
        return quick if self.quick else full

    def say(self, *lines) -> None:
        for line in lines:
            self.console.print(line)

    def plot(self, figure) -> None:
        """Print a plotext figure (built with `line_chart` or by hand) through Rich, so that colour
        is dropped when the output is not a terminal."""
        self.console.print(Text.from_ansi(figure.build().string()), soft_wrap=True)

    def png(self, draw) -> None:
        """Save a PNG drawn by `draw(figure)` on a matplotlib figure, when matplotlib is installed."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            from matplotlib import pyplot
        except ImportError:
            self.say("[dim](no PNG: matplotlib is not installed; pip install -e '.[plots]' to get one)[/]")
            return
        figure = pyplot.figure(figsize=(8, 4.5), dpi=100)
        draw(figure)
        figure.tight_layout()
        self.picture = self.out / f"{self.stem}.png"
        self.out.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.picture)
        pyplot.close(figure)
        self.say(f"[dim]picture: {self.picture}[/]")


def line_chart(series: dict, title: str, xlabel: str, width: int = 70, height: int = 16):
    """A plotext figure with one labelled line per entry of `series` ({label: (xs, ys)})."""
    import plotext

    figure = plotext.figure
    figure.clear()
    figure.plot_size(width, height)
    figure.theme("dark")
    for (label, (xs, ys)), marker in zip(series.items(), MARKERS):
        points = figure.signal(list(map(float, xs)), list(map(float, ys)), marker=marker)
        figure.draw(points.label(label).lines())
    figure.title(title)
    figure.label(xlabel)
    return figure


class heatmap:
    """A 2-D array as a picture: coloured half-blocks on a colour terminal (two rows of values per line,
    blue low, red high), a ramp of characters from ' ' to '@' otherwise."""

    RAMP = " .:-=+*#%@"

    def __init__(self, values, low: float | None = None, high: float | None = None):
        values = np.asarray(values, dtype=np.float64)
        low = values.min() if low is None else low
        high = values.max() if high is None else high
        self.scaled = np.clip((values - low) / ((high - low) or 1.0), 0.0, 1.0)

    def __rich_console__(self, console, options):
        yield self._blocks() if console.color_system else self._characters()

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(self.scaled.shape[1], self.scaled.shape[1])

    def _characters(self) -> Text:
        ramp = np.array(list(self.RAMP))[np.rint(self.scaled * (len(self.RAMP) - 1)).astype(int)]
        return Text("\n".join("".join(row) for row in ramp))

    def _blocks(self) -> Text:
        scaled = self.scaled
        if len(scaled) % 2:
            scaled = np.vstack([scaled, np.full(scaled.shape[1], np.nan)])
        text = Text()
        for number, (top, bottom) in enumerate(zip(scaled[0::2], scaled[1::2])):
            text.append("\n" if number else "")
            for upper, lower in zip(top, bottom):
                text.append("▀", style=f"{_colour(upper)} on {_colour(lower)}")
        return text


def _colour(value: float) -> str:
    """Diverging blue-white-red for a value in [0, 1]; NaN (padding) is black."""
    if np.isnan(value):
        return "black"
    red = int(255 * min(1.0, 2 * value))
    blue = int(255 * min(1.0, 2 * (1 - value)))
    green = int(255 * (1 - abs(2 * value - 1)))
    return f"rgb({red},{green},{blue})"


def image_grid(images: list[np.ndarray], columns: int) -> Table:
    """Small heat maps side by side, `columns` to a row, each scaled on its own."""
    grid = Table.grid(padding=(0, 1))
    for start in range(0, len(images), columns):
        grid.add_row(*(heatmap(image) for image in images[start : start + columns]))
    return grid


def image_tiles(fig, grid, images: list[np.ndarray], columns: int, first_column: int) -> None:
    """Images as matplotlib tiles in a gridspec, from `first_column` on, each on its own symmetric
    blue-white-red scale (the PNG twin of `image_grid`)."""
    for index, image in enumerate(images):
        axis = fig.add_subplot(grid[index // columns, first_column + index % columns])
        limit = np.abs(image).max() or 1.0
        axis.imshow(image, cmap="coolwarm", vmin=-limit, vmax=limit)
        axis.set_axis_off()


def table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for index, column in enumerate(header):
        grid.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        grid.add_row(*row)
    return grid


def parse_args(argv, story: str):
    title = story.strip().splitlines()[0]
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--quick", action="store_true", help="a small run that still has to learn (for CI)")
    parser.add_argument("--out", type=Path, help="folder for NN.json and the PNG (default: the course's build/milestones/)")
    args = parser.parse_args(argv)
    args.out = args.out or load(find_root()).build.milestones
    return args


def main(script: str, story: str, body, argv=None) -> int:
    """Run a milestone: `body(run)` trains, draws and returns its checks; the result is written here."""
    args = parse_args(argv, story)
    stem = Path(script).stem
    console = Console(soft_wrap=False, highlight=False)
    run = Run(stem.split("_", 1)[0], stem, args.quick, args.out, console)
    title, _, tale = story.strip().partition("\n")
    paragraphs = ["\n".join(" ".join(p.split()) for p in tale.strip().split("\n\n"))]
    console.print(Panel(paragraphs[0], title=f"[bold]{title}[/]", title_align="left", width=100))
    if args.quick:
        console.print("[dim]--quick: a smaller run sized for the test suite; it still has to learn.[/]")
    start = time.perf_counter()
    try:
        checks = body(run)
    except Exception as error:  # the learner's code failed: say where, briefly, instead of a traceback
        console.print(f"[bold red]The milestone stopped:[/] {type(error).__name__}: {error}\n{where(error)}")
        return MISSED
    result = MilestoneResult(
        run.number, "quick" if args.quick else "full", checks, run.figures,
        round(time.perf_counter() - start, 2), run.picture and run.picture.as_posix(),
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip
    path = args.out / f"{run.number}.json"
    result.write(path)
    report(console, result, path)
    return ACHIEVED if result.achieved else MISSED


def where(error: Exception) -> str:
    """The innermost line of the course's own code (the package or a milestone) the error passed through."""
    import traceback

    frames = [f for f in traceback.extract_tb(error.__traceback__) if "tinytorch" in f.filename or "milestones" in f.filename]
    if not frames:
        return ""
    frame, here = frames[-1], Path.cwd()
    path = Path(frame.filename)
    shown = path.relative_to(here) if path.is_relative_to(here) else path
    return f"  at {shown}:{frame.lineno}: {frame.line}"


def report(console: Console, result: MilestoneResult, path: Path) -> None:
    rows = [[c.name, c.shown, c.goal, "[green]✓[/]" if c.met else "[red]✗[/]"] for c in result.checks]
    console.print(table(f"{result.mode} run, {result.seconds:.1f} s", ["figure", "measured", "goal", ""], rows))
    verdict = "[bold green]🏆 milestone achieved[/]" if result.achieved else "[bold red]milestone not reached[/]"
    console.print(f"{verdict}: {result.headline}   [dim](saved to {path})[/]")


def entry(script: str, story: str, body, argv=None) -> int:
    """`main` for a script's `if __name__ == "__main__"`: Ctrl-C and a closed pipe end it quietly."""
    try:
        return main(script, story, body, argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nobody reads on: stay quiet at exit
        return MISSED


if __name__ == "__main__":
    sys.exit("kit.py is shared by the milestones; run one of them, e.g. python milestones/01_1957_perceptron.py")
