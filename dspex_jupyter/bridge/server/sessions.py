"""Session RPCs: create or join, keep alive, inspect, clean up.

InitializeSession (join), Heartbeat and GetSession need only the token;
CleanupSession needs the session-wide "write" right.
"""

from __future__ import annotations

import time
from typing import Any

from ... import errors as E
from .._proto import dspex_bridge_pb2 as pb
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
        if request.ttl_s < 0:
            raise E.ValidationError(f"ttl_s must be >= 0, got {request.ttl_s}")
        with self._sessions_lock:
            session = self.sessions.get(sid)
            if session is not None:
                session.last_seen = time.time()
                return session.info()
            if request.must_exist:
                raise E.SessionNotFound(
                    f"no session {sid!r} on this bridge server (it may have expired)"
                )
            session = Session(
                sid, request.ttl_s or self.default_ttl_s, time.time(), self.event_limit
            )
            session.acl.owner = call.caller.principal
            self.store.save_session(sid, session.ttl_s, session.created_at)
            if session.acl.owner:
                self.store.save_meta(sid, {"owner": session.acl.owner})
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
