"""Errors across the wire: ``dspex_jupyter.errors`` <-> gRPC status codes.

The status code alone is lossy (``CycleError`` and ``ValidationError`` are both
``INVALID_ARGUMENT``), so the server also sends the exact class name and its
constructor arguments in trailing metadata, and the client rebuilds the same
class. A client talking to a server of another version still gets the right
base class from the code.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from .. import errors as E

__all__ = [
    "ERROR_KEY",
    "DETAIL_KEY",
    "status_for",
    "error_metadata",
    "error_from_rpc",
]

ERROR_KEY = "dspex-error"
DETAIL_KEY = "dspex-error-detail"


# Most specific first: the first isinstance match wins.
_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (E.VariableNotFound, grpc.StatusCode.NOT_FOUND),
    (E.SessionNotFound, grpc.StatusCode.NOT_FOUND),
    (E.VariableExists, grpc.StatusCode.ALREADY_EXISTS),
    (E.VersionConflict, grpc.StatusCode.ABORTED),
    (E.LockedError, grpc.StatusCode.FAILED_PRECONDITION),
    (E.AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (E.NotSupportedByBackend, grpc.StatusCode.UNIMPLEMENTED),
    (E.BridgeUnavailable, grpc.StatusCode.UNAVAILABLE),
    (E.ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (E.ProgramError, grpc.StatusCode.INVALID_ARGUMENT),
    (E.ModuleExecutionError, grpc.StatusCode.INTERNAL),
    (E.ContextClosed, grpc.StatusCode.FAILED_PRECONDITION),
]

_BY_CODE: dict[grpc.StatusCode, type[E.DSPexError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: E.ValidationError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: E.ValidationError,  # oversized message
    grpc.StatusCode.OUT_OF_RANGE: E.ValidationError,
    grpc.StatusCode.NOT_FOUND: E.VariableNotFound,
    grpc.StatusCode.ALREADY_EXISTS: E.VariableExists,
    grpc.StatusCode.ABORTED: E.VersionConflict,
    grpc.StatusCode.FAILED_PRECONDITION: E.LockedError,
    grpc.StatusCode.UNAUTHENTICATED: E.AccessDenied,
    grpc.StatusCode.PERMISSION_DENIED: E.AccessDenied,
    grpc.StatusCode.UNIMPLEMENTED: E.NotSupportedByBackend,
    grpc.StatusCode.UNAVAILABLE: E.BridgeUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: E.BridgeUnavailable,
    grpc.StatusCode.CANCELLED: E.BridgeUnavailable,
}

_CLASSES: dict[str, type[BaseException]] = {
    name: getattr(E, name) for name in E.__all__ if isinstance(getattr(E, name), type)
}


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _detail(exc: BaseException) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": str(exc)}
    for attr in ("name", "expected", "actual", "cycle", "holder", "operation", "backend"):
        value = getattr(exc, attr, None)
        if value is not None and isinstance(value, (str, int, list)):
            detail[attr] = value
    return detail


def error_metadata(exc: BaseException) -> tuple[tuple[str, str], ...]:
    """Trailing metadata naming the exact error class and its arguments."""
    return (
        (ERROR_KEY, type(exc).__name__),
        (DETAIL_KEY, json.dumps(_detail(exc), default=str)),
    )


def _rebuild(cls: type[BaseException], detail: dict[str, Any]) -> BaseException:
    message = detail.get("message", "")
    try:
        if issubclass(cls, E.VariableNotFound):
            missing = cls(detail.get("name", ""))
            missing.args = (message,)
            return missing
        if issubclass(cls, E.VersionConflict):
            return cls(detail["name"], detail["expected"], detail["actual"])
        if issubclass(cls, E.CycleError):
            return cls(detail["cycle"])
        if issubclass(cls, E.LockedError):
            return cls(message, detail.get("holder"))
        if issubclass(cls, E.NotSupportedByBackend):
            unsupported = cls(detail["operation"], detail["backend"])
            unsupported.args = (message,)
            return unsupported
        return cls(message)
    except (KeyError, TypeError):
        return E.DSPexError(message)


def error_from_rpc(err: grpc.RpcError, what: str = "bridge call") -> E.DSPexError:
    """The ``dspex_jupyter.errors`` instance an RPC failure stands for."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or ""
    trailing = {}
    try:
        trailing = dict(err.trailing_metadata() or ())
    except Exception:
        pass
    name = trailing.get(ERROR_KEY)
    if name in _CLASSES:
        try:
            detail = json.loads(trailing.get(DETAIL_KEY) or "{}")
        except ValueError:
            detail = {"message": details}
        detail.setdefault("message", details)
        return _rebuild(_CLASSES[name], detail)  # type: ignore[return-value]
    cls = _BY_CODE.get(code, E.BridgeUnavailable if code is None else E.DSPexError)
    message = f"{what} failed: {code.name if code else 'UNKNOWN'}: {details}"
    if cls is E.VariableNotFound:
        exc = E.VariableNotFound("?")
        exc.args = (message,)
        return exc
    if cls is E.VersionConflict:
        return E.DSPexError(message)  # pragma: no cover - the server always names it
    if cls is E.NotSupportedByBackend:
        return E.NotSupportedByBackend(what, "bridged", details)
    if cls is E.LockedError:
        return E.LockedError(message)
    return cls(message)
