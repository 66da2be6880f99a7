"""A transient status line in the running cell for the slow first steps.

Starting the bridge server and the first bridged run (its workers import DSPy,
and perhaps load the embedded model) take seconds; without a word the cell
only shows ``[*]``. The context reports those steps
(``Context.report_progress_with``); this shows each one as a line of text in
the cell (a display with an id) and blanks it when the step is done.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from ..context import Context

__all__ = ["show", "install", "uninstall"]


def _nothing() -> None:
    return None


def show(message: str) -> Callable[[], None]:
    """Show ``dspex: message`` in the cell running now; returns what blanks it again.

    Only in a kernel and on its main thread (a cell's own code): a tuning's
    worker threads do not write into whichever cell happens to run.
    """
    ipython = sys.modules.get("IPython")
    shell: Any = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return _nothing
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    from IPython.display import display

    handle = display({"text/plain": f"dspex: {message}"}, raw=True, display_id=True)
    if handle is None:
        return _nothing
    return lambda: handle.update({"text/plain": ""}, raw=True)


def install() -> None:
    Context.report_progress_with(show)


def uninstall() -> None:
    Context.report_progress_with(None)
