"""The one guard every bridge RPC goes through: ``@rpc(right=...)``.

A handler declares the right it needs and which variables it needs it on; the
decorator checks name lengths, resolves the session and the caller (the
token's user on a users-file server, else ``dspex-principal``; ``dspex-lease``
and ``dspex-client`` call metadata), hands the handler a
:class:`Call`, and turns every ``DSPexError`` the handler raises into a gRPC
status with a ``google.rpc.ErrorInfo`` detail (``bridge/errors.py``), which the
client decodes back into the same class.

The right is checked where the handler takes the session lock
(``with call.locked() as session:``), so the check and the write it guards
happen in one critical section (a concurrent revoke lands before or after,
never in between), and malformed input is still rejected before access is
considered, exactly as the handlers always did. A handler that returns without
ever taking the lock has not checked its right: that is a bug, and the call
fails with ``INTERNAL`` instead of succeeding unchecked. (The bearer token
itself is checked earlier, for every method, by the server's interceptor.)
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple, NoReturn

import grpc

from ... import errors as E
from ..errors import error_status
from .session import Session
from .users import Authenticator, User

__all__ = ["OWNER", "Call", "Caller", "abort", "caller_of", "rpc"]

log = logging.getLogger("dspex_jupyter.bridge")

#: The pseudo-right of ``Grant``/``Revoke``: only the session's owner principal has it.
OWNER = "owner"


class Caller(NamedTuple):
    """Who is calling: the principal, the lease ids it carries, its connection, whether admin."""

    principal: str
    leases: frozenset[str]
    client: str
    admin: bool = False


def caller_of(context: grpc.ServicerContext, auth: Authenticator | None = None) -> Caller:
    """The caller, from ``dspex-principal``, ``dspex-lease`` (comma-separated ids),
    ``dspex-client`` and, on a users-file server, the token.

    On a users-file server the principal is the token's user: a differing
    asserted ``dspex-principal`` is ``AccessDenied``, never honoured.
    """
    principal, client = "", ""
    leases: frozenset[str] = frozenset()
    metadata = context.invocation_metadata() or ()
    for key, value in metadata:
        if key == "dspex-principal":
            principal = value
        elif key == "dspex-lease":
            leases = frozenset(x for x in value.split(",") if x)
        elif key == "dspex-client":
            client = value
    if auth is None or not auth.shared:
        return Caller(principal, leases, client, admin=True)
    user = auth.user(metadata)
    if not isinstance(user, User):  # the interceptor lets no such call through
        raise E.AccessDenied("missing or wrong bridge token")
    if principal and principal != user.name:
        raise E.AccessDenied(f"this token belongs to {user.name!r}; it cannot act as {principal!r}")
    return Caller(user.name, leases, client, admin=user.admin)


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the RPC with ``exc``'s status code, message and ErrorInfo."""
    context.abort_with_status(error_status(exc))
    raise AssertionError("abort_with_status returned")  # pragma: no cover - it raises


class Call:
    """One RPC under way: its context, caller, session and the right it needs."""

    __slots__ = ("context", "caller", "session", "right", "names", "what", "checked")

    def __init__(
        self,
        context: grpc.ServicerContext,
        caller: Caller,
        session: Session | None,
        right: str | None,
        names: Sequence[str] | None,
        what: str,
    ) -> None:
        self.context = context
        self.caller = caller
        self.session = session
        self.right = right
        self.names = names
        self.what = what
        self.checked = right is None

    @property
    def live(self) -> Session:
        """The call's session (for handlers declared with a required session)."""
        if self.session is None:
            raise E.SessionNotFound("this call has no session")  # pragma: no cover - a bug
        return self.session

    @contextmanager
    def locked(self) -> Iterator[Session]:
        """Hold the session lock, with the call's right checked inside it."""
        session = self.live
        with session.lock:
            self._require(session)
            yield session

    def check(self) -> None:
        """Check the call's right now, when the handler needs no lock afterwards."""
        with self.locked():
            pass

    def _require(self, session: Session) -> None:
        """``AccessDenied`` unless the caller has the right (on every name, or session-wide)."""
        self.checked = True
        acl, principal = session.acl, self.caller.principal
        if self.right == OWNER:
            acl.require_owner(principal, self.what)
        elif self.right is not None and acl.enabled:
            if self.names is None:
                acl.require(principal, self.right, None, session.id)
            else:
                for name in self.names:
                    acl.require(principal, self.right, name, session.id)


Names = Callable[[Any], Sequence[str] | None]

#: The longest variable (or holder) name a request may carry.
MAX_NAME_CHARS = 256
_NAME_FIELDS = ("name", "holder", "variable")
_NAME_LISTS = ("names", "order")
_NAME_MAPS = ("values_json", "expected_versions", "bindings")


def check_names(request: Any) -> None:
    """``ValidationError`` for a name over 256 characters, quoting only its start
    (an error echoing a huge name would not fit a status and be ``RESOURCE_EXHAUSTED``)."""
    fields = request.DESCRIPTOR.fields_by_name
    found: list[str] = []
    for key in _NAME_FIELDS:
        if key in fields:
            found.append(getattr(request, key))
    for key in (*_NAME_LISTS, *_NAME_MAPS):
        if key in fields:
            found.extend(getattr(request, key))
    for key in ("bindings",):
        if key in fields:
            found.extend(getattr(request, key).values())
    for name in found:
        if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
            raise E.ValidationError(
                f"names must be at most {MAX_NAME_CHARS} characters; got one of {len(name)} "
                f"starting {name[:40]!r}"
            )


def rpc(
    right: str | None = None,
    *,
    names: Names | None = None,
    what: str = "",
    session: Literal["required", "optional", "none"] = "required",
    touch: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make ``handler(self, request, call)`` a servicer method ``(self, request, context)``.

    ``right``: "read", "write", "observe", "optimize", "execute", :data:`OWNER` or ``None``
    (the token suffices). ``names(request)``: the variables it is needed on
    (``None``: session-wide). ``what``: the operation, for the owner-only message.
    ``session``: "required" (``SessionNotFound`` if absent; any use but
    ``touch=False`` refreshes its TTL), "optional" (``call.session`` may be
    ``None``) or "none" (the handler creates it).
    """

    def prepare(servicer: Any, request: Any, context: grpc.ServicerContext) -> Call:
        check_names(request)
        if session == "required":
            found = servicer._session(request.session_id, touch=touch)
        elif session == "optional":
            found = servicer.sessions.get(request.session_id)
        else:
            found = None
        scope = None if names is None else names(request)
        return Call(
            context, caller_of(context, getattr(servicer, "auth", None)), found, right, scope, what
        )

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)
            def stream(servicer: Any, request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    yield from handler(servicer, request, prepare(servicer, request, context))
                except E.DSPexError as exc:
                    abort(context, exc)
                except RecursionError as exc:
                    abort(context, E.ValidationError(f"value is nested too deeply: {exc}"))

            return stream

        @functools.wraps(handler)
        def unary(servicer: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                call = prepare(servicer, request, context)
                reply = handler(servicer, request, call)
            except E.DSPexError as exc:
                abort(context, exc)
            except RecursionError as exc:
                abort(context, E.ValidationError(f"value is nested too deeply: {exc}"))
            if not call.checked and call.session is not None:
                log.error("%s returned without checking the %r right", handler.__name__, right)
                context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"{handler.__name__} returned without checking the {right!r} right",
                )
            return reply

        return unary

    return decorate
