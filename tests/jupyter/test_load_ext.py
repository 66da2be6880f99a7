"""``%load_ext dspex_jupyter`` in a fresh interpreter: registers the magics, no DSPy."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
result = shell.run_cell("%load_ext dspex_jupyter")
print(json.dumps({
    "ok": result.success,
    "magic": shell.find_line_magic("dspex") is not None,
    "cell_magic": shell.find_cell_magic("dspex") is not None,
    "dspy": sorted(m for m in sys.modules if m == "dspy" or m.startswith("dspy.")),
    "litellm": "litellm" in sys.modules,
    "default_created": __import__("dspex_jupyter.context").context._default is not None,
}))
"""


def test_load_ext_registers_magics_without_importing_dspy():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["magic"] and report["cell_magic"]
    assert report["dspy"] == [] and not report["litellm"]
    assert not report["default_created"]  # the default context is created lazily


def test_first_magic_creates_the_default_context_still_without_dspy():
    script = SCRIPT.replace(
        'result = shell.run_cell("%load_ext dspex_jupyter")',
        'shell.run_cell("%load_ext dspex_jupyter")\n'
        'result = shell.run_cell("%dspex def t float 0.5")\n'
        'shell.run_cell("%dspex vars")',
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["default_created"]
    assert report["dspy"] == []
