"""Fixtures for the embedded-LM tests: the real model on llama.cpp, loaded once per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dspex_jupyter.bridge.local_lm import LocalLMHost

LABELS = ("sports", "politics", "food", "technology")
TOPIC_SIGNATURE = "text -> topic: Literal['sports', 'politics', 'food', 'technology']"
#: A handful of short texts per label (the smoke set; accuracy is measured in bench/).
TOPIC_EXAMPLES = [
    ("The striker scored twice in the cup final.", "sports"),
    ("Parliament passed the new budget bill today.", "politics"),
    ("This pasta recipe uses fresh basil and garlic.", "food"),
    ("The new smartphone chip runs apps twice as fast.", "technology"),
]


@pytest.fixture(autouse=True)
def _no_configured_lm(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the default: no LM configured anywhere."""
    for name in ("DSPEX_LM_MODEL", "DSPEX_LM_API_BASE", "DSPEX_LM_API_KEY", "DSPEX_LOCAL_LM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="module")
def host() -> Iterator[LocalLMHost]:
    saved = os.environ.pop("DSPEX_LOCAL_LM_MODEL", None)
    try:
        lm = LocalLMHost()
        assert lm.ensure() is True  # this call loaded it
        assert lm.ensure() is False  # ... and only once
    finally:
        if saved is not None:
            os.environ["DSPEX_LOCAL_LM_MODEL"] = saved
    yield lm
    lm.stop()
