"""``BridgeServer``: the gRPC server, its token check, health service and session reaper."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ... import errors as E
from .._proto import dspex_bridge_pb2_grpc as pb_grpc
from ..errors import error_status
from ..production import MAX_LEASE_TTL_S, check_ttl
from ..store import Store
from .core import DEFAULT_TTL_S, MAX_SESSION_BYTES, MAX_SESSION_TTL_S, MAX_VALUE_BYTES
from .policy import ExecutionPolicy
from .servicer import BridgeServicer
from .session import CLOSED, EVENT_LIMIT, HISTORY_LIMIT, MAX_STREAMS_PER_PRINCIPAL, WATCH_QUEUE
from .users import Authenticator

__all__ = ["BridgeServer", "MAX_MESSAGE_BYTES", "MAX_SEND_BYTES", "SERVER_OPTIONS"]

log = logging.getLogger("dspex_jupyter.bridge")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a request larger than this is RESOURCE_EXHAUSTED
MAX_SEND_BYTES = 64 * 1024 * 1024  # exports and snapshots of big sessions
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
    ("grpc.so_reuseport", 0),
]


class _TokenAuth(grpc.ServerInterceptor):
    """Every RPC but the health check needs ``authorization: Bearer <token>``
    (the shared token, or a user's token from the users file).

    A refusal is ``UNAUTHENTICATED`` with the ``AccessDenied`` ErrorInfo, so the
    client raises ``AccessDenied``.
    """

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth
        denied = error_status(
            E.AccessDenied("missing or wrong bridge token"), grpc.StatusCode.UNAUTHENTICATED
        )

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort_with_status(denied)

        def deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            deny(request, context)
            yield  # pragma: no cover

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny_stream)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        if method.startswith("/grpc.health.v1.Health/"):
            return continuation(handler_call_details)
        if self._auth.user(handler_call_details.invocation_metadata) is not None:
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._deny_stream if handler.response_streaming else self._deny


class BridgeServer:
    """A running bridge server: gRPC, health service, session reaper."""

    def __init__(
        self,
        address: str,
        token: str | None,
        store: Store,
        *,
        users: str | None = None,
        max_sessions_per_principal: int = 32,
        max_lease_ttl_s: float = 300.0,
        max_session_ttl_s: float = MAX_SESSION_TTL_S,
        max_value_bytes: int = MAX_VALUE_BYTES,
        max_session_bytes: int = MAX_SESSION_BYTES,
        history_keep: int = HISTORY_LIMIT,
        tls: tuple[bytes, bytes] | None = None,
        max_workers: int = 512,
        default_ttl_s: float = DEFAULT_TTL_S,
        event_limit: int = EVENT_LIMIT,
        watch_queue: int = WATCH_QUEUE,
        workers: int | None = None,
        policy: ExecutionPolicy | None = None,
        max_streams_per_principal: int = MAX_STREAMS_PER_PRINCIPAL,
    ) -> None:
        if not isinstance(max_streams_per_principal, int) or max_streams_per_principal < 1:
            raise E.ValidationError(
                f"max_streams_per_principal (--max-streams-per-principal) must be an integer "
                f">= 1, got {max_streams_per_principal!r}"
            )
        auth = Authenticator(token, users)
        check_ttl(default_ttl_s, max_session_ttl_s, "the default session TTL")
        limits = (event_limit, watch_queue, history_keep, max_value_bytes, max_session_bytes)
        if min(limits) < 1:
            raise E.ValidationError(
                "event_limit, watch_queue, history_keep, max_value_bytes and "
                "max_session_bytes (--max-session-bytes) must be >= 1"
            )
        self.store = store
        self.servicer = BridgeServicer(
            store,
            default_ttl_s=default_ttl_s,
            event_limit=event_limit,
            watch_queue=watch_queue,
            workers=workers,
            policy=policy,
            auth=auth,
            max_value_bytes=max_value_bytes,
            max_session_bytes=max_session_bytes,
            history_keep=history_keep,
            max_streams_per_principal=max_streams_per_principal,
            max_sessions_per_principal=max_sessions_per_principal,
            max_lease_ttl_s=check_ttl(max_lease_ttl_s, MAX_LEASE_TTL_S, "max_lease_ttl_s"),
            max_session_ttl_s=check_ttl(max_session_ttl_s, float("1e9"), "max_session_ttl_s"),
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dspex-rpc"),
            interceptors=[_TokenAuth(auth)],
            options=SERVER_OPTIONS,
        )
        pb_grpc.add_DSPexBridgeServicer_to_server(self.servicer, self._server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        #: ``(certificate chain PEM, private key PEM)``: serve TLS (gRPC's ssl_server_credentials).
        self.tls = tls is not None
        if tls is not None:
            cert, key = tls
            try:
                credentials = grpc.ssl_server_credentials([(key, cert)])
            except Exception as exc:  # grpc raises a bare RuntimeError for bad PEM
                raise E.ValidationError(f"cannot use the TLS certificate/key: {exc}") from None
            port = self._server.add_secure_port(address, credentials)
        else:
            port = self._server.add_insecure_port(address)
        if not port and not address.startswith("unix"):
            raise E.BridgeUnavailable(f"cannot listen on {address!r}")
        if address.startswith("unix"):
            self.address = address
        else:
            self.address = f"{address.rsplit(':', 1)[0]}:{port}"
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="dspex-reaper", daemon=True)

    def start(self) -> BridgeServer:
        self._server.start()
        for service in ("", "dspex.bridge.v1.DSPexBridge"):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._reaper.start()
        return self

    def _reap_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.servicer.reap()
                self.servicer.expire_leases()
            except Exception:
                log.exception("session reaper failed")

    def prewarm_workers(self) -> None:
        """Start the DSPy worker pool now; the workers import DSPy in the background,
        so the first module run does not wait for it (``serve --prewarm``)."""
        self.servicer._worker_pool()

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        self.health.enter_graceful_shutdown()
        for session in list(self.servicer.sessions.values()):
            with session.lock:
                for watcher in session.watchers:
                    watcher.end(CLOSED)
        self._server.stop(grace).wait()
        self.servicer.close_workers()
        self.store.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)
