"""The live view of a tuning run: a trial progress bar, a score-per-trial chart, a table.

The chart is an inline SVG in an ``ipywidgets.HTML`` that is replaced as each
trial finishes: it renders offline in JupyterLab and in exported notebooks,
and needs no plotting library (a score-per-trial line is a few lines of SVG).
Outside a notebook the view is a text ``tqdm`` bar only.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["LiveView", "svg_chart"]


def svg_chart(scores: Sequence[float | None], width: int = 360, height: int = 120) -> str:
    """Trial scores (dots) and the best so far (line), as SVG text."""
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


class LiveView:
    """Progress (``tqdm.auto``), and in a notebook the chart and the trials table."""

    def __init__(self, total: int, title: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.scores: list[float | None] = []
        self.rows: list[str] = []
        self.bar = tqdm(total=total, desc=f"tune {title}", disable=not enabled)
        self.chart: Any = None
        self.table: Any = None
        if enabled and _in_notebook():
            import ipywidgets
            from IPython.display import display

            self.chart = ipywidgets.HTML(svg_chart([]))
            self.table = ipywidgets.HTML("")
            display(ipywidgets.VBox([self.chart, self.table]))

    def trial(self, number: int, params: dict[str, Any], score: float | None, best: Any) -> None:
        self.scores.append(score)
        self.bar.update(1)
        if best is not None:
            self.bar.set_postfix(best=f"{best:.3f}", trial=number)
        shown = "" if score is None else f"{score:.3f}"
        self.rows.append(
            f"<tr><td>{number}</td><td>{html.escape(repr(params))}</td><td>{shown}</td></tr>"
        )
        if self.chart is not None:
            self.chart.value = svg_chart(self.scores)
            head = "<tr><th>trial</th><th>params</th><th>score</th></tr>"
            self.table.value = f"<table>{head}{''.join(self.rows[-20:])}</table>"

    def close(self) -> None:
        self.bar.close()


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
