"""Notebook 01 after Run All in a real JupyterLab: no HTML shown as text, and a live end state.

The teaching notebook is run with JupyterLab's own "Run All" in Chromium. Then
no output shows markup as text (the outputs a reader sees as text, and the
text the page renders), nothing failed, and the end state is live: the panel
shows the notebook's context, and the notebook's widgets and the panel still
move each other. (02 and 03 run on the embedded model; tests/jupyter/
test_notebook.py runs all three in a real kernel with the same scan.)
"""

from __future__ import annotations

import shutil

import nbformat
from playwright.sync_api import Page, expect

from tests.jupyter.test_notebook import _HTML_AS_TEXT, NOTEBOOK, html_as_text

from .conftest import screenshot
from .test_panel import PANEL, WAIT, number, open_notebook_and_panel

RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await app.commands.execute('notebook:run-all-cells');
    const deadline = Date.now() + 300000;
    const done = () => panel.content.widgets.every(
        c => c.model.type !== 'code' || c.model.executionCount !== null);
    while (!(done() && panel.sessionContext.session.kernel.status === 'idle')
           && Date.now() < deadline) {
        await new Promise(r => setTimeout(r, 200));
    }
    return panel.content.widgets.map(c => ({
        cell_type: c.model.type,
        source: c.model.sharedModel.getSource(),
        outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : [],
        execution_count: c.model.type === 'code' ? c.model.executionCount : null,
    }));
}"""


def test_notebook_01_run_all_shows_no_markup_and_ends_live(page: Page, lab) -> None:
    shutil.copyfile(NOTEBOOK, lab.root / NOTEBOOK.name)
    open_notebook_and_panel(page, lab, NOTEBOOK.name)
    cells = page.evaluate(RUN_ALL)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code), code
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == [], errors
    stdout = "".join(
        "".join(o.get("text", "")) for c in code for o in c["outputs"] if o.get("name") == "stdout"
    )
    assert "widgets live: True | context live: True" in stdout
    assert "notebook finished" in stdout

    # nothing a reader sees as text is markup: in the outputs, and in the rendered page
    nb = nbformat.from_dict({"cells": [{**c, "metadata": {}} for c in cells]})
    assert html_as_text(nb) == []
    rendered = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
    assert len(rendered) >= len(code) // 2, rendered
    shown = [t for t in rendered if _HTML_AS_TEXT.search(t)]
    assert shown == [], shown

    # the end state is live: the panel shows the context, not "No dspex context"
    expect(page.locator(PANEL)).to_have_attribute("data-state", "connected", timeout=WAIT)
    expect(page.locator(f"{PANEL} .dspex-context-header")).to_contain_text("tutorial")
    expect(page.locator(PANEL)).not_to_contain_text("No dspex context")
    widgets = page.locator(".jp-Notebook .jp-Cell").nth(12).locator(".jp-OutputArea")
    dropdown = widgets.locator(".widget-dropdown select").first
    checkbox = widgets.locator(".widget-checkbox input[type=checkbox]").first
    expect(dropdown).to_be_enabled(timeout=WAIT)
    expect(checkbox).to_be_enabled()
    model = page.locator(f'{PANEL} .dspex-variable[data-name="model"]')
    expect(model.locator("select.dspex-value")).to_have_value("claude-3", timeout=WAIT)
    expect(model.locator("select.dspex-value")).to_be_enabled()

    # the notebook's widget moves the panel ...
    version = int(model.get_attribute("data-version") or 0)
    dropdown.select_option(label="gpt-4")
    expect(model).to_have_attribute("data-version", str(version + 1), timeout=WAIT)
    expect(model.locator("select.dspex-value")).to_have_value("gpt-4")
    expect(model.locator(".dspex-source")).to_have_attribute("data-source", "widget")
    # ... and the panel moves the notebook's slider
    temperature = page.locator(f'{PANEL} .dspex-variable[data-name="temperature"]')
    value = temperature.locator("input.dspex-value")
    expect(value).to_have_value("0.8")
    value.fill("1.5")
    value.press("Enter")
    slider = widgets.locator(".widget-hslider").first
    expect(slider.locator(".widget-readout")).to_have_text(number("1.5"), timeout=WAIT)
    screenshot(page, "notebook-01-after-run-all.png")
    console = "\n".join(page.console_messages)  # type: ignore[attr-defined]
    assert "pageerror" not in console, console
