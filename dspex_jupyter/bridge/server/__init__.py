"""The bridge server: sessions of versioned variables, watch streams, history.

Split by concern; every RPC goes through one guard, ``@rpc(right=...)``
(``rpc.py``), which resolves the session and the caller, checks the right and
turns typed errors into statuses with ``google.rpc.ErrorInfo`` details:

* ``session.py`` -- a session's live state and a watch stream's bounded queue;
* ``core.py`` -- the sessions of a server, the one write path, lease expiry;
* ``sessions.py``, ``variables.py``, ``watch.py``, ``production.py``
  (dependencies, locks, access control), ``execute.py`` -- the RPCs;
* ``servicer.py`` -- ``BridgeServicer``, composed from those;
* ``users.py`` -- the users file and the token check (``Authenticator``);
* ``policy.py`` -- what a module run may do: registered tools, the LM endpoint;
* ``app.py`` -- ``BridgeServer``: gRPC (TLS optional), the token check, health, the reaper.

Who calls: on a users-file server, the user whose token the call carries
(a differing ``dspex-principal`` is refused); with one shared token, the
``dspex-principal`` the call asserts (cooperative access control). Also
``dspex-lease`` (the lease ids a write carries; only the acquirer ever sees
one, and Renew/Release also need the acquiring principal) and
``dspex-client`` (the connection: its leases end ``LEASE_DISCONNECT_GRACE_S``
after its last watch stream closes). The right each RPC needs is in its
module's docstring and on its ``@rpc`` line.
"""

from __future__ import annotations

from .app import MAX_MESSAGE_BYTES, MAX_SEND_BYTES, SERVER_OPTIONS, BridgeServer
from .core import DEFAULT_TTL_S
from .servicer import BridgeServicer
from .session import EVENT_LIMIT, HISTORY_LIMIT, WATCH_QUEUE, Session

__all__ = [
    "BridgeServer",
    "BridgeServicer",
    "Session",
    "MAX_MESSAGE_BYTES",
    "MAX_SEND_BYTES",
    "SERVER_OPTIONS",
    "DEFAULT_TTL_S",
    "EVENT_LIMIT",
    "HISTORY_LIMIT",
    "WATCH_QUEUE",
]
