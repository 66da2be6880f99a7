"""The README's `make lab` and `make screenshots` do what it says (read by make itself).

``make -n`` prints the recipe without running it (nor the set-up it depends on),
so this checks the Makefile make actually parses, not a copy of its text.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def recipe(target: str) -> list[str]:
    # Under `make test` the suite runs inside make: drop the parent's flags so this
    # make prints only the recipe (no "Entering/Leaving directory" lines).
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", target, "VENV=/venv-for-make-n"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.splitlines()


def test_make_lab_sets_up_then_opens_jupyterlab_on_the_notebooks() -> None:
    lines = recipe("lab")
    assert "bash scripts/bootstrap.sh" in lines  # a fresh clone is set up first
    assert (
        lines[-1] == "LITELLM_LOCAL_MODEL_COST_MAP=True /venv-for-make-n/bin/jupyter lab notebooks/"
    )
    assert len(list((ROOT / "notebooks").glob("0[1-3]_*.ipynb"))) == 3


def test_make_screenshots_runs_the_update_script_with_the_venv() -> None:
    assert recipe("screenshots")[-1] == (
        "PY=/venv-for-make-n/bin/python bash scripts/update_screenshots.sh"
    )
