"""Notebook-defined code on the wire: a module, a tool or a metric pickled *by value*.

A class or function written in a notebook lives in ``__main__`` of the kernel, which a
bridge worker cannot import; ``cloudpickle`` ships its code by value instead.  The same
holds for a helper file next to the notebook (not installed, not on the worker's path), so
such a module is registered by value for the duration of one pickling.  Installed
libraries (DSPy, the standard library, this package) travel by reference: the worker has
them.

Loading code runs it, so a worker only calls :func:`unpack_code` after the server allowed
code for the caller (``serve --allow-code`` and the ``execute`` right; docs/architecture.md).

In a spec, code is data like the rest: ``{"$code": what, "sha256": ..., "pickle": base64}``
(:func:`code_data`), so a spec stays printable, comparable and JSON. On the wire the client
lifts the bytes out into ``CodeObject`` messages (:func:`lift_code`) and the server puts them
back (:func:`inline_code`) after checking each ``what`` against its policy. This lives with
the specs (floor 3) because a spec builds it; ``bridge.code`` is its bridge-side name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import sysconfig
import types
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ProgramError

__all__ = [
    "pack_code",
    "unpack_code",
    "code_data",
    "load_code",
    "code_whats",
    "lift_code",
    "inline_code",
]

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
    import cloudpickle  # 50 ms: only when code is shipped, not on ``import dspex_jupyter``

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
    import cloudpickle

    try:
        return cloudpickle.loads(payload)
    except Exception as exc:
        raise ProgramError(
            f"cannot load {what} in the bridge worker: {type(exc).__name__}: {exc}"
        ) from exc


# ---------------------------------------------------------------- code inside a spec

_MARK = "$code"


def code_data(obj: Any, *, what: str) -> dict[str, str]:
    """``obj`` pickled as spec data: ``{"$code": what, "sha256": hex, "pickle": base64}``."""
    payload = pack_code(obj, what=what)
    return {
        _MARK: what,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "pickle": base64.b64encode(payload).decode("ascii"),
    }


def is_code(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(_MARK), str)


def load_code(data: Any) -> Any:
    """The object of a :func:`code_data` dict (worker side: runs code; call once allowed)."""
    what = str(data.get(_MARK)) if isinstance(data, dict) else "code"
    pickle = data.get("pickle") if isinstance(data, dict) else None
    if not isinstance(pickle, str):
        raise ProgramError(f"cannot load {what} in the bridge worker: its code was not sent")
    try:
        payload = base64.b64decode(pickle, validate=True)
    except ValueError as exc:
        raise ProgramError(f"cannot load {what} in the bridge worker: {exc}") from None
    return unpack_code(payload, what=what)


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if is_code(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def code_whats(spec: Any) -> list[str]:
    """What each piece of code in ``spec`` is (``"module MyModule"``...), in order."""
    return [str(data[_MARK]) for data in _walk(spec)]


def _map(value: Any, fn: Any) -> Any:
    if is_code(value):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map(v, fn) for v in value]
    return value


def lift_code(spec: Any) -> tuple[Any, list[tuple[str, bytes]]]:
    """``spec`` with each pickle replaced by its digest, and the ``(what, bytes)`` lifted out."""
    lifted: dict[str, tuple[str, bytes]] = {}

    def lift(data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("pickle"), str):
            lifted[str(data.get("sha256"))] = (
                str(data[_MARK]),
                base64.b64decode(data["pickle"]),
            )
        return {k: v for k, v in data.items() if k != "pickle"}

    return _map(spec, lift), list(lifted.values())


def inline_code(spec: Any, objects: Sequence[tuple[str, bytes]]) -> Any:
    """The inverse of :func:`lift_code`: each digest gets its bytes back (``ProgramError``
    for a digest no object matches). Nothing is unpickled here."""
    by_digest = {hashlib.sha256(payload).hexdigest(): payload for _what, payload in objects}

    def inline(data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("pickle"), str):
            return data
        payload = by_digest.get(str(data.get("sha256")))
        if payload is None:
            raise ProgramError(f"the code of {data[_MARK]} was not sent with the request")
        return {**data, "pickle": base64.b64encode(payload).decode("ascii")}

    return _map(spec, inline)
