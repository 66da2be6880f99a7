"""The slow first step shows a transient status line in the cell, in a real kernel.

Bridging a context spawns a bridge server (seconds): the cell shows
"dspex: starting the bridge server…" while it starts, and the same display is
blanked once the server is up.
"""

from __future__ import annotations

from tests.jupyter.conftest import wait_until

from .kernel_client import KernelSession


def _about_the_bridge(kernel: KernelSession) -> list[dict]:
    return [d for d in list(kernel.displays) if "bridge" in d["data"].get("text/plain", "")]


def test_starting_the_bridge_shows_a_status_line_then_blanks_it(kernel: KernelSession) -> None:
    kernel.execute("%load_ext dspex_jupyter")
    kernel.execute(
        "from dspex_jupyter import Context\n"
        "progress_ctx = Context.start(name='progress', backend='bridged')\n"
    )
    try:
        # iopub and the execute reply travel on different sockets: wait for the display
        assert wait_until(lambda: bool(_about_the_bridge(kernel)), timeout=30)
        (status,) = _about_the_bridge(kernel)
        assert status["msg_type"] == "display_data"
        assert status["data"]["text/plain"] == "dspex: starting the bridge server…"
        display_id = status["transient"]["display_id"]

        def updates() -> list[dict]:
            return [
                d
                for d in list(kernel.displays)
                if d["msg_type"] == "update_display_data"
                and d["transient"]["display_id"] == display_id
            ]

        assert wait_until(lambda: bool(updates()), timeout=30)
        assert [u["data"]["text/plain"] for u in updates()] == [""]  # gone once it is up
        assert kernel.evaluate("progress_ctx.backend") == "bridged"
    finally:
        kernel.execute("progress_ctx.stop()")
