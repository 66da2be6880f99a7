"""The teaching notebooks run top to bottom in a real kernel (nbclient), offline.

01 stays in the kernel (no LM); 02 and 03 make bridged runs on the embedded model
(``dspex-jupyter[local-lm]``), so their answers are real and are checked for
structure, not wording. Every executed notebook is also scanned for HTML
printed as text, for references to notebooks that do not exist, and for a
cleanup cell that would leave the widgets dead after Run All.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "01_variables_and_widgets.ipynb"

pytestmark = pytest.mark.notebook

#: HTML markup or character references: in text a reader sees, they are a display bug.
_HTML_AS_TEXT = re.compile(
    r"</?(?:span|small|div|table|tr|td|th|b|i|em|strong|code|pre|svg|br|p|a|ul|li|details|summary)"
    r"(?:\s[^>]*)?/?>"
    r"|&#x?[0-9a-fA-F]+;|&(?:amp|lt|gt|quot|nbsp);"
)
_RICH = ("text/html", "application/vnd.jupyter.widget-view+json", "image/svg+xml", "image/png")


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs *this* interpreter (the venv's), found first.

    No LM or bridge is configured, so bridged runs use a private bridge server and the
    embedded model, as on a newcomer's machine.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (dspex test)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for name in (
        "DSPEX_LM_MODEL",
        "DSPEX_LM_API_BASE",
        "DSPEX_LM_API_KEY",
        "DSPEX_LOCAL_LM_MODEL",
        "DSPEX_BRIDGE",
        "DSPEX_BRIDGE_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return "python3"


def _outputs(nb, output_type=None):
    for cell in nb.cells:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output_type is None or output.output_type == output_type:
                    yield cell, output


def html_as_text(nb) -> list[str]:
    """Outputs a reader sees as plain text that contain HTML: streams, and results or
    displays whose only representation is ``text/plain``."""
    found = []
    for cell, output in _outputs(nb):
        if output.output_type == "stream":
            text = output.get("text", "")
        elif output.output_type in ("execute_result", "display_data"):
            data = output.get("data", {})
            if any(kind in data for kind in _RICH):
                continue  # the frontend renders the rich form, not the text
            text = data.get("text/plain", "")
        else:
            continue
        match = _HTML_AS_TEXT.search(text)
        if match:
            found.append(f"cell {cell.source[:40]!r}: {match.group(0)!r} in {text[:120]!r}")
    return found


def _check_hygiene(path: Path, nb) -> None:
    """What every teaching notebook owes a reader after Run All."""
    assert html_as_text(nb) == []
    text = "\n".join(cell.source for cell in nb.cells)
    for number in re.findall(r"[Nn]otebooks? (0\d)", text):
        assert list(NOTEBOOKS.glob(f"{number}_*.ipynb")), f"{path.name} cites notebook {number}"
    assert "later notebooks" not in text
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert not any(
        "context stop" in source or re.search(r"\bctx\.stop\(\)", source) for source in code
    ), f"{path.name} stops its context, so its widgets end greyed out"


def _execute(path: Path, kernel: str, cwd: Path, timeout: int = 120):
    """Run a notebook top to bottom; return it and everything it printed."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        startup_timeout=120,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    finally:  # kept for reading after a failure (pytest's tmp_path)
        nbformat.write(nb, str(cwd / path.name))
    errors = [output for _, output in _outputs(nb, "error")]
    assert errors == [], errors
    text = "".join(
        output.get("text", "") for _, output in _outputs(nb, "stream") if output.name == "stdout"
    )
    _check_hygiene(path, nb)
    return nb, text


def _rich(nb, kind: str) -> str:
    return "".join(
        output.get("data", {}).get(kind, "")
        for _, output in _outputs(nb)
        if output.output_type in ("execute_result", "display_data")
    )


def _widget_views(nb) -> int:
    return sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for _, output in _outputs(nb)
        if output.output_type in ("execute_result", "display_data")
    )


def _line(text: str, prefix: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{text}"
    return lines[-1][len(prefix) :].strip()


def test_html_as_text_scan_flags_printed_markup_only():
    """The scan fails on HTML printed as text and passes rich displays of the same HTML."""
    nb = nbformat.v4.new_notebook()
    printed = nbformat.v4.new_code_cell("print(panel.message.value)")
    printed.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text="<span style='color:#b00020'>&#9888; bad</span>\n"
        ),
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": "claude-3 <small title='x'>v2</small>"}
        ),
    ]
    rich = nbformat.v4.new_code_cell("HTML(x)")
    rich.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "<IPython.core.display.HTML object>", "text/html": "<b>ok</b>"},
        ),
        nbformat.v4.new_output("stream", name="stdout", text="temperature < 2 and 3 > 1\n"),
    ]
    nb.cells = [printed, rich]
    found = html_as_text(nb)
    assert len(found) == 2 and all("print(panel" in f for f in found), found  # one per output
    nb.cells = [rich]
    assert html_as_text(nb) == []


