"""The panel's controls match the widgets', both ways; locks and runs render for a newcomer.

One notebook on a bridged context (locks exist only there): each variable kind
gets the control the widgets use (slider, checkbox, dropdown, text); an edit in
the panel moves the widget and the kernel, a widget edit moves the panel; a
refused edit shows the same message in both; a lease disables the control and
names its holder in text; a run shows its inputs and outputs (a long one
truncated, expandable); a finished tuning shows its study and best score.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import screenshot
from .test_panel import PANEL, WAIT, open_notebook_and_panel, run_cell, write_notebook

LONG = "Which city is the capital of France, and what river runs through it? " * 3

CELLS = [
    # 0: a bridged context with one variable of each control kind
    "from dspex_jupyter import Context, Program, Tuner\n"
    "from dspex_jupyter.native import QueryClassifier, function\n"
    'ctx = Context.start(name="kinds", backend="bridged")\n'
    'ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})\n'
    'ctx.defvariable("verbose", "bool", initial=False)\n'
    'ctx.defvariable("model", "choice", initial="small", constraints={"choices": ["small", "large"]})\n'
    'ctx.defvariable("prompt", "str", initial="hello", constraints={"max_length": 10})\n'
    'ctx.defvariable("steps", "int", initial=3, constraints={"min": 1})',
    # 1: the widgets
    "%load_ext dspex_jupyter\nw = ctx.widgets()\nw",
    # 2: what the kernel holds
    'print(repr((ctx.get("verbose"), ctx.get("model"), ctx.get("prompt"))))',
    # 3: an optimizer's lease
    'lease = ctx.acquire_lock(["temperature"], "optimizer-7", ttl_s=120)',
    # 4: released
    "ctx.release_lock(lease)",
    # 5: a run with a long input
    'spec = Program.new("triage").chain([QueryClassifier().bind_to_variable("model", as_="llm_model")])\n'
    f"Program.run(spec, {{'question': {LONG!r}}}, context=ctx)",
    # 6: a small tuning of the temperature
    "def capital(country, temperature):\n"
    '    return {"capital": "Paris" if temperature < 0.5 else "Lyon"}\n'
    'tuned = Program.new("capitals").chain([function(capital, outputs=["capital"])'
    '.bind_to_variable("temperature")])\n'
    'r = Tuner(tuned, [{"country": "France", "capital": "Paris"}], "exact_match", context=ctx,\n'
    '          space={"temperature": [0.9, 0.1]}, sampler="grid", n_trials=2,\n'
    '          study_name="demo-study", display_progress=False).run()\n'
    "print(r.best_score)",
]

RAW_HTML = ("<span", "<small", "<b>", "&#", "<table", "<div")


def row(page: Page, name: str):
    return page.locator(f'{PANEL} .dspex-variable[data-name="{name}"]')


def kernel(page: Page) -> str:
    outputs = run_cell(page, 2)
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream").strip()


@pytest.fixture
def notebook(lab) -> str:
    return write_notebook(lab, "controls_demo.ipynb", CELLS)


def test_controls_locks_runs_and_tuning(page: Page, lab, notebook: str) -> None:
    open_notebook_and_panel(page, lab, notebook)
    run_cell(page, 0)
    expect(page.locator(f"{PANEL} .dspex-backend")).to_have_text("bridged", timeout=WAIT)
    kinds = {
        "temperature": "slider",
        "verbose": "checkbox",
        "model": "dropdown",
        "prompt": "text",
        "steps": "text",
    }
    for name, kind in kinds.items():
        expect(row(page, name)).to_have_attribute("data-kind", kind, timeout=WAIT)
    expect(row(page, "temperature").locator("input[type=range].dspex-slider")).to_have_count(1)
    checkbox = row(page, "verbose").locator("input[type=checkbox].dspex-value")
    select = row(page, "model").locator("select.dspex-value")
    prompt = row(page, "prompt").locator("input[type=text].dspex-value")
    expect(checkbox).not_to_be_checked()
    expect(select).to_have_value("small")

    run_cell(page, 1)
    out = page.locator(".jp-OutputArea").nth(1)
    widget_box = out.locator(".widget-checkbox input[type=checkbox]").first
    widget_select = out.locator(".widget-dropdown select").first
    widget_text = out.locator(".widget-text input").first
    expect(widget_box).to_be_visible(timeout=WAIT)

    # panel -> kernel and widgets
    checkbox.check()
    expect(row(page, "verbose")).to_have_attribute("data-version", "2", timeout=WAIT)
    expect(widget_box).to_be_checked(timeout=WAIT)
    select.select_option("large")
    expect(row(page, "model")).to_have_attribute("data-version", "2", timeout=WAIT)
    expect(widget_select.locator("option:checked")).to_have_text("large", timeout=WAIT)
    assert kernel(page) == "(True, 'large', 'hello')"

    # widgets -> panel
    widget_box.uncheck()
    expect(checkbox).not_to_be_checked(timeout=WAIT)
    expect(row(page, "verbose").locator(".dspex-source")).to_have_attribute("data-source", "widget")
    widget_select.select_option(label="small")
    expect(select).to_have_value("small", timeout=WAIT)

    # the same refusal, in the same words, in the panel and in the widgets
    prompt.fill("far too long a prompt")
    prompt.press("Enter")
    panel_error = row(page, "prompt").locator(".dspex-error")
    expect(panel_error).to_be_visible(timeout=WAIT)
    expect(prompt).to_have_value("hello")
    widget_text.fill("far too long a prompt")
    widget_text.press("Enter")
    message = out.locator(".widget-html").filter(has_text="prompt:")
    expect(message).to_be_visible(timeout=WAIT)
    expect(message).to_contain_text(panel_error.inner_text())
    expect(widget_text).to_have_value("hello", timeout=WAIT)
    assert kernel(page) == "(False, 'small', 'hello')"

    # a lease: the panel's slider and the widget are disabled, the holder named in text
    run_cell(page, 3)
    temperature = row(page, "temperature")
    lock = temperature.locator(".dspex-lock")
    expect(lock).to_have_text("locked by optimizer-7", timeout=WAIT)
    expect(temperature.locator("input.dspex-slider")).to_be_disabled()
    expect(temperature.locator("input.dspex-value")).to_be_disabled()
    widget_lock = out.locator(".widget-html").filter(has_text="by optimizer-7")
    expect(widget_lock).to_contain_text("locked", timeout=WAIT)
    # the marker is text, whatever the fonts: its box has a width and no lock glyph
    box = lock.bounding_box()
    assert box and box["width"] > 40
    assert "\U0001f512" not in (lock.inner_text() + widget_lock.inner_text())
    screenshot(page, "panel-locked-and-widgets.png", docs="panel-controls-and-widgets.png")
    screenshot(temperature, "panel-locked-row.png")
    run_cell(page, 4)
    expect(lock).to_have_text("", timeout=WAIT)
    expect(temperature.locator("input.dspex-slider")).to_be_enabled()

    # a run: inputs (the long one truncated, expandable) and outputs, status, latency
    run_cell(page, 5)
    run = page.locator(f"{PANEL} .dspex-run").first
    expect(run).to_be_visible(timeout=WAIT)
    expect(run.locator(".dspex-run-status")).to_have_text("ok")
    expect(run.locator(".dspex-run-title")).to_contain_text(" ms")
    expect(run.locator(".dspex-usage")).to_have_count(0)  # native: no LM, no usage line
    question = run.locator('.dspex-run-inputs .dspex-io[data-field="question"]')
    full = question.locator(".dspex-io-full")
    expect(full).to_be_hidden()
    expect(question.locator("summary")).to_contain_text("…")
    question.locator("summary").click()
    expect(full).to_be_visible()
    expect(full).to_have_text(LONG)
    expect(run.locator(".dspex-run-outputs")).to_contain_text("category")
    screenshot(page.locator(PANEL), "panel-run-inputs-outputs.png")

    # a tuning: its study and best score
    outputs = run_cell(page, 6)
    assert "1.0" in "".join(o.get("text", "") for o in outputs)
    tuning = page.locator(f"{PANEL} .dspex-tuning")
    expect(tuning).to_have_attribute("data-state", "done", timeout=WAIT)
    expect(tuning).to_contain_text("tuned demo-study")
    expect(tuning).to_contain_text("best 1.00")
    screenshot(page.locator(PANEL), "panel-controls.png")

    # no output of the whole notebook shows HTML markup as text (an output shown as
    # text: a stream, or a result with nothing richer than text/plain)
    every = page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .map(c => c.model.type === 'code' ? c.model.outputs.toJSON() : [])"""
    )
    for index, shown in enumerate(every):
        for output in shown:
            data = output.get("data") or {}
            if set(data) - {"text/plain"}:
                continue  # rendered from its richer type
            text = output.get("text") or data.get("text/plain") or ""
            text = "".join(text) if isinstance(text, list) else text
            assert not any(tag in text for tag in RAW_HTML), (index, text)
    console = "\n".join(page.console_messages)  # type: ignore[attr-defined]
    assert "pageerror" not in console, console
