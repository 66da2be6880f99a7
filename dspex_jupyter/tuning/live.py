"""The live view of a tuning run: a trial progress bar, a score-per-trial chart, a table.

The chart is a ``bqplot`` figure: a scatter of each trial's score and a step
line of the best so far, whose ``x``/``y`` traits are set as each trial
finishes. bqplot is ipywidgets all the way down (every mark is a widget
model, synced like a slider), and its wheel ships the prebuilt JupyterLab
extension, so the chart renders offline, with no CDN, and the data it shows
can be read kernel-side from the marks' traits (``LiveView.points.x``).

Outside a notebook the view is a text ``tqdm`` bar whose postfix carries the
best score so far and the trial number; bqplot is not imported then.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["LiveView", "short_value", "svg_chart"]


def svg_chart(scores: Sequence[float | None], width: int = 360, height: int = 120) -> str:
    """Trial scores (dots) and the best so far (line), as SVG text.

    The live view's chart is a bqplot widget, which needs a running kernel; this
    static drawing of the same data is what a *saved* notebook keeps.
    """
    pad = 6
    done = [(i, s) for i, s in enumerate(scores) if s is not None]
    if not done:
        return f'<svg width="{width}" height="{height}"></svg>'
    low, high = min(s for _, s in done), max(s for _, s in done)
    span = (high - low) or 1.0
    n = max(len(scores) - 1, 1)

    def xy(i: int, s: float) -> tuple[float, float]:
        return pad + i * (width - 2 * pad) / n, height - pad - (s - low) * (height - 2 * pad) / span

    dots = "".join(
        '<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="#4c78a8"/>'.format(*xy(i, s)) for i, s in done
    )
    best, line = float("-inf"), []
    for i, s in done:
        best = max(best, s)
        line.append("{:.1f},{:.1f}".format(*xy(i, best)))
    return (
        f'<svg width="{width}" height="{height}" class="dspex-tune-chart">'
        f'<polyline points="{" ".join(line)}" fill="none" stroke="#f58518"/>{dots}</svg>'
    )


_TABLE_ROWS = 20  # the trials table shows the latest trials; the study has them all


def short_value(value: Any) -> Any:
    """A float as 4 significant digits (a sampled 0.21608949558037638 reads 0.2161)."""
    return f"{value:.4g}" if isinstance(value, float) else value


class LiveView:
    """Progress (``tqdm.auto``), and in a notebook the chart and the trials table.

    ``notebook`` ``None`` detects a kernel; ``True`` builds the widgets anyway
    (and displays them, which outside a kernel prints their repr).
    """

    def __init__(
        self, total: int, title: str, enabled: bool, *, notebook: bool | None = None
    ) -> None:
        from tqdm.auto import tqdm

        self.numbers: list[int] = []
        self.scores: list[float | None] = []
        self.bests: list[float | None] = []
        self.rows: list[str] = []
        self.bar = tqdm(total=total, desc=f"tune {title}", disable=not enabled)
        self.chart: Any = None  # the bqplot Figure
        self.points: Any = None  # its Scatter: one dot per scored trial
        self.best_line: Any = None  # its Lines: the best score so far
        self.table: Any = None
        if enabled and (_in_notebook() if notebook is None else notebook):
            import ipywidgets
            from IPython.display import display

            self.chart, self.points, self.best_line = _figure(title)
            self.table = ipywidgets.HTML("")
            display(ipywidgets.VBox([self.chart, self.table]))
            self._quiet_optuna()

    def trial(self, number: int, params: dict[str, Any], score: float | None, best: Any) -> None:
        """One finished trial: its number, values and score, and the study's best so far."""
        self.numbers.append(number)
        self.scores.append(score)
        self.bests.append(best)
        self.bar.update(1)
        if best is not None:
            self.bar.set_postfix(best=f"{best:.3f}", trial=number)
        shown = "" if score is None else f"{score:.3f}"
        values = ", ".join(f"{k}={short_value(v)!s}" for k, v in params.items())
        self.rows.append(
            f"<tr><td>{number}</td><td>{html.escape(values)}</td><td>{shown}</td></tr>"
        )
        if self.chart is not None:
            self._draw()
            head = "<tr><th>trial</th><th>params</th><th>score</th></tr>"
            self.table.value = f"<table>{head}{''.join(self.rows[-_TABLE_ROWS:])}</table>"

    def _draw(self) -> None:
        scored = [(n, s) for n, s in zip(self.numbers, self.scores, strict=True) if s is not None]
        best = [(n, b) for n, b in zip(self.numbers, self.bests, strict=True) if b is not None]
        values = [s for _, s in scored] + [b for _, b in best]
        scale = self.points.scales["y"]
        with self.points.hold_sync(), self.best_line.hold_sync(), scale.hold_sync():
            # scores of a maximized metric (0..1) keep a fixed axis, so dots do not jump
            unit = all(0.0 <= v <= 1.0 for v in values)
            scale.min, scale.max = (0.0, 1.0) if unit else (None, None)
            self.points.x = [n for n, _ in scored]
            self.points.y = [s for _, s in scored]
            self.best_line.x = [n for n, _ in best]
            self.best_line.y = [b for _, b in best]

    def _quiet_optuna(self) -> None:
        """The chart and the table say what Optuna's per-trial INFO lines would (on stderr)."""
        import optuna

        self._verbosity: int | None = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(max(self._verbosity, optuna.logging.WARNING))

    def close(self) -> None:
        self.bar.close()
        verbosity = getattr(self, "_verbosity", None)
        if verbosity is not None:
            import optuna

            optuna.logging.set_verbosity(verbosity)
            self._verbosity = None


def _figure(title: str) -> tuple[Any, Any, Any]:
    """An empty score-per-trial figure: (Figure, Scatter of scores, Lines of the best)."""
    import bqplot
    import ipywidgets

    x, y = bqplot.LinearScale(), bqplot.LinearScale(min=0.0, max=1.0)
    points = bqplot.Scatter(
        x=[],
        y=[],
        scales={"x": x, "y": y},
        colors=["#4c78a8"],
        default_size=40,
        labels=["trial score"],
        display_legend=True,
    )
    best = bqplot.Lines(
        x=[],
        y=[],
        scales={"x": x, "y": y},
        colors=["#f58518"],
        interpolation="step-after",
        labels=["best so far"],
        display_legend=True,
    )
    axes = [
        bqplot.Axis(scale=x, label="trial", tick_format="d"),
        bqplot.Axis(scale=y, label="score", side="left", tick_format=".2f"),
    ]
    figure = bqplot.Figure(
        marks=[best, points],
        axes=axes,
        title=title,
        legend_location="top-left",
        fig_margin={"top": 40, "bottom": 40, "left": 50, "right": 20},
        layout=ipywidgets.Layout(width="560px", height="280px"),
    )
    return figure, points, best


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
