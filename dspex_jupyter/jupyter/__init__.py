"""The Jupyter layer: ``%load_ext dspex_jupyter``, the magics, traits and widgets.

A thin client of the public API (``Context`` and ``Variables``): it never
touches a backend, so everything here works unchanged on the local and the
bridged backend.

Importing this package is cheap on purpose (``%load_ext`` must stay fast and
must not import DSPy): ipywidgets is imported only when a widget is first
built, the Program DSL only when a program magic runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import Context
    from .traits import VariableTraits
    from .widgets import VariablesWidget

__all__ = [
    "load_ipython_extension",
    "unload_ipython_extension",
    "install_shell_hooks",
    "traits_for",
    "widgets_for",
    "sync",
]

log = logging.getLogger("dspex_jupyter.jupyter")

_PANEL_MODULE = "dspex_jupyter.jupyter.panel"


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%dspex`` / ``%%dspex`` magics (and the lab panel, if present).

    The kernel's default context is not created here: the magics and widgets
    call ``default_context()`` on first use, so loading stays cheap.
    """
    from .magics import DSPexMagics

    ipython.register_magics(DSPexMagics)
    install_shell_hooks(ipython)
    _call_panel(ipython, "register")


def install_shell_hooks(ipython: Any) -> None:
    """What a newcomer sees in cells: HTML for contexts, variables and runs, short
    dspex errors, and a status line on slow first steps. Idempotent; also run by
    the lab panel when it connects, for notebooks that never load the extension."""
    from . import progress, tracebacks
    from .display import register_formatters

    register_formatters(ipython)
    tracebacks.install(ipython)
    progress.install()


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics (``%unload_ext dspex_jupyter``); contexts are left running."""
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("dspex", None)
    manager.registry.pop("DSPexMagics", None)
    from . import progress, tracebacks

    tracebacks.uninstall(ipython)
    progress.uninstall()
    _call_panel(ipython, "unregister")


def _call_panel(ipython: Any, function: str) -> None:
    """Call ``panel.register``/``unregister`` if the lab-panel module provides it.

    A missing module is normal (the panel is optional); a failing one must not
    break ``%load_ext``, so it is logged with the reason instead.
    """
    try:
        if importlib.util.find_spec(_PANEL_MODULE) is None:
            return
        panel = importlib.import_module(_PANEL_MODULE)
        hook = getattr(panel, function, None)
        if hook is not None:
            hook(ipython)
    except Exception:
        log.warning(
            "dspex_jupyter: the JupyterLab panel hook %s.%s failed; the magics "
            "and widgets still work, the lab panel will not update",
            _PANEL_MODULE,
            function,
            exc_info=True,
        )


def traits_for(context: Context) -> VariableTraits:
    """``ctx.traits``: the context's variables as a ``HasTraits`` (cached per context)."""
    from .traits import traits_for as build

    return build(context)


def widgets_for(context: Context) -> VariablesWidget:
    """``ctx.widgets()``: an ipywidgets container with one control per variable."""
    from .widgets import widgets_for as build

    return build(context)


def sync(context: Context, timeout: float = 10.0) -> bool:
    """Wait until this context's traits and widgets have applied every change so far.

    Changes reach traits and widgets on a dispatcher thread, a moment after
    the write returns. Notebooks and tests call this before reading a widget
    that another thread or process just moved. True if everything caught up.
    """
    ok = True
    for key in ("jupyter.traits", "jupyter.widgets"):
        view = context.extensions.get(key)
        if view is not None:
            ok = view._dspex_sync(timeout) and ok
    return ok
