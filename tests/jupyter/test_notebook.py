"""The teaching notebook runs top to bottom in a real kernel (nbclient), offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "01_variables_and_widgets.ipynb"


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs *this* interpreter (the venv's), found first."""
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
    return "python3"


def _outputs(nb, output_type=None):
    for cell in nb.cells:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output_type is None or output.output_type == output_type:
                    yield cell, output


def _execute(path: Path, kernel: str, cwd: Path):
    """Run a notebook top to bottom; return it and everything it printed."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    errors = [output for _, output in _outputs(nb, "error")]
    assert errors == [], errors
    text = "".join(
        output.get("text", "") for _, output in _outputs(nb, "stream") if output.name == "stdout"
    )
    return nb, text


def test_notebook_executes_top_to_bottom(venv_kernel, tmp_path):
    nb, text = _execute(NOTEBOOK, venv_kernel, tmp_path)
    assert "refused: temperature: 5.0 is above max 2.0" in text
    assert "max_tokens control shows 512" in text
    assert "below min 1" in text
    assert "temperature is now 1.4 written by widget" in text
    assert "temperature: 1.4 -> 0.8" in text  # %dspex watch saw the magic's write
    assert "True" in text  # the cell program equals the Python DSL
    assert "notebook finished" in text
    widget_views = [
        output
        for _, output in _outputs(nb, "display_data")
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ] + [
        output
        for _, output in _outputs(nb, "execute_result")
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(widget_views) >= 2  # ctx.widgets() and %dspex vars rendered as real widgets
    html = "".join(
        output.get("data", {}).get("text/html", "") for _, output in _outputs(nb, "execute_result")
    )
    assert "QueryClassifier" in html and "how-to" in html  # the %dspex run result


def test_programs_notebook_executes_top_to_bottom(venv_kernel, tmp_path):
    """02: a program upgrades the context, tuned variables reach the LM, history works."""
    nb, text = _execute(NOTEBOOKS / "02_programs_and_the_bridge.ipynb", venv_kernel, tmp_path)
    assert "round-trips through a dict: True" in text
    assert "before: local" in text and "after:  bridged at unix:" in text
    assert "answer: Test answer for: What is DSPex?" in text
    assert "LM request: model claude-3 temperature 0.9" in text
    assert "versions used: {'model': 2, 'temperature': 2}" in text
    assert "the watcher saw, across the upgrade: [(0.9, 2)]" in text
    assert "rolled back: 0.7 as new version 3" in text
    assert "backend: local" in text  # the native-only program never bridged
    assert "the cell defines the same spec: True" in text
    assert "notebook finished" in text
