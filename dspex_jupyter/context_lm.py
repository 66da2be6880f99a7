"""Which LM a context's bridged modules run on: ``ctx.lm_info()`` and ``%dspex lm``.

Either the provider configured with ``lm=`` / ``DSPEX_LM_*`` (model, API
base, sampling knobs; never the API key), or, with no LM configured, the
embedded model (``bridge/local_lm.py``), which the bridge server loads on the
first run that needs it. The run that loaded it reports its file, load time
and parallel slots once; :func:`note_local_lm` remembers that report per
server address, so every context on that server (the kernel's private server
is shared) can tell that the model is loaded.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from typing import Any

from .bridge.local_lm import model_path, wants_local
from .errors import LocalLMUnavailable

__all__ = ["describe_lm", "note_local_lm"]

_lock = threading.Lock()
_loaded: dict[str, dict[str, Any]] = {}  # server address -> what the loading run reported


def note_local_lm(address: str | None, info: Mapping[str, Any]) -> None:
    """Remember what the run that loaded the embedded model on ``address`` reported."""
    if address:
        with _lock:
            _loaded[address] = dict(info)


def describe_lm(lm_config: Mapping[str, Any], address: str | None) -> dict[str, Any]:
    """``{"kind": "configured", "model", "api_base", ...}`` or ``{"kind": "local", "file",
    "loaded", "load_s", "n_parallel", "available", "problem", ...}``; never an API key.

    A ``model`` variable bound by a program still takes precedence, run by run.
    """
    public = {k: v for k, v in lm_config.items() if k != "api_key"}
    if not wants_local(lm_config, {}):
        return {"kind": "configured", **public, "api_key_set": bool(lm_config.get("api_key"))}
    info: dict[str, Any] = {"kind": "local", **public, "model": public.get("model") or "local"}
    with _lock:
        seen = dict(_loaded.get(address or "", {}))
    if seen:
        info.update(seen, loaded=True, available=True, problem=None, address=address)
        return info
    problem = None
    try:
        path: str | None = model_path()
    except LocalLMUnavailable as exc:
        path, problem = None, str(exc)
    if problem is None and importlib.util.find_spec("xllamacpp") is None:
        problem = "xllamacpp (the llama.cpp runtime) is not installed: pip install 'dspex-jupyter[local-lm]'"
    info.update(
        file=path,
        loaded=False,
        load_s=None,
        n_parallel=None,
        available=problem is None,
        problem=problem,
        address=address,
    )
    return info
