"""Notebook-defined code on the wire: a module, a tool or a metric pickled *by value*.

A class or function written in a notebook lives in ``__main__`` of the kernel, which a
bridge worker cannot import; ``cloudpickle`` ships its code by value instead.  The same
holds for a helper file next to the notebook (not installed, not on the worker's path), so
such a module is registered by value for the duration of one pickling.  Installed
libraries (DSPy, the standard library, this package) travel by reference: the worker has
them.

Loading code runs it, so a worker only calls :func:`unpack_code` after the server allowed
code for the caller (``serve --allow-code`` and the ``execute`` right; docs/architecture.md).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import types
from typing import Any

import cloudpickle

from ..errors import ProgramError

__all__ = ["pack_code", "unpack_code"]

_OWN_PACKAGE = __name__.split(".", 1)[0]


def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {os.path.realpath(paths[k]) for k in keys if paths.get(k)}
    roots.update(os.path.realpath(p) for p in sys.path if "-packages" in p)
    return tuple(sorted(roots))


def _is_installed(module: types.ModuleType) -> bool:
    """True when a worker can import ``module`` itself: builtin, stdlib, site-packages, ours."""
    name = module.__name__
    if name == "__main__":
        return False  # cloudpickle pickles __main__ by value already; never register it
    if name.split(".", 1)[0] == _OWN_PACKAGE or name in sys.builtin_module_names:
        return True
    path = getattr(module, "__file__", None)
    if not path:
        return True  # builtin or namespace: nothing to ship
    real = os.path.realpath(path)
    return any(real.startswith(root + os.sep) for root in _installed_roots())


def _local_modules(obj: Any) -> list[types.ModuleType]:
    """The non-installed modules that define ``obj`` (and, for a class, its bases)."""
    owners = list(obj.__mro__) if isinstance(obj, type) else [obj]
    found: dict[str, types.ModuleType] = {}
    for owner in owners:
        module = sys.modules.get(getattr(owner, "__module__", None) or "")
        if module is not None and not _is_installed(module):
            found[module.__name__] = module
    return list(found.values())


def pack_code(obj: Any, *, what: str) -> bytes:
    """Pickle ``obj`` by value for a bridge worker; ``what`` names it in errors.

    Raises :class:`ProgramError` naming ``what`` when the object cannot be pickled (an
    open file, a lock, a live connection in its closure...); nothing is sent then.
    """
    registered = []
    try:
        already = cloudpickle.list_registry_pickle_by_value()
        for module in _local_modules(obj):
            if module.__name__ not in already:  # the user's own registration stays theirs
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        return cloudpickle.dumps(obj)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code: any error is possible
        raise ProgramError(
            f"cannot ship {what} to the bridge worker: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def unpack_code(payload: bytes, *, what: str) -> Any:
    """Load what :func:`pack_code` made (worker side). Runs code: call only once allowed.

    A payload that does not load (a library the worker lacks, another Python version,
    corrupt bytes) is a :class:`ProgramError` naming ``what``.
    """
    try:
        return cloudpickle.loads(payload)
    except Exception as exc:
        raise ProgramError(
            f"cannot load {what} in the bridge worker: {type(exc).__name__}: {exc}"
        ) from exc
