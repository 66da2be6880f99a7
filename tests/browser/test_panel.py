"""The DSPex lab panel in a real JupyterLab, in Debian's Chromium.

One notebook session, step by step: the panel follows the kernel's context;
setting a variable from code moves the panel and the slider; an invalid edit
in the panel is refused visibly and snaps back; a valid one moves the slider;
dragging the slider changes the kernel's variable and the panel follows; after
a kernel restart the panel reconnects by itself.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from playwright.sync_api import Page, expect

from .conftest import ARTIFACTS, screenshot

WAIT = 90_000  # ms; generous, the machine is shared

CELLS = [
    # 0: a context and a variable, without %load_ext (the panel registers itself)
    "from dspex_jupyter import default_context, Variables\n"
    "ctx = default_context()\n"
    'Variables.defvariable(ctx, "temperature", "float", initial=0.7, '
    'constraints={"min": 0, "max": 2})',
    # 1: the widgets
    "%load_ext dspex_jupyter\nctx.widgets()",
    # 2: set from code
    'ctx.set("temperature", 1.25)',
    # 3: what the kernel holds
    'print(ctx.get("temperature"), ctx.variable("temperature").version)',
]

PANEL = "#dspex-panel"


def number(text: str) -> re.Pattern:
    """The slider's readout shows 3 significant digits ("0.900", "2.00")."""
    whole, _, frac = text.partition(".")
    return re.compile(rf"^\s*{whole}\.{frac}0*\s*$" if frac else rf"^\s*{whole}(\.0*)?\s*$")


ROW = '#dspex-panel .dspex-variable[data-name="temperature"]'


def write_notebook(lab, name: str, cells: list[str]) -> str:
    """Write a notebook of ``cells`` (Python 3 kernel) into the lab's root; its name."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(lab.root / name))
    return name


@pytest.fixture
def notebook(lab) -> str:
    return write_notebook(lab, "panel_demo.ipynb", CELLS)


def cell_outputs(page: Page, index: int) -> list[dict]:
    """Run one cell with JupyterLab's own command; its outputs, errors included."""
    return page.evaluate(
        """async (index) => {
            const app = window.jupyterapp;
            const panel = app.shell.currentWidget;
            panel.content.activeCellIndex = index;
            await app.commands.execute('notebook:run-cell');
            const cell = panel.content.widgets[index];
            const deadline = Date.now() + 180000;
            while (cell.model.executionCount === null && Date.now() < deadline) {
                await new Promise(r => setTimeout(r, 100));
            }
            return cell.model.outputs.toJSON();
        }""",
        index,
    )


def run_cell(page: Page, index: int) -> list[dict]:
    """Run one cell; fail on an error output."""
    outputs = cell_outputs(page, index)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"cell {index} failed: {errors}"
    return outputs


def kernel_state(page: Page) -> tuple[float, int]:
    outputs = run_cell(page, 3)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    value, version = text.split()
    return float(value), int(version)


