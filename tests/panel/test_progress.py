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


def test_no_lm_and_no_embedded_model_is_one_short_error_naming_dspex_ways(
    kernel: KernelSession, tmp_path
) -> None:
    """The first bridged run with no LM configured and the embedded model's file
    missing: the cell's error is a few lines naming lm=, DSPEX_LM_* and the
    embedded model, without the package's frames; the run's status line is blanked."""
    kernel.execute("%load_ext dspex_jupyter")
    kernel.execute(
        "import os\n"
        f"os.environ['DSPEX_LOCAL_LM_MODEL'] = {str(tmp_path / 'missing.gguf')!r}\n"
        "from dspex_jupyter import Context, Program\n"
        "from dspex_jupyter.modules import Predict\n"
        "nolm_ctx = Context.start(name='nolm', backend='bridged')\n"
    )
    try:
        error = kernel.execute_error(
            "Program.run(Program.new('ask').chain([Predict('question -> answer')]), "
            "{'question': 'hi'}, context=nolm_ctx)",
            timeout=240,
        )
        assert error["ename"] == "LocalLMUnavailable"
        shown = "\n".join(error["traceback"])
        for way in ("lm={'model'", "DSPEX_LM_MODEL", "dspex-jupyter[local-lm]", "%dspex lm", "%tb"):
            assert way in shown, way
        assert "dspy.LM" not in shown and "OPENAI_API_KEY" not in shown
        assert "dspex_jupyter/" not in shown and len(error["traceback"]) <= 4, shown

        def loading() -> list[dict]:
            return [
                d
                for d in list(kernel.displays)
                if "loading DSPy" in d["data"].get("text/plain", "")
            ]

        assert wait_until(lambda: bool(loading()), timeout=30)
        (status,) = loading()
        assert status["data"]["text/plain"] == "dspex: loading DSPy on the bridge (first run)…"
        display_id = status["transient"]["display_id"]
        assert wait_until(
            lambda: any(
                d["msg_type"] == "update_display_data"
                and d["transient"]["display_id"] == display_id
                and d["data"].get("text/plain") == ""
                for d in list(kernel.displays)
            ),
            timeout=30,
        )
        assert kernel.evaluate("nolm_ctx.backend") == "bridged"  # nothing else changed
    finally:
        kernel.execute("nolm_ctx.stop()")
