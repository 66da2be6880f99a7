"""kill -9 of the bridge server while the embedded model serves runs.

A real server subprocess (sqlite store, so the session survives a restart), its
real worker processes and the real model on llama.cpp, hosted inside the
server (so the kill takes the model down too). The kill lands while an
evaluation has examples at the model: the metric of the first finished example
holds its kernel thread until the server is dead, while the other thread keeps
sending examples.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import BridgeUnavailable
from dspex_jupyter.modules import Predict

from .conftest import LABELS, TOPIC_EXAMPLES, TOPIC_SIGNATURE

SPEC = (
    Program.new("topics-fault")
    .defvariable("temperature", "float", initial=0.0, constraints={"min": 0.0, "max": 1.0})
    .chain([Predict(TOPIC_SIGNATURE).bind_to_variable("temperature")])
)


def test_kill9_of_the_server_mid_run_is_a_typed_error_and_a_restart_works(tmp_path):
    db, sock = tmp_path / "bridge.db", f"unix:{tmp_path / 'bridge.sock'}"
    server = ServerProcess(f"sqlite:{db}", listen=sock)
    ctx = Context.start(bridge=server.address, token=server.token)  # no LM: the embedded one
    try:
        first = Program.run(SPEC, {"text": TOPIC_EXAMPLES[0][0]}, context=ctx)  # loads the model
        assert first.outputs["topic"] in LABELS
        before = ctx.variable("temperature")
        killed = threading.Event()
        calls: list[str] = []

        def metric(example: dict[str, Any], outputs: dict[str, Any]) -> bool:
            calls.append(example["text"])
            if len(calls) == 1:  # the other thread has an example at the model now
                server.kill(signal.SIGKILL)
                killed.set()
            return outputs.get("topic") == example["topic"]

        devset = [{"text": t, "topic": label} for t, label in TOPIC_EXAMPLES * 6]
        ev = Program.evaluate(
            SPEC, devset, metric, context=ctx, num_threads=2, max_errors=1, display_progress=False
        )
        assert killed.wait(60)  # the metric's thread may still be reaping the server
        assert ev.stopped == "max_errors"
        failed = [row for row in ev.rows if row.status == "error"]
        assert failed and all("BridgeUnavailable" in row.error for row in failed), failed
        with pytest.raises(BridgeUnavailable):
            Program.run(SPEC, {"text": TOPIC_EXAMPLES[1][0]}, context=ctx)

        server = ServerProcess(f"sqlite:{db}", listen=sock, token=server.token)  # restart
        after = ctx.variable("temperature")
        assert (after.value, after.version) == (before.value, before.version)
        again = Program.run(SPEC, {"text": TOPIC_EXAMPLES[2][0]}, context=ctx)
        assert again.outputs["topic"] in LABELS
        assert again.trace[-1].lm["provider"] == "local"
        assert again.trace[-1].variables["temperature"]["version"] == before.version
    finally:
        ctx.stop()
        server.stop()
