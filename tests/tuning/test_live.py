"""The Tuner's live view: a bqplot chart whose marks follow the trials, a table, a text bar.

The chart is checked kernel-side, on the widget models' state (what JupyterLab
receives), while a real Tuner runs: each trial that finishes adds its dot and
moves the best-so-far line before the next trial starts.
"""

from __future__ import annotations

import numpy as np
import optuna

from dspex_jupyter import Tuner
from dspex_jupyter.tuning import live
from dspex_jupyter.tuning.live import LiveView

from . import scripted
from .test_tuner import SPEC


def _state(mark) -> dict[str, list[float]]:
    """The marks' ``x``/``y`` as serialized for the front end (bqplot's binary arrays)."""
    state = mark.get_state(["x", "y"])
    return {
        key: np.frombuffer(state[key]["value"], dtype=state[key]["dtype"]).tolist()
        for key in ("x", "y")
    }


def test_the_chart_follows_the_trials_as_they_finish(ctx, monkeypatch):
    monkeypatch.setattr(live, "_in_notebook", lambda: True)  # build the widgets, as in a kernel
    ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    dots_seen: list[int] = []

    quiet: list[int] = []
    verbosity = optuna.logging.get_verbosity()

    def metric(example, outputs):  # runs in the kernel, during a trial
        dots_seen.append(len(tuner.view.points.x))
        quiet.append(optuna.logging.get_verbosity())
        return example["capital"] == outputs["capital"]

    tuner = Tuner(
        SPEC,
        scripted.DEVSET,
        metric,
        context=ctx,
        space={"temperature": [0.9, 0.1, 0.5]},
        sampler="grid",
        seed=2,
    )
    result = tuner.run()
    view = tuner.view
    n = len(scripted.DEVSET)
    # while trial k runs, the chart shows the k trials before it
    assert dots_seen == [0] * n + [1] * n + [2] * n
    trials = result.study.trials
    scores = [t.value for t in trials]
    assert sorted(scores) == [0.0, 0.0, 1.0]
    assert _state(view.points) == {"x": [0.0, 1.0, 2.0], "y": scores}
    running = [max(scores[: i + 1]) for i in range(3)]
    assert _state(view.best_line) == {"x": [0.0, 1.0, 2.0], "y": running}
    y_scale = view.points.scales["y"]
    assert (y_scale.min, y_scale.max) == (0.0, 1.0)
    assert view.chart.title == tuner.study_name
    assert view.table.value.count("<tr>") == 4  # a header and one row per trial
    assert view.bar.n == 3
    # Optuna's per-trial INFO lines are silenced while the chart shows the trials
    assert optuna.logging.get_verbosity() == verbosity
    assert len(quiet) == 3 * n and min(quiet) >= optuna.logging.WARNING


def test_a_trial_without_a_score_has_no_dot_and_the_axis_follows_big_scores():
    view = LiveView(3, "study", enabled=True, notebook=True)
    view.trial(0, {"x": 1}, 0.2, 0.2)
    view.trial(1, {"x": 2}, None, 0.2)
    assert _state(view.points) == {"x": [0.0], "y": [0.2]}
    assert _state(view.best_line) == {"x": [0.0, 1.0], "y": [0.2, 0.2]}
    view.trial(2, {"x": 3}, 3.5, 3.5)  # e.g. a minimized loss, not a 0..1 score
    assert _state(view.points)["y"] == [0.2, 3.5]
    y_scale = view.points.scales["y"]
    assert (y_scale.min, y_scale.max) == (None, None)
    view.close()


def test_outside_a_notebook_the_view_is_a_text_bar(capsys):
    view = LiveView(2, "study", enabled=True, notebook=False)
    view.trial(0, {"temperature": 0.1}, 1.0, 1.0)
    view.close()
    assert view.chart is None and view.points is None and view.table is None
    assert view.scores == [1.0] and "0.1" in view.rows[0]
    err = capsys.readouterr().err
    assert "tune study" in err and "best=1.000" in err and "trial=0" in err


def test_the_static_chart_draws_every_finished_trial_and_the_best_so_far():
    from dspex_jupyter.tuning.live import svg_chart

    svg = svg_chart([0.25, None, 0.5, 0.375])
    assert 'class="dspex-tune-chart"' in svg
    assert svg.count("<circle") == 3  # the unfinished trial has no dot
    points = svg.split('points="')[1].split('"')[0].split()
    heights = [float(p.split(",")[1]) for p in points]
    assert heights == sorted(heights, reverse=True)  # the best so far never drops
    assert svg_chart([None]) == '<svg width="360" height="120"></svg>'
