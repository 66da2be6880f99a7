"""Errors across the wire: ``dspex_jupyter.errors`` <-> gRPC statuses with details.

The status code alone is lossy (``CycleError`` and ``ValidationError`` are both
``INVALID_ARGUMENT``), so every error status also carries a ``google.rpc.Status``
(``grpcio-status``) with one packed ``google.rpc.ErrorInfo``: ``reason`` is the
exact class name and ``metadata`` its fields (``name``, ``expected``, ...). The
client rebuilds the same class with the same fields. A client talking to a
server that sends no details still gets the right base class from the code.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from .. import errors as E

__all__ = [
    "DOMAIN",
    "OutOfRange",
    "TooManyStreams",
    "error_reason",
    "status_for",
    "error_info",
    "error_status",
    "error_from_rpc",
]

#: ``ErrorInfo.domain`` of every error this package sends.
DOMAIN = "dspex-jupyter"


class OutOfRange(E.ValidationError):
    """A watch resume position no longer retained (``OUT_OF_RANGE`` on the wire).

    Not a public class: a client rebuilds it from the code, as a ``ValidationError``.
    """


class TooManyStreams(E.BridgeUnavailable):
    """A watch stream beyond ``--max-streams-per-principal`` (``RESOURCE_EXHAUSTED``).

    Not a public class: the client's stream loop recognises it by its ErrorInfo
    reason and backs off instead of retrying at once.
    """


# Most specific first: the first isinstance match wins.
_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (E.VariableNotFound, grpc.StatusCode.NOT_FOUND),
    (E.SessionNotFound, grpc.StatusCode.NOT_FOUND),
    (E.VariableExists, grpc.StatusCode.ALREADY_EXISTS),
    (E.VersionConflict, grpc.StatusCode.ABORTED),
    (E.LockedError, grpc.StatusCode.FAILED_PRECONDITION),
    (E.AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (E.NotSupportedByBackend, grpc.StatusCode.UNIMPLEMENTED),
    (TooManyStreams, grpc.StatusCode.RESOURCE_EXHAUSTED),
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

#: The error fields that cross the wire, and their types (metadata values are strings).
_FIELDS: dict[str, type] = {
    "name": str,
    "expected": int,
    "actual": int,
    "cycle": list,
    "holder": str,
    "operation": str,
    "backend": str,
}


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_info(exc: BaseException) -> error_details_pb2.ErrorInfo:
    """``ErrorInfo(reason=<class name>, metadata=<the error's fields>)``."""
    info = error_details_pb2.ErrorInfo(reason=type(exc).__name__, domain=DOMAIN)
    for field, kind in _FIELDS.items():
        value = getattr(exc, field, None)
        if isinstance(value, kind) and not isinstance(value, bool):
            info.metadata[field] = json.dumps(value) if kind is list else str(value)
    return info


def error_status(exc: BaseException, code: grpc.StatusCode | None = None) -> grpc.Status:
    """The status to abort an RPC with for ``exc``: its code, message and ErrorInfo."""
    code = status_for(exc) if code is None else code
    detail = any_pb2.Any()
    detail.Pack(error_info(exc))
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=str(exc), details=[detail])
    )


def _decoded_fields(info: error_details_pb2.ErrorInfo) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, text in info.metadata.items():
        kind = _FIELDS.get(field)
        try:
            if kind is int:
                fields[field] = int(text)
            elif kind is list:
                fields[field] = [str(x) for x in json.loads(text)]
            elif kind is str:
                fields[field] = text
        except (ValueError, TypeError):
            continue  # a malformed field is dropped; _rebuild then falls back
    return fields


def _error_info_of(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo in the call's ``grpc-status-details-bin``, if there is one."""
    try:
        status = rpc_status.from_call(err)
    except Exception:  # not a call, or details that do not match the status
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == DOMAIN:
                return info
    return None


def error_reason(err: grpc.RpcError) -> str | None:
    """The ErrorInfo reason (the error class name) of a failed call, if it has one."""
    info = _error_info_of(err)
    return None if info is None else info.reason


def _rebuild(cls: type[BaseException], message: str, fields: dict[str, Any]) -> BaseException:
    try:
        if issubclass(cls, E.VariableNotFound):
            missing = cls(fields.get("name", ""))
            missing.args = (message,)
            return missing
        if issubclass(cls, E.VersionConflict):
            return cls(fields["name"], fields["expected"], fields["actual"])
        if issubclass(cls, E.CycleError):
            return cls(fields["cycle"])
        if issubclass(cls, E.LockedError):
            return cls(message, fields.get("holder"))
        if issubclass(cls, E.NotSupportedByBackend):
            unsupported = cls(fields["operation"], fields["backend"])
            unsupported.args = (message,)
            return unsupported
        return cls(message)
    except (KeyError, TypeError):
        return E.DSPexError(message)


def error_from_rpc(err: grpc.RpcError, what: str = "bridge call") -> E.DSPexError:
    """The ``dspex_jupyter.errors`` instance an RPC failure stands for."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or ""
    info = _error_info_of(err)
    if info is not None and info.reason in _CLASSES:
        return _rebuild(_CLASSES[info.reason], details, _decoded_fields(info))  # type: ignore[return-value]
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
