"""A real JupyterLab server and Debian's Chromium driven by Playwright.

The server is started by the tests (random token, free port, temporary root,
settings and workspaces), from this virtual environment, so it serves the
dev install's prebuilt extension (scripts/build_labextension.py --develop).
Never `playwright install`: the browser is /usr/bin/chromium.

Screenshots go through :func:`screenshot`: always to ``tests/artifacts/``, and,
with ``DSPEX_UPDATE_SCREENSHOTS=1`` (``make screenshots``, which runs
``scripts/update_screenshots.sh``), the README's images to ``docs/`` too, so
those images come from the tests rather than by hand.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"
UPDATE_DOCS = "DSPEX_UPDATE_SCREENSHOTS"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

if not Path(CHROMIUM).exists():
    raise RuntimeError(f"{CHROMIUM} is missing (scripts/bootstrap.sh installs Debian's chromium)")


def screenshot(target: Any, name: str, *, docs: str | None = None, **options: Any) -> Path:
    """Save a screenshot of ``target`` (a Playwright page or locator) as tests/artifacts/NAME.

    ``docs`` names the README image this picture is (``docs/<docs>``); it is written
    there as well when ``DSPEX_UPDATE_SCREENSHOTS=1`` (scripts/update_screenshots.sh),
    and only then, so an ordinary test run leaves the tree clean.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    target.screenshot(path=str(path), **options)
    if docs is not None and os.environ.get(UPDATE_DOCS) == "1":
        shutil.copyfile(path, DOCS / docs)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_extension_built() -> None:
    """Rebuild the extension if its sources changed (a no-op when they did not)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_labextension

        if not build_labextension.is_fresh():
            build_labextension.build()
    finally:
        sys.path.pop(0)
    linked = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "dspex-jupyter"
    if not linked.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_labextension.py"), "--develop"],
            check=True,
        )


class LabServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for sub in ("runtime", "settings", "workspaces", "config"):
            (root / ".lab" / sub).mkdir(parents=True, exist_ok=True)
        # no "get notified about Jupyter news?" toast over the screenshots (and no fetching)
        notification = root / ".lab" / "settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        (notification / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}'
        )
        # serve the extension built from this tree (first on JUPYTER_PATH), whichever
        # tree the virtual environment's share/jupyter/labextensions link points at
        data = root / ".lab" / "data" / "labextensions"
        data.mkdir(parents=True, exist_ok=True)
        (data / "dspex-jupyter").symlink_to(ROOT / "dspex_jupyter" / "labextension")
        env = dict(os.environ)
        env.update(
            JUPYTER_PATH=os.pathsep.join(
                p for p in (str(root / ".lab" / "data"), env.get("JUPYTER_PATH")) if p
            ),
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            JUPYTER_RUNTIME_DIR=str(root / ".lab" / "runtime"),
            JUPYTER_CONFIG_DIR=str(root / ".lab" / "config"),
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        self.log_path = root / ".lab" / "server.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                "--allow-root",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.port_retries=0",
                f"--LabApp.user_settings_dir={root / '.lab' / 'settings'}",
                f"--LabApp.workspaces_dir={root / '.lab' / 'workspaces'}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            ],
            cwd=root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=5
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not start:\n{self.log_path.read_text()[-3000:]}")

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _ensure_extension_built()
    server = LabServer(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log_path, ARTIFACTS / "jupyterlab-server.log")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1700, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.console_messages = messages  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "browser-console.log").write_text("\n".join(messages))
        context.close()
