"""A bridge server in a real subprocess, for tests and benchmarks.

Nothing here is mocked: it runs ``python -m dspex_jupyter.bridge serve`` on a
real socket and can be stopped gracefully or killed with a real signal.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile

from ..errors import BridgeUnavailable
from .handshake import wait_ready
from .launcher import PRIVATE_FLAGS

__all__ = ["ServerProcess"]


class ServerProcess:
    """``serve`` in a child process; ``address`` and ``token`` once READY.

    ``private`` (the default) runs it as the launcher runs a kernel's private
    server (client-declared tools and LM endpoint); ``private=False`` runs a
    shared server, which accepts neither.
    """

    def __init__(
        self,
        store: str = "memory",
        *,
        listen: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        extra_args: list[str] | None = None,
        private: bool = True,
    ) -> None:
        self.store = store
        self.token = token or secrets.token_urlsafe(16)
        if listen is None:
            self._dir = tempfile.mkdtemp(prefix="dspex-test-bridge-")
            listen = f"unix:{os.path.join(self._dir, 'bridge.sock')}"
        self.listen = listen
        env = dict(os.environ, DSPEX_BRIDGE_TOKEN=self.token)
        env.pop("DSPEX_BRIDGE", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dspex_jupyter.bridge",
                "serve",
                "--listen",
                listen,
                "--store",
                store,
                *(PRIVATE_FLAGS if private else ()),
                *(extra_args or []),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.address = self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> str:
        try:
            return wait_ready(self.process, timeout, "the bridge server")
        except BridgeUnavailable:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(30)
        if self.process.stdout:
            self.process.stdout.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
