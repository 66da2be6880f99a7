"""Fixtures for the Program DSL and execution-engine tests.

The only stand-in is the LLM provider: a real local OpenAI-compatible HTTP
server (``dspex_jupyter.testing.LMServer``) that DSPy talks to unpatched.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dspex_jupyter import Context  # noqa: E402
from dspex_jupyter.testing import LMServer  # noqa: E402

SECRET = "sk-test-SECRET-4c1d9f"


@pytest.fixture(scope="module")
def lm_server():
    with LMServer() as server:
        yield server


@pytest.fixture()
def lm(lm_server):
    """The module's LM server, emptied of earlier requests, with no latency."""
    lm_server.clear()
    lm_server.latency = 0.0
    yield lm_server
    lm_server.latency = 0.0


@pytest.fixture(scope="module")
def pool():
    from dspex_jupyter.bridge.workers import WorkerPool

    with WorkerPool(2, threads_per_worker=32) as workers:
        assert workers.wait_ready(180), workers.workers
        yield workers


@pytest.fixture()
def ctx():
    context = Context.start()
    yield context
    context.stop()


def lm_config(server: LMServer, model: str = "test-lm") -> dict:
    return {"model": model, "api_base": server.url, "api_key": SECRET}
