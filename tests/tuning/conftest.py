"""Fixtures for evaluation and tuning: a scripted LM server, contexts, waiting helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dspex_jupyter import Context  # noqa: E402
from dspex_jupyter.testing import LMServer  # noqa: E402

from . import scripted  # noqa: E402

WAIT_S = 60.0


@pytest.fixture(autouse=True)
def _no_env_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSPEX_BRIDGE", raising=False)
    monkeypatch.delenv("DSPEX_BRIDGE_TOKEN", raising=False)


@pytest.fixture(scope="module")
def lm_server():
    with LMServer(responder=scripted.responder) as server:
        yield server


@pytest.fixture()
def lm(lm_server):
    lm_server.clear()
    lm_server.latency = 0.0
    lm_server.responder = scripted.responder
    yield lm_server
    lm_server.responder = scripted.responder


@pytest.fixture()
def ctx():
    context = Context.start()
    yield context
    context.stop()


@pytest.fixture(scope="module")
def bridged_ctx(lm_server):
    """One bridged context per module (spawning a bridge server costs seconds)."""
    context = Context.start(lm=lm_server.lm_config())
    context.ensure_bridged()
    yield context
    context.stop()


@pytest.fixture(autouse=True)
def _clean_hooks():
    yield
    for gate in scripted.blocked.values():
        gate.set()
    scripted.blocked.clear()
    scripted.on_start.clear()


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Poll until ``predicate`` holds; the timeout is a failure, never a pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
