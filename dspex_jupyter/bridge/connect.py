"""``open_bridged_state``: what ``Context.ensure_bridged`` calls to reach its session.

It reaches the configured server (``bridge=`` / ``DSPEX_BRIDGE``) or the
process's private one (spawned by the :mod:`~dspex_jupyter.bridge.launcher`),
opens the session there and returns the
:class:`~dspex_jupyter.bridge.state.BridgedState`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import launcher
from .client import BridgeClient
from .config import BridgeConfig
from .state import BridgedState

__all__ = ["open_bridged_state"]


def _once(fn: Callable[[], Any]) -> Callable[[], None]:
    lock = threading.Lock()
    done = [False]

    def run() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        fn()

    return run


def open_bridged_state(config: BridgeConfig) -> BridgedState:
    """Reach (or spawn) the configured bridge server and open the session there.

    A private server spawned for this process is released when the returned
    state closes (the server stops with its last user).
    """
    release: Callable[[], None] | None = None
    token: str | None
    if config.address is None:
        server = launcher.acquire(store=config.store)
        address, token = server.address, server.token
        release = _once(server.release)
    else:
        address, token = config.address, config.token
    try:
        client = BridgeClient(
            address,
            token,
            principal=config.principal,
            connect_timeout=config.connect_timeout_s,
            # a private server is a Unix socket of this process: no TLS there
            tls_ca=config.tls_ca if release is None else None,
        )
        try:
            return BridgedState(
                client,
                config.session_id,
                ttl_s=config.session_ttl_s,
                on_close=release,
                # A private server's sessions belong to this context alone: drop
                # them on stop. On a shared server others may have joined; idle
                # sessions there expire with their TTL.
                cleanup_on_close=release is not None,
            )
        except BaseException:
            client.close()
            raise
    except BaseException:
        if release is not None:
            release()
        raise
