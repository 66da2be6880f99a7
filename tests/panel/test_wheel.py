"""A wheel built from a clean copy of the tree ships the prebuilt lab extension,
and a fresh virtual environment with only that wheel and JupyterLab has it
enabled — no Node.js at install time (a wheel install runs no build)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _clean_copy(dest: Path) -> None:
    """What a clean clone has: the tracked and the not-ignored files, nothing built."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listing):
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    assert (ROOT / ".git").exists(), "needs a git checkout to tell sources from build output"
    src = tmp_path_factory.mktemp("clone")
    _clean_copy(src)
    assert not (src / "dspex_jupyter" / "labextension").exists()
    assert not (src / "node_modules").exists()
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        timeout=1200,
    )
    (built,) = out.glob("dspex_jupyter-*.whl")
    return built


def test_wheel_contains_the_prebuilt_extension(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    prefix = next(n.split("share/")[0] for n in names if "/share/jupyter/labextensions/" in n)
    ext = f"{prefix}share/jupyter/labextensions/dspex-jupyter/"
    assert f"{ext}package.json" in names
    assert f"{ext}install.json" in names
    assert f"{ext}static/style.js" in names
    assert any(
        re.fullmatch(rf"{re.escape(ext)}static/remoteEntry\.[0-9a-f]+\.js", n) for n in names
    )
    assert "dspex_jupyter/jupyter/panel.py" in names


def test_fresh_venv_has_the_extension_enabled(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, timeout=600)
    import jupyterlab

    subprocess.run([*pip, f"jupyterlab=={jupyterlab.__version__}"], check=True, timeout=1200)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    listing = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    line = next((ln for ln in text.splitlines() if "dspex-jupyter" in ln), "")
    assert re.search(r"dspex-jupyter v\S+ enabled\s+OK \(python, dspex-jupyter\)", line), text
    assert str(venv / "share" / "jupyter" / "labextensions") in text
