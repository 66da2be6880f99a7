"""Small deterministic ReAct tools for tests, notebooks and the demo.

A kernel's private server takes them by import path (e.g.
``"dspex_jupyter.testing.tools:search_docs"``); a shared server runs them once
registered under a name (``serve --tool search=dspex_jupyter.testing.tools:search_docs``,
then ``ReAct(..., tools=["search"])``). The bridge's worker processes import
them, so they must live in an importable module like this one.
"""

from __future__ import annotations

__all__ = ["search_docs", "word_count", "fail"]

_DOCS = {
    "dspex": "DSPex runs DSPy programs from notebooks, bridging to worker processes.",
    "context": "A Context owns typed variables on a local or bridged state backend.",
    "variable": "Variables are typed, constrained, versioned, and watchable.",
}


def search_docs(query: str) -> str:
    """Search the DSPex documentation for a query."""
    hits = [text for key, text in _DOCS.items() if key in query.lower()]
    return " ".join(hits) or f"No documentation matches {query!r}."


def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def fail(query: str) -> str:
    """A tool that always raises (to test error handling)."""
    raise RuntimeError(f"tool failure for {query!r}")
