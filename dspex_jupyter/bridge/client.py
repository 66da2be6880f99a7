"""The client side of the bridge: one token-carrying channel to a server.

:mod:`~dspex_jupyter.bridge.connect` builds a context's
:class:`~dspex_jupyter.bridge.state.BridgedState` on top of it.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from ..errors import BridgeUnavailable, ModuleExecutionError, ValidationError
from ._proto import dspex_bridge_pb2_grpc as pb_grpc
from .config import CONNECT_TIMEOUT_S
from .errors import error_from_rpc

__all__ = ["BridgeClient", "normalize_address", "CHANNEL_OPTIONS"]

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", -1),  # the server enforces its own limit
    ("grpc.enable_retries", 0),
    # reconnect quickly after a server restart (the default backoff grows to minutes)
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
#: The deadline of one call. Requests are never re-sent, so writes stay exactly-once.
CALL_TIMEOUT_S = 20.0
RECONNECT_WAIT_S = 5.0


def normalize_address(address: str) -> str:
    """``HOST:PORT`` or ``unix:PATH`` (``unix://`` forms are accepted too)."""
    if not isinstance(address, str) or not address.strip():
        raise ValidationError(f"bridge address must be 'HOST:PORT' or 'unix:PATH', got {address!r}")
    address = address.strip()
    if address.startswith("unix:"):
        if len(address) <= len("unix:"):
            raise ValidationError(f"bridge address {address!r} has no socket path")
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValidationError(f"bridge address must be 'HOST:PORT' or 'unix:PATH', got {address!r}")
    return address


class BridgeClient:
    """One channel to a bridge server, with the token on every call.

    Every call also carries ``dspex-client`` (this connection's id: leases it
    acquires end a few seconds after its last watch stream closes) and, when
    given, ``dspex-principal`` (who is calling, for access control).
    With ``tls_ca`` (a PEM CA bundle) the channel is TLS and the server's
    certificate must chain to it.
    """

    def __init__(
        self,
        address: str,
        token: str | None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        principal: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        if principal is not None and (
            not isinstance(principal, str) or not principal or len(principal) > 256
        ):
            raise ValidationError(f"principal must be a 1..256 character string, got {principal!r}")
        self.address = normalize_address(address)
        self.principal = principal
        if tls_ca:  # TLS, verifying the server's certificate against this CA bundle
            try:
                with open(tls_ca, "rb") as f:
                    roots = f.read()
            except OSError as exc:
                raise ValidationError(f"cannot read the bridge CA file {tls_ca!r}: {exc}") from None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(self.address, credentials, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=connect_timeout)
        except grpc.FutureTimeoutError:
            self.channel.close()
            raise BridgeUnavailable(
                f"cannot reach the bridge server at {self.address} within {connect_timeout:g} s"
            ) from None
        self._state = grpc.ChannelConnectivity.READY
        self.channel.subscribe(self._on_state, try_to_connect=False)
        self.stub = pb_grpc.DSPexBridgeStub(self.channel)
        self.client_id = uuid.uuid4().hex
        metadata = [("dspex-client", self.client_id)]
        if token:
            metadata.insert(0, ("authorization", f"Bearer {token}"))
        if principal:
            metadata.append(("dspex-principal", principal))
        self.metadata: tuple[tuple[str, str], ...] = tuple(metadata)

    def _on_state(self, state: grpc.ChannelConnectivity) -> None:
        self._state = state

    @property
    def ready(self) -> bool:
        """Whether the connection to the server is up right now."""
        return self._state is grpc.ChannelConnectivity.READY

    def call(
        self,
        method: str,
        request: Any,
        timeout: float = CALL_TIMEOUT_S,
        extra_metadata: tuple[tuple[str, str], ...] = (),
        scope: Any = None,
    ) -> Any:
        """Call a unary RPC; failures become the matching ``dspex_jupyter.errors`` class.

        If the connection is not up (the server crashed or is restarting), the call
        first waits up to ``RECONNECT_WAIT_S`` for it to come back, then fails with
        ``BridgeUnavailable`` instead of hanging for the whole call timeout.

        With a ``scope`` (a :class:`~.cancel.CancelScope`), the call is made as a
        gRPC future registered with it: cancelling the scope cancels the call
        (the server sees it at once) and this raises ``ModuleExecutionError``.
        """
        if self._state is not grpc.ChannelConnectivity.READY:
            try:
                grpc.channel_ready_future(self.channel).result(timeout=RECONNECT_WAIT_S)
            except grpc.FutureTimeoutError:
                raise BridgeUnavailable(
                    f"{method} failed: the bridge server at {self.address} is unreachable "
                    f"(waited {RECONNECT_WAIT_S:g} s for it to come back)"
                ) from None
        try:
            metadata = self.metadata + extra_metadata if extra_metadata else self.metadata
            stub = getattr(self.stub, method)
            if scope is None:
                return stub(request, metadata=metadata, timeout=timeout)
            future = stub.future(request, metadata=metadata, timeout=timeout)
            scope.track(future)
            try:
                return future.result()
            finally:
                scope.untrack(future)
        except grpc.FutureCancelledError:
            raise ModuleExecutionError(f"{method} was cancelled") from None
        except grpc.RpcError as err:
            if scope is not None and scope.cancelled and err.code() == grpc.StatusCode.CANCELLED:
                raise ModuleExecutionError(f"{method} was cancelled") from None
            raise error_from_rpc(err, method) from None

    def close(self) -> None:
        self.channel.close()
