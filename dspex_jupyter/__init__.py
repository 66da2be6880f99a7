"""dspex-jupyter: build, run and tune DSPy programs in notebooks.

Importing this package is cheap: DSPy, gRPC and the Jupyter layer are imported
only when something needs them. This module is the top of the layers
(``docs/architecture.md``): it re-exports the public names and plugs the
Jupyter layer into ``Context`` (``ctx.traits``, ``ctx.widgets()``) without the
context importing it.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .api import Variables
from .context import Context, default_context
from .dsl import Program
from .tuning import Evaluation, load_dataset
from .variables.record import Variable, WatchEvent

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Variables",
    "Program",
    "Variable",
    "WatchEvent",
    "default_context",
    "errors",
    "load_dataset",
    "Evaluation",
    "Tuner",
    "TuningResult",
]


def __getattr__(name: str) -> Any:
    """``Tuner``/``TuningResult`` load on first use (their module may import Optuna)."""
    if name in ("Tuner", "TuningResult"):
        from .tuning import tuner

        return getattr(tuner, name)
    raise AttributeError(f"module 'dspex_jupyter' has no attribute {name!r}")


def _traits(context: Context) -> Any:
    from .jupyter import traits_for

    return traits_for(context)


def _widgets(context: Context) -> Any:
    from .jupyter import widgets_for

    return widgets_for(context)


Context.plug("traits", _traits)
Context.plug("widgets", _widgets)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dspex_jupyter``: register the magics (DSPy is not imported)."""
    from .jupyter import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .jupyter import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "dspex-jupyter"}]