def open_notebook_and_panel(page: Page, lab, notebook: str) -> None:
    page.goto(lab.lab_url(notebook))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!k && k.status === 'idle';
        }""",
        timeout=120_000,
    )
    tab = page.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="dspex-panel"]')
    expect(tab).to_have_count(1, timeout=WAIT)
    tab.click()
    expect(page.locator(PANEL)).to_be_visible(timeout=WAIT)
    expect(page.locator(PANEL)).to_have_attribute("data-state", "connected", timeout=WAIT)


def test_panel_follows_edits_and_widgets(page: Page, lab, notebook: str) -> None:
    open_notebook_and_panel(page, lab, notebook)

    # the context appears once a cell creates it
    run_cell(page, 0)
    row = page.locator(ROW)
    value = row.locator("input.dspex-value")
    expect(row).to_have_attribute("data-version", "1", timeout=WAIT)
    expect(value).to_have_value("0.7")
    expect(row.locator(".dspex-type")).to_have_text("float")
    expect(row.locator(".dspex-version")).to_have_text("v1")
    expect(row.locator(".dspex-lock")).to_have_text("")
    expect(row.locator(".dspex-constraints")).to_have_text("constraints: min=0, max=2")
    expect(row).to_have_attribute("data-kind", "slider")  # a bounded number: a slider
    expect(page.locator(f"{PANEL} .dspex-backend")).to_have_text("local")
    expect(page.locator(f"{PANEL} .dspex-context-header")).to_contain_text("default")
    session = page.locator(f"{PANEL} .dspex-session").inner_text()
    assert re.fullmatch(r"[0-9a-f]{32}", session), session

    # the widgets
    run_cell(page, 1)
    slider = page.locator(".jp-OutputArea .widget-hslider").first
    expect(slider).to_be_visible(timeout=WAIT)
    readout = slider.locator(".widget-readout")

    # set from code: the panel and the slider follow
    run_cell(page, 2)
    expect(row).to_have_attribute("data-version", "2", timeout=WAIT)
    expect(value).to_have_value("1.25")
    expect(row.locator(".dspex-source")).to_have_attribute("data-source", "api")
    expect(readout).to_have_text(number("1.25"), timeout=WAIT)

    # an invalid edit in the panel is refused visibly and snaps back
    value.fill("5")
    value.press("Enter")
    error = row.locator(".dspex-error")
    expect(error).to_be_visible(timeout=WAIT)
    expect(error).to_contain_text("2")  # names the maximum it broke
    expect(value).to_have_value("1.25")
    expect(row).to_have_attribute("data-version", "2")
    screenshot(page.locator(PANEL), "panel-invalid-edit.png")
    assert kernel_state(page) == (1.25, 2)

    # text that is not a number is refused too
    value.fill("warm")
    value.press("Enter")
    expect(error).to_contain_text("warm", timeout=WAIT)
    expect(value).to_have_value("1.25")

    # a valid edit in the panel: kernel, panel and slider agree
    value.fill("0.9")
    value.press("Enter")
    expect(row).to_have_attribute("data-version", "3", timeout=WAIT)
    expect(value).to_have_value("0.9")
    expect(error).to_be_hidden()
    expect(row.locator(".dspex-source")).to_have_attribute("data-source", "panel")
    expect(readout).to_have_text(number("0.9"), timeout=WAIT)
    assert kernel_state(page) == (0.9, 3)

    # the panel's own slider: the End key moves it to its maximum, one edit
    panel_slider = row.locator("input.dspex-slider")
    expect(panel_slider).to_have_value("0.9")
    panel_slider.focus()
    panel_slider.press("End")
    expect(row).to_have_attribute("data-version", "4", timeout=WAIT)
    expect(value).to_have_value("2")
    expect(readout).to_have_text(number("2"), timeout=WAIT)
    assert kernel_state(page) == (2.0, 4)
    panel_slider.press("Home")
    expect(row).to_have_attribute("data-version", "5", timeout=WAIT)
    expect(value).to_have_value("0")
    expect(readout).to_have_text(number("0"), timeout=WAIT)

    # drag the slider to its right end: the kernel's variable changes, the panel follows
    handle = slider.locator(".noUi-handle")
    track = slider.locator(".noUi-base")
    expect(handle).to_be_visible()
    hb, tb = handle.bounding_box(), track.bounding_box()
    assert hb and tb
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] * 0.6, tb["y"] + tb["height"] / 2, steps=8)
    page.mouse.move(tb["x"] + tb["width"] + 40, tb["y"] + tb["height"] / 2, steps=8)
    page.mouse.up()
    expect(readout).to_have_text(number("2"), timeout=WAIT)
    expect(value).to_have_value("2", timeout=WAIT)
    version = int(row.get_attribute("data-version") or 0)
    assert version >= 6
    expect(row.locator(".dspex-source")).to_have_attribute("data-source", "widget")
    kernel_value, kernel_version = kernel_state(page)
    assert kernel_value == 2.0 and kernel_version == version
    screenshot(page, "panel-and-widgets.png")
    screenshot(page.locator(PANEL), "panel.png")

    # the panel's channel numbers its messages without gaps (one snapshot only)
    seq = int(page.locator(PANEL).get_attribute("data-seq") or 0)
    assert seq >= 6
    expect(page.locator(PANEL)).to_have_attribute("data-snapshots", "1")

    # a gap in the channel's sequence numbers: the panel asks for a fresh snapshot
    # (the kernel side skips one number, as if a message had been lost)
    page.evaluate(
        """async (code) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            await kernel.requestExecute({ code, silent: true, store_history: false }).done;
        }""",
        "import dspex_jupyter.jupyter.panel as _panel\n"
        "for _channel in _panel._hub.channels:\n"
        "    _channel.seq += 1\n"
        'ctx.set("temperature", 1.0)\n',
    )
    expect(page.locator(PANEL)).to_have_attribute("data-snapshots", "2", timeout=WAIT)
    expect(value).to_have_value("1", timeout=WAIT)
    expect(row).to_have_attribute("data-version", str(version + 1), timeout=WAIT)
    expect(readout).to_have_text(number("1"), timeout=WAIT)

    # restart the kernel: the panel reconnects by itself, to the fresh kernel's state
    page.evaluate(
        "async () => { await window.jupyterapp.shell.currentWidget.sessionContext.restartKernel(); }"
    )
    expect(page.locator(PANEL)).to_have_attribute("data-snapshots", "3", timeout=WAIT)
    expect(page.locator(PANEL)).to_have_attribute("data-state", "connected", timeout=WAIT)
    expect(page.locator(ROW)).to_have_count(0, timeout=WAIT)
    run_cell(page, 0)
    expect(page.locator(ROW)).to_have_attribute("data-version", "1", timeout=WAIT)
    expect(page.locator(ROW).locator("input.dspex-value")).to_have_value("0.7")
    console = "\n".join(page.console_messages)  # type: ignore[attr-defined]
    assert "pageerror" not in console, console
    (ARTIFACTS / "panel-final-state.json").write_text(
        json.dumps({"seq_before_restart": seq, "version_after_drag": version})
    )


RUN_CELLS = [
    "from dspex_jupyter import Context, Program, Variables\n"
    "from dspex_jupyter.native import QueryClassifier\n"
    'ctx = Context.start(name="triage")\n'
    'Variables.defvariable(ctx, "temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})\n'
    'Variables.defvariable(ctx, "model", "choice", initial="small", '
    'constraints={"choices": ["small", "large"]})',
    "%load_ext dspex_jupyter\nctx.widgets()",
    'spec = Program.new("triage").chain([QueryClassifier().bind_to_variable("model", as_="llm_model")])\n'
    'Program.run(spec, {"question": "What is the capital of France?"}, context=ctx).outputs',
]


def test_panel_shows_runs_with_variable_versions(page: Page, lab) -> None:
    write_notebook(lab, "runs_demo.ipynb", RUN_CELLS)
    open_notebook_and_panel(page, lab, "runs_demo.ipynb")

    run_cell(page, 0)
    header = page.locator(f"{PANEL} .dspex-context-header")
    expect(header).to_have_text("triage (ctx)", timeout=WAIT)
    model = page.locator(f'{PANEL} .dspex-variable[data-name="model"]')
    expect(model).to_have_attribute("data-version", "1", timeout=WAIT)
    expect(model.locator(".dspex-constraints")).to_contain_text('choices=["small","large"]')
    expect(page.locator(f"{PANEL} .dspex-runs")).to_have_text("no runs yet")

    run_cell(page, 1)
    dropdown = page.locator(".jp-OutputArea .widget-dropdown select").first
    expect(dropdown).to_be_visible(timeout=WAIT)

    run_cell(page, 2)
    runs = page.locator(f"{PANEL} .dspex-run")
    expect(runs).to_have_count(1, timeout=WAIT)
    expect(runs.first.locator(".dspex-run-title")).to_contain_text("triage")
    # a native-only run used no LM: no usage line at all (zero fields are hidden)
    expect(runs.first.locator(".dspex-usage")).to_have_count(0)
    expect(runs.first.locator(".dspex-run-title")).not_to_contain_text("tok")
    expect(runs.first.locator(".dspex-run-inputs")).to_contain_text(
        "question: What is the capital of France?"
    )
    expect(runs.first.locator(".dspex-run-outputs")).to_contain_text("category")
    expect(runs.first.locator(".dspex-run-modules")).to_contain_text("QueryClassifier (native)")
    expect(runs.first.locator(".dspex-run-modules")).to_contain_text("uses model@v1")

    # a widget changes the variable; the next run reads (and records) the new version
    dropdown.select_option("large")
    expect(model).to_have_attribute("data-version", "2", timeout=WAIT)
    expect(model).to_have_attribute("data-kind", "dropdown")
    expect(model.locator("select.dspex-value")).to_have_value("large")
    expect(model.locator(".dspex-source")).to_have_attribute("data-source", "widget")
    run_cell(page, 2)
    expect(runs).to_have_count(2, timeout=WAIT)
    expect(runs.first.locator(".dspex-run-modules")).to_contain_text("uses model@v2")
    expect(runs.nth(1).locator(".dspex-run-modules")).to_contain_text("uses model@v1")
    screenshot(page, "panel-runs-and-widgets.png", docs="panel.png")
    screenshot(page.locator(PANEL), "panel-runs.png")
