"""A bridged run's usage in the panel: one compact line, its details in a tooltip.

A real DSPy Predict through a private bridge server, on the scripted
OpenAI-compatible LM (``dspex_jupyter.testing.LMServer``, which reports a usage
block): the panel's run shows the kernel's own usage line (``N tok``), the
tooltip holds the details, and none of the raw usage JSON (``by_model``,
``null`` fields) reaches the page; the cell's RunResult display uses the same line.
"""

from __future__ import annotations

import ast
import re

from playwright.sync_api import Page, expect

from .conftest import screenshot
from .test_panel import PANEL, WAIT, open_notebook_and_panel, run_cell, write_notebook

CELLS = [
    "%load_ext dspex_jupyter\n"
    "from dspex_jupyter import Context, Program\n"
    "from dspex_jupyter.modules import Predict\n"
    "from dspex_jupyter.running.result import usage_detail, usage_line\n"
    "from dspex_jupyter.testing import LMServer\n"
    "lm = LMServer().start()\n"
    "ctx = Context.start(name='scripted', lm=lm.lm_config())",
    "result = Program.run(Program.new('ask').chain([Predict('question -> answer')]),\n"
    "                     {'question': 'What is DSPex?'}, context=ctx)\n"
    "result",
    "print(repr((usage_line(result.usage), usage_detail(result.usage))))",
]

RAW_USAGE = ("by_model", "prompt_tokens_details", "null", "{")


def test_a_bridged_run_shows_a_compact_usage_line(page: Page, lab) -> None:
    write_notebook(lab, "usage_demo.ipynb", CELLS)
    open_notebook_and_panel(page, lab, "usage_demo.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    outputs = run_cell(page, 2)
    line, detail = ast.literal_eval(
        "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    )
    assert re.fullmatch(r"\d+ tok", line), line  # one LM call: no "· 1 calls"
    assert int(line.split()[0]) > 0

    run = page.locator(f"{PANEL} .dspex-run").first
    expect(run.locator(".dspex-run-status")).to_have_text("ok", timeout=WAIT)
    # the run's line, then its one module's (whose tooltip also names the model)
    usages = run.locator(".dspex-usage")
    expect(usages).to_have_count(2)
    expect(usages.first).to_have_text(line)
    assert usages.first.get_attribute("title") == detail
    expect(run.locator(".dspex-run-modules .dspex-usage")).to_have_text(line)
    assert detail.startswith("prompt: ") and "completion: " in detail
    expect(run.locator(".dspex-run-inputs")).to_contain_text("question: What is DSPex?")
    expect(run.locator(".dspex-run-outputs")).to_contain_text("answer")
    text = run.inner_text()
    for raw in RAW_USAGE:
        assert raw not in text, (raw, text)

    # the cell's RunResult display: outputs first, the same usage line
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
    expect(cell).to_contain_text("answer", timeout=WAIT)
    expect(cell).to_contain_text(line)
    for raw in ("by_model", "prompt_tokens_details"):
        expect(cell).not_to_contain_text(raw)
    screenshot(page.locator(PANEL), "panel-run-usage.png")
    console = "\n".join(page.console_messages)  # type: ignore[attr-defined]
    assert "pageerror" not in console, console
