"""A "tool" whose import leaves a mark: a request naming it must never reach a worker."""

from __future__ import annotations

import os

_marker = os.environ.get("DSPEX_TEST_MARKER")
if _marker:
    with open(_marker, "a") as f:
        f.write(f"imported in pid {os.getpid()}\n")


def touch(query: str) -> str:
    """Leave a mark when called."""
    if _marker:
        with open(_marker, "a") as f:
            f.write(f"called with {query!r}\n")
    return "done"
