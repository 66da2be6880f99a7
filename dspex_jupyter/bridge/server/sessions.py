"""Session RPCs: create or join, keep alive, inspect, clean up.

InitializeSession (join), Heartbeat and GetSession need only the token;
CleanupSession needs the session-wide "write" right.

On a users-file server only admins create sessions: naming a missing session
creates it for an admin (even when the client asked to join, which is what
``Context.start(bridge=..., token=..., session_id=...)`` does) and is
``SessionNotFound`` for anyone else. The creator owns the session, access
control is on from the start (nobody else has a right until granted one), and
joining needs a grant. Each principal owns at most ``--max-sessions-per-principal``.
"""

from __future__ import annotations

import time
from typing import Any

from ... import errors as E
from .._proto import dspex_bridge_pb2 as pb
from ..production import check_ttl
from .core import ServicerCore
from .rpc import Call, rpc
from .session import Session

__all__ = ["SessionsMixin"]


class SessionsMixin(ServicerCore):
    @rpc(session="none")
    def InitializeSession(self, request: Any, call: Call) -> pb.SessionInfo:
        sid = request.session_id
        if not sid or len(sid) > 256:
            raise E.ValidationError(f"session_id must be 1..256 characters, got {sid!r}")
        if request.ttl_s:  # 0: the server's default
            check_ttl(request.ttl_s, self.max_session_ttl_s, "session ttl_s")
        shared = self.auth is not None and self.auth.shared
        caller = call.caller
        with self._sessions_lock:
            session = self.sessions.get(sid)
            if session is not None:
                if shared and not session.acl.permissions(caller.principal):
                    raise E.AccessDenied(
                        f"{caller.principal!r} has no right on session {sid!r}; "
                        "its owner must grant one first"
                    )
                session.last_seen = time.time()
                return session.info()
            if shared and not caller.admin:
                raise E.SessionNotFound(
                    f"no session {sid!r} on this bridge server; only an admin creates "
                    "sessions here (ask your teacher for the session id)"
                )
            if request.must_exist and not shared:
                raise E.SessionNotFound(
                    f"no session {sid!r} on this bridge server (it may have expired)"
                )
            if shared:
                owned = sum(1 for x in self.sessions.values() if x.acl.owner == caller.principal)
                if owned >= self.max_sessions_per_principal:
                    raise E.ValidationError(
                        f"{caller.principal!r} already owns {owned} sessions, the most this "
                        "server allows (--max-sessions-per-principal); clean one up first"
                    )
            session = Session(
                sid, request.ttl_s or self.default_ttl_s, time.time(), self.event_limit
            )
            session.acl.owner = caller.principal
            session.acl.enabled = shared
            self.store.save_session(sid, session.ttl_s, session.created_at)
            if session.acl.owner:
                meta: dict[str, Any] = {"owner": session.acl.owner}
                if shared:
                    meta["acl"] = session.acl.to_json()
                self.store.save_meta(sid, meta)
            self.sessions[sid] = session
            return session.info(created=True)

    @rpc()
    def Heartbeat(self, request: Any, call: Call) -> pb.SessionInfo:
        return call.live.info()

    @rpc(touch=False)
    def GetSession(self, request: Any, call: Call) -> pb.SessionInfo:
        return call.live.info()

    @rpc("write", session="optional")
    def CleanupSession(self, request: Any, call: Call) -> pb.CleanupSessionResponse:
        if call.session is None:
            return pb.CleanupSessionResponse(existed=False)
        call.check()
        self._drop(call.session)
        return pb.CleanupSessionResponse(existed=True)
