"""Fixtures for the bridge tests: real server subprocesses on real sockets."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess

WAIT_S = 60.0  # generous: the machine is small and shared; a pass never waits this long


@pytest.fixture(autouse=True)
def _no_env_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their server explicitly; a developer's DSPEX_BRIDGE must not leak in."""
    monkeypatch.delenv("DSPEX_BRIDGE", raising=False)
    monkeypatch.delenv("DSPEX_BRIDGE_TOKEN", raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One in-memory bridge server per test module."""
    proc = ServerProcess("memory")
    yield proc
    proc.stop()


@pytest.fixture
def open_state(server: ServerProcess):
    """A factory of BridgedStates on ``server`` (fresh session unless one is named)."""
    made: list[BridgedState] = []

    def make(session_id: str | None = None, *, join: bool = False, srv=None) -> BridgedState:
        srv = srv or server
        return new_state(made, srv.address, srv.token, session_id or uuid.uuid4().hex, join=join)

    yield make
    for state in made:
        state.close()


def new_state(
    made: list[BridgedState],
    address: str,
    token: str,
    session_id: str,
    *,
    join: bool = False,
    principal: str | None = None,
) -> BridgedState:
    """A ``BridgedState`` on its own client, added to ``made`` (the fixture closes them)."""
    client = BridgeClient(address, token, principal=principal)
    try:
        state = BridgedState(client, session_id, join=join)
    except BaseException:
        client.close()
        raise
    made.append(state)
    return state


def python_env() -> dict[str, str]:
    """The environment for helper subprocesses: this checkout importable, no bridge config."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DSPEX_BRIDGE", None)
    env.pop("DSPEX_BRIDGE_TOKEN", None)
    return env


PYTHON = sys.executable


def wait_until(predicate, timeout: float = WAIT_S, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds; the generous timeout is a failure, never a pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid``, read from /proc (the worker processes of a server)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found
