"""Test helpers shipped with the package, so tests and teaching notebooks can run offline.

``dspex_jupyter.testing.LMServer`` is a local OpenAI-compatible HTTP server
that answers DSPy's field format for any signature. It is the only stand-in in
the test suite: DSPy itself runs unpatched against it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LMServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m dspex_jupyter.testing.lm_server` does not import it twice.
    if name == "LMServer":
        from .lm_server import LMServer

        return LMServer
    raise AttributeError(f"module 'dspex_jupyter.testing' has no attribute {name!r}")
