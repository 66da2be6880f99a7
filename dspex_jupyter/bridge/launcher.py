"""The launcher: one private bridge server per process, tied to its lifetime.

When a context must bridge and no server is configured, the process gets a
private server: a child process on a Unix socket in a fresh 0700 directory,
with a random token. It is shared by the process's contexts (refcounted) and
stopped when the last of them stops or the process exits.

No orphans, ``kill -9`` included: the child reads a pipe on its stdin whose
only writer is this process, so when this process dies for any reason the
kernel closes the pipe, the child sees end-of-file and exits. (The child also
exits if it is re-parented, for the rare case where a forked child kept the
pipe open.)
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..errors import BridgeUnavailable
from .handshake import wait_ready

__all__ = ["PrivateServer", "acquire", "current", "READY_TIMEOUT_S"]

READY_TIMEOUT_S = 60.0  # generous: a cold start on a busy 2-core machine

_lock = threading.Lock()
_servers: dict[str, PrivateServer] = {}
#: A private server's one client is the kernel that owns it: its requests declare
#: their tools (by dotted path) and their LM endpoint, as the owner's own code, run the
#: owner's notebook-defined code, and its optimizers may hold leases for as long as
#: before (up to 7 days).
PRIVATE_FLAGS = (
    "--allow-client-lm",
    "--allow-client-tools",
    "--allow-code",
    "--max-lease-ttl",
    "604800",
)
_owner_pid = os.getpid()


class PrivateServer:
    """A running private server; ``release()`` gives back one reference."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.token = secrets.token_urlsafe(32)
        self.directory = tempfile.mkdtemp(prefix="dspex-bridge-")
        os.chmod(self.directory, 0o700)
        self.address = f"unix:{os.path.join(self.directory, 'bridge.sock')}"
        self.refs = 0
        env = dict(os.environ, DSPEX_BRIDGE_TOKEN=self.token)
        env.pop("DSPEX_BRIDGE", None)
        self._log_path = os.path.join(self.directory, "server.log")
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dspex_jupyter.bridge",
                    "serve",
                    "--listen",
                    self.address,
                    "--store",
                    store,
                    "--exit-with-parent",
                    *PRIVATE_FLAGS,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                close_fds=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-2000:].strip()
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            wait_ready(self.process, READY_TIMEOUT_S, "the private bridge server")
        except BridgeUnavailable as exc:
            tail = self._log_tail()
            raise BridgeUnavailable(f"{exc}: {tail}" if tail else str(exc)) from None
        channel = grpc.insecure_channel(self.address)
        try:  # READY is printed once it serves; this only confirms the health service
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=max(deadline - time.monotonic(), 5.0),
                wait_for_ready=True,
            )
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                raise BridgeUnavailable(
                    f"the private bridge server at {self.address} is not serving"
                )
        except grpc.RpcError as err:
            raise BridgeUnavailable(
                f"the private bridge server at {self.address} never became healthy: {err.code()}"
            ) from None
        finally:
            channel.close()

    def release(self) -> None:
        with _lock:
            self.refs -= 1
            if self.refs > 0:
                return
            if _servers.get(self.store) is self:
                del _servers[self.store]
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the lifeline pipe (the server exits on EOF); kill it if it lingers."""
        proc = self.process
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)


def acquire(store: str | None = None) -> PrivateServer:
    """This process's private server for ``store`` (spawned on first use), one more reference."""
    global _owner_pid
    store = store or "memory"
    with _lock:
        if os.getpid() != _owner_pid:  # a forked child gets its own server
            _servers.clear()
            _owner_pid = os.getpid()
        server = _servers.get(store)
        if server is None or server.process.poll() is not None:
            server = _servers[store] = PrivateServer(store)
        server.refs += 1
        return server


def current(store: str = "memory") -> PrivateServer | None:
    """This process's private server for ``store``, if one is running (for diagnostics)."""
    with _lock:
        if os.getpid() != _owner_pid:
            return None
        return _servers.get(store)


@atexit.register
def _stop_all() -> None:
    if os.getpid() != _owner_pid:
        return
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.stop()
