"""With no LM configured, a newcomer's first bridged run fails with our short message.

A real JupyterLab kernel whose environment has no ``DSPEX_LM_*``, no bridge and
no provider key, and whose embedded model's file is missing (so the embedded
LM cannot answer): the rendered error names dspex's ways out (``lm=``,
``DSPEX_LM_*``, ``%dspex lm``), never DSPy's ``OPENAI_API_KEY`` route, and
hides the package's frames behind ``%tb``. A provider model named with no key
(DSPy's own "Set OPENAI_API_KEY" error) is reworded the same way, naming
the model that has no key. The first
bridged run's status line is gone when the cell ends.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import screenshot
from .test_panel import WAIT, cell_outputs, open_notebook_and_panel, write_notebook

CELLS = [
    # 0: no LM anywhere: clear what would configure one, and hide the embedded model
    "import os\n"
    "for name in [n for n in os.environ if n.startswith(('DSPEX_LM_', 'DSPEX_BRIDGE'))\n"
    "             or n.endswith('_API_KEY') or n.endswith('_API_BASE')]:\n"
    "    del os.environ[name]\n"
    "os.environ['DSPEX_LOCAL_LM_MODEL'] = os.path.join(os.getcwd(), 'missing.gguf')\n"
    "%load_ext dspex_jupyter\n"
    "from dspex_jupyter import Context, Program\n"
    "from dspex_jupyter.modules import Predict\n"
    "ask = Program.new('ask').chain([Predict('question -> answer')])\n"
    "ctx = Context.start(name='newcomer')",
    # 1: the first bridged run (starts the bridge, loads DSPy), with no LM configured
    "Program.run(ask, {'question': 'What is DSPex?'}, context=ctx)",
    # 2: a provider's model named, but no key: DSPy's "Set OPENAI_API_KEY" error underneath
    "keyless = Context.start(name='keyless', lm={'model': 'openai/gpt-4o-mini'})\n"
    "Program.run(ask, {'question': 'What is DSPex?'}, context=keyless)",
    # 3: the full traceback, on demand
    "%tb",
]

OUR_WAYS = ("lm={'model'", "DSPEX_LM_MODEL", "%dspex lm", "%tb")
NOT_OURS = ("OPENAI_API_KEY", "dspy.LM", "dspex_jupyter/", "site-packages", "Traceback")


def error_of(page: Page, index: int) -> dict:
    outputs = cell_outputs(page, index)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert len(errors) == 1, outputs
    return {"error": errors[0], "outputs": outputs}


def rendered_error(page: Page, index: int):
    """The error as the page shows it (JupyterLab renders it as stderr text)."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    shown = cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(shown).to_have_count(1, timeout=WAIT)
    return cell, shown


def assert_short_and_ours(text: str) -> None:
    for way in OUR_WAYS:
        assert way in text, (way, text)
    for theirs in NOT_OURS:
        assert theirs not in text, (theirs, text)
    # the cell's own frame, the one line, where the rest is: a few lines, not ten frames
    assert len([line for line in text.splitlines() if line.strip()]) <= 6, text


def test_no_lm_shows_our_short_message(page: Page, lab) -> None:
    write_notebook(lab, "no_lm.ipynb", CELLS)
    open_notebook_and_panel(page, lab, "no_lm.ipynb")
    assert not [o for o in cell_outputs(page, 0) if o.get("output_type") == "error"]

    # record every status line the page shows while cell 1 runs
    page.evaluate(
        """() => {
            window.dspexStatuses = [];
            new MutationObserver(() => {
                for (const node of document.querySelectorAll('.jp-OutputArea-output')) {
                    const text = node.textContent || '';
                    if (text.startsWith('dspex: ') && !window.dspexStatuses.includes(text)) {
                        window.dspexStatuses.push(text);
                    }
                }
            }).observe(document.body, { childList: true, subtree: true, characterData: true });
        }"""
    )
    # no LM configured, the embedded model unavailable
    first = error_of(page, 1)
    assert first["error"]["ename"] == "LocalLMUnavailable"
    cell, shown = rendered_error(page, 1)
    text = shown.inner_text()
    assert_short_and_ours(text)
    assert "dspex-jupyter[local-lm]" in text and "missing.gguf" in text
    # the first bridged run said what it was doing, and blanked each line when done
    seen = page.evaluate("() => window.dspexStatuses")
    assert seen == [
        "dspex: starting the bridge server…",
        "dspex: loading DSPy on the bridge (first run)…",
    ], seen
    statuses = [
        o["data"]["text/plain"] for o in first["outputs"] if o.get("output_type") == "display_data"
    ]
    assert statuses == ["", ""], first["outputs"]
    expect(cell.locator(".jp-OutputArea")).not_to_contain_text("loading DSPy")
    expect(cell.locator(".jp-OutputArea")).not_to_contain_text("starting the bridge")
    screenshot(cell, "no-lm-error.png")

    # a provider model with no key: DSPy's advice is replaced by ours
    second = error_of(page, 2)
    assert second["error"]["ename"] == "ModuleExecutionError"
    cell, shown = rendered_error(page, 2)
    text = shown.inner_text()
    assert_short_and_ours(text)
    assert "The LM openai/gpt-4o-mini has no API key" in text  # not "no LM is configured"
    screenshot(cell, "no-lm-provider-key-error.png")

    # the full traceback is still there, on demand
    full = cell_outputs(page, 3)
    text = "".join("".join(o.get("traceback", [])) + "".join(o.get("text", "")) for o in full)
    assert "Traceback" in text and "dspex_jupyter" in text, full
    console = "\n".join(page.console_messages)  # type: ignore[attr-defined]
    assert "pageerror" not in console, console
