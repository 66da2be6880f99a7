"""``%dspex tune`` in a real JupyterLab: the live chart renders offline, one dot per trial.

A native program (no LM, no bridge) whose score falls as the temperature
rises is tuned from a notebook line; the bqplot chart, the trials table and
the TuningResult table are checked in the page, and the output area is saved
as ``tests/artifacts/tuning-live.png`` (the README's screenshot).
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import screenshot
from .test_panel import WAIT, run_cell, write_notebook

TRIALS = 12
CELLS = [
    "%load_ext dspex_jupyter\n"
    "from dspex_jupyter import Program\n"
    "from dspex_jupyter.native import function\n"
    "# each country is answered right below its own temperature threshold\n"
    "THRESHOLDS = {'France': 0.9, 'Japan': 0.8, 'Italy': 0.7, 'Spain': 0.6,\n"
    "              'Peru': 0.5, 'Egypt': 0.4, 'Kenya': 0.3, 'Chile': 0.2}\n"
    "def answer(country, temperature):\n"
    "    return {'capital': country.upper() if temperature <= THRESHOLDS[country] else '?'}\n"
    "spec = (Program.new('capitals')\n"
    "        .defvariable('temperature', 'float', initial=0.95,\n"
    "                     constraints={'min': 0.0, 'max': 1.0})\n"
    "        .chain([function(answer, outputs=['capital']).bind_to_variable('temperature')]))\n"
    "devset = [{'country': c, 'capital': c.upper()} for c in THRESHOLDS]",
    f"%dspex tune spec devset --metric exact_match --trials {TRIALS} --sampler random --seed 4",
]


def test_the_live_chart_shows_one_dot_per_trial(page: Page, lab) -> None:
    write_notebook(lab, "tuning_live.ipynb", CELLS)
    page.goto(lab.lab_url("tuning_live.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!k && k.status === 'idle';
        }""",
        timeout=120_000,
    )
    run_cell(page, 0)
    run_cell(page, 1)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    figure = cell.locator(".bqplot.figure")
    expect(figure).to_be_visible(timeout=WAIT)
    expect(figure.locator(".dot")).to_have_count(TRIALS, timeout=WAIT)
    expect(figure.locator(".mainheading")).to_contain_text("capitals-", timeout=WAIT)
    expect(figure).to_contain_text("best so far")  # the legend of the best-so-far line
    expect(figure).to_contain_text("trial score")
    # the progress bar (a tqdm widget) and the trials table beside the chart
    expect(cell.locator(".widget-hprogress")).to_have_count(1, timeout=WAIT)
    expect(cell.locator(".widget-html table tr")).to_have_count(TRIALS + 1, timeout=WAIT)
    # the TuningResult: best values on top, one row per trial
    expect(cell.locator("table.dspex-trials tr")).to_have_count(TRIALS + 1, timeout=WAIT)
    expect(cell.locator(".jp-OutputArea")).to_contain_text("best 1.000")
    # the live view replaces Optuna's INFO lines (no red stderr block above the chart)
    expect(cell.locator(".jp-OutputArea")).not_to_contain_text("A new study created")
    # the picture: from the progress bar to the bottom of the chart
    bar = cell.locator(".widget-hprogress").bounding_box()
    chart = figure.bounding_box()
    assert bar and chart
    top = bar["y"] - 8
    clip = {
        "x": chart["x"] - 8,
        "y": top,
        "width": 900,
        "height": chart["y"] + chart["height"] + 8 - top,
    }
    screenshot(page, "tuning-live.png", docs="tuning-live.png", clip=clip)
