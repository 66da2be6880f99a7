"""Ctrl-C during a bridged evaluation cancels the calls in flight, down to the worker pool.

Real components: a bridge server on a real socket (in this process, so the test
can read its worker pool), real DSPy worker processes and the test LM server,
whose answers for some countries are held until the test releases them. The
interrupt is a real KeyboardInterrupt raised in the main thread (where pytest
runs the test) by ``_thread.interrupt_main``.
"""

from __future__ import annotations

import _thread
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.bridge.server import BridgeServer
from dspex_jupyter.bridge.server.policy import ExecutionPolicy
from dspex_jupyter.bridge.store import open_store
from dspex_jupyter.modules import Predict
from dspex_jupyter.testing import LMServer
from dspex_jupyter.testing.lm_server import _inputs

from . import scripted
from .conftest import wait_until

SPEC = (
    Program.new("capitals-cancel")
    .defvariable("instructions", "choice", initial=scripted.PRECISE,
                 constraints={"choices": [scripted.VAGUE, scripted.PRECISE]})
    .chain([Predict("country -> capital").bind_to_variable("instructions")])
)  # fmt: skip
FAST = ["France", "Japan", "Italy", "Spain"]
SLOW = ["Peru", "Egypt", "Kenya", "Chile"]


class HeldLM:
    """The scripted responder, holding the answers for SLOW countries until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        country = _inputs(messages).get("country", "")
        if country in SLOW:
            with self.lock:
                self.held.add(country)
            self.release.wait(120)
            with self.lock:
                self.held.discard(country)
        return scripted.responder(messages)


@pytest.fixture(scope="module")
def bridge() -> Iterator[BridgeServer]:
    token = secrets.token_urlsafe(16)
    # like a kernel's private server, it lets its client name the (scripted) LM endpoint
    policy = ExecutionPolicy(allow_client_lm=True)
    server = BridgeServer(
        "127.0.0.1:0", token, open_store("memory", 1000), workers=1, policy=policy
    ).start()
    server.token = token  # type: ignore[attr-defined]
    yield server
    server.stop(grace=0.5)


def test_interrupt_cancels_outstanding_runs_and_leaves_no_worker_busy(bridge):
    held = HeldLM()
    with LMServer(responder=held) as lm:
        ctx = Context.start(bridge=bridge.address, token=bridge.token, lm=lm.lm_config())
        try:
            devset = [{"country": c, "capital": scripted.CAPITALS[c]} for c in FAST + SLOW]
            scored: list[str] = []

            def metric(example: dict[str, Any], outputs: dict[str, Any]) -> bool:
                scored.append(example["country"])
                return outputs.get("capital") == example["capital"]

            def interrupter() -> None:
                # Every fast example scored and every slow one held inside the LM.
                if wait_until(lambda: len(scored) == len(FAST) and held.held == set(SLOW)):
                    _thread.interrupt_main()

            threading.Thread(target=interrupter, daemon=True).start()
            ev = Program.evaluate(
                SPEC, devset, metric, context=ctx, num_threads=8, display_progress=False
            )
            pool = bridge.servicer._pool
            assert ev.stopped == "interrupted"
            by_country = {row.inputs["country"]: row for row in ev.rows}
            assert {c: by_country[c].status for c in FAST} == dict.fromkeys(FAST, "ok")
            assert all(by_country[c].score == 1.0 for c in FAST)
            assert {c: by_country[c].status for c in SLOW} == dict.fromkeys(SLOW, "cancelled")

            # The server dropped the cancelled runs while the LM still holds them.
            assert wait_until(lambda: pool.busy == 0)
            assert held.held == set(SLOW)
            assert sum(w["abandoned"] for w in pool.workers) == len(SLOW)

            # Released, the abandoned threads finish and their results are discarded.
            held.release.set()
            assert wait_until(lambda: sum(w["abandoned"] for w in pool.workers) == 0)
            again = Program.evaluate(
                SPEC, devset, "exact_match", context=ctx, num_threads=8, display_progress=False
            )
            assert again.stopped is None and again.score == 1.0, again.errors
            assert pool.busy == 0
        finally:
            held.release.set()
            ctx.stop()


def test_a_timed_out_example_leaves_no_run_busy_on_the_server(bridge):
    held = HeldLM()
    with LMServer(responder=held) as lm:
        ctx = Context.start(bridge=bridge.address, token=bridge.token, lm=lm.lm_config())
        try:
            devset = [{"country": "Peru", "capital": "Lima"}]
            ev = Program.evaluate(
                SPEC, devset, "exact_match", context=ctx, timeout_s=1.0, display_progress=False
            )
            assert [row.status for row in ev.rows] == ["timeout"]
            pool = bridge.servicer._pool
            assert wait_until(lambda: pool.busy == 0)
            assert held.held == {"Peru"}  # dropped by the pool, still inside the LM
        finally:
            held.release.set()
            ctx.stop()