def test_notebook_executes_top_to_bottom(venv_kernel, tmp_path):
    nb, text = _execute(NOTEBOOK, venv_kernel, tmp_path)
    assert "refused: temperature: 5.0 is above max 2.0" in text
    assert "max_tokens control shows 512" in text
    assert "below min 1" in _rich(nb, "text/html")  # the message area, rendered
    assert "temperature is now 1.4 written by widget" in text
    assert "claude-3 version 2" in text  # the other thread's write moved the widget
    assert "temperature: 1.4 -> 0.8" in text  # %dspex watch saw the magic's write
    assert "True" in text  # the cell program equals the Python DSL
    assert "widgets live: True | context live: True" in text  # Run All ends alive
    assert "notebook finished" in text
    assert _widget_views(nb) >= 2  # ctx.widgets() and %dspex vars rendered as real widgets
    html = "".join(
        output.get("data", {}).get("text/html", "") for _, output in _outputs(nb, "execute_result")
    )
    assert "QueryClassifier" in html and "how-to" in html  # the %dspex run result


def test_programs_notebook_executes_top_to_bottom(venv_kernel, tmp_path):
    """02: a program upgrades the context, runs on the embedded model, tuned variables
    reach the LM, history and rollback work."""
    nb, text = _execute(
        NOTEBOOKS / "02_programs_and_the_bridge.ipynb", venv_kernel, tmp_path, timeout=300
    )
    assert "round-trips through a dict: True" in text
    assert "before: local" in text and "after:  bridged at unix:" in text
    assert _line(text, "answer:")  # a real, non-empty answer (its wording is the model's)
    assert "| model used: local" in text
    lm = _line(text, "LM request: model")
    assert lm.startswith("openai/") and lm.endswith("temperature 0.9"), lm  # the embedded model
    assert "versions used: {'model': 1, 'temperature': 2}" in text
    assert "the watcher saw, across the upgrade: [(0.9, 2)]" in text
    assert "rolled back: 0.7 as new version 3" in text
    assert "backend: local" in text  # the native-only program never bridged
    assert "the cell defines the same spec: True" in text
    assert "context live: True | backend: bridged" in text
    assert "notebook finished" in text
    assert "QueryClassifier" in _rich(nb, "text/html")  # the %dspex run result, rendered


@pytest.mark.timeout(900)  # 10 evaluations of 8 examples on a real model, on 2 shared cores
def test_tuning_notebook_executes_top_to_bottom(venv_kernel, tmp_path):
    """03: evaluate on the packaged dataset, tune with the grid sampler on the embedded
    model, read the trials, find the tuner's writes in history, roll back."""
    nb, text = _execute(
        NOTEBOOKS / "03_measure_then_tune.ipynb", venv_kernel, tmp_path, timeout=600
    )
    assert "<Dataset 8 examples inputs=['text'] expected=['topic']>" in text
    baseline = float(_line(text, "score with the initial values:").split()[0])
    assert 0.0 <= baseline <= 1.0
    assert "(8 examples, 0 errors)" in text  # every answer parsed as one of the labels
    assert "the variable still holds the plain instruction: True" in text  # overrides wrote nothing
    best = float(_line(text, "best score:"))
    assert 0.25 <= best <= 1.0  # the scripted model's constant answer scores 0.25: a floor
    best_values = ast.literal_eval(_line(text, "best values:"))
    assert set(best_values) == {"temperature", "model", "instructions"}
    scripted = ast.literal_eval(_line(text, "the scripted model's trials scored:"))
    assert scripted == [0.25] * 4  # 'sports' for everything: 2 of 8, on every scripted trial
    moves = ast.literal_eval(_line(text, "the controls moved through:"))
    assert ("model", "scripted") in moves and ("instructions", "defined") in moves
    assert "they were disabled during the search: True" in text
    assert "and are live again: True" in text
    # the tuner's writes are versions in history, with where they came from
    history = [
        (int(m.group(1)), ast.literal_eval(m.group(2)), m.group(3), ast.literal_eval(m.group(4)))
        for m in re.finditer(r"^v(\d+): (\S+) by (\w+) (\{.*\})$", text, re.M)
    ]
    trial_writes = [h for h in history if h[3].get("source") == "tuner" and "study" not in h[3]]
    assert [meta["trial"] for *_, meta in trial_writes] == list(range(8))
    assert all(source == "tuner" for _, _, source, _ in trial_writes)
    version, value, source, meta = history[-1]  # the best values, written last
    assert source == "tuner" and meta["source"] == "tuner" and meta["study"]
    assert meta["score"] == best and value == best_values["temperature"]
    assert version == trial_writes[-1][0] + 1
    rolled = re.search(r"temperature: ([0-9.]+) -> 0\.7 \(new version (\d+)\)", text)
    assert rolled is not None, text  # back to v1, the value before any tuning
    assert float(rolled.group(1)) == best_values["temperature"]
    assert int(rolled.group(2)) == version + 1  # a new version after the tuner's last write
    assert "the widget shows it: 0.7" in text
    assert "context live: True | backend: bridged" in text
    assert "notebook finished" in text
    html = _rich(nb, "text/html")
    assert "dspex-tune-chart" in html  # the chart, drawn again from the trials table
    assert "params_model" in html  # the trials table
    assert _widget_views(nb) >= 2  # the variables' widgets and the live view
