"""Fixtures for compiling: an LM server where demos make the answer right."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dspex_jupyter import Context  # noqa: E402
from dspex_jupyter.testing import LMServer  # noqa: E402
from dspex_jupyter.testing.responders import demo_gated  # noqa: E402

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Peru": "Lima",
    "Egypt": "Cairo",
}
DATA = [{"country": c, "capital": a} for c, a in CAPITALS.items()]


@pytest.fixture(autouse=True)
def _no_env_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSPEX_BRIDGE", raising=False)
    monkeypatch.delenv("DSPEX_BRIDGE_TOKEN", raising=False)


@pytest.fixture(scope="module")
def lm():
    with LMServer(responder=demo_gated(CAPITALS, "capital")) as server:
        yield server


@pytest.fixture()
def ctx(lm):
    context = Context.start(lm=lm.lm_config())
    context.ensure_bridged()
    yield context
    context.stop()
