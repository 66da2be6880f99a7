"""Faults with real processes and real signals: kill -9 of the server and of the kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
import uuid

import pytest

from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import BridgeUnavailable, DSPexError

from .conftest import PYTHON, WAIT_S, python_env, wait_until


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.cond = threading.Condition()

    def __call__(self, event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_version(self, version: int, timeout: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: any(e.version >= version for e in self.events), timeout
            )


def test_kill9_server_during_writes_loses_no_acknowledged_write(tmp_path):
    db = tmp_path / "bridge.db"
    sock = f"unix:{tmp_path / 'bridge.sock'}"
    server = ServerProcess(f"sqlite:{db}", listen=sock)
    token = server.token
    sid = uuid.uuid4().hex
    watcher_state = BridgedState(BridgeClient(sock, token), sid)
    writer_state = BridgedState(BridgeClient(sock, token), sid, join=True)
    try:
        writer_state.register("x", "int", 0)
        watched = Collector()
        watcher_state.watch(["x"], watched)
        acked: list[int] = []  # values whose set returned
        stop = threading.Event()

        def writer() -> None:
            value = 0
            while not stop.is_set():
                value += 1
                try:
                    record = writer_state.set("x", value)
                except DSPexError:
                    return  # the server died under us: this write was not acknowledged
                acked.append(record.value)

        thread = threading.Thread(target=writer)
        thread.start()
        assert wait_until(lambda: len(acked) >= 30)
        server.kill(signal.SIGKILL)  # mid-stream of writes
        acked_before_kill = len(acked)
        with pytest.raises(BridgeUnavailable):
            writer_state.client.call(
                "ListVariables", writer_state._pb.SessionRequest(session_id=sid), timeout=1
            )
        stop.set()
        server = ServerProcess(f"sqlite:{db}", listen=sock, token=token)  # same file
        thread.join(WAIT_S)  # its in-flight write lands on the restarted server, or fails
        assert acked_before_kill >= 30
        history = writer_state.history("x")
        values = [r.value for r in history]
        assert set(acked) <= set(values), "an acknowledged write was lost"
        assert [r.version for r in history] == list(range(1, len(history) + 1))
        final = history[-1]

        # the watcher resumes from its last sequence number: no gap, no duplicate
        assert watched.wait_version(final.version)
        more = writer_state.set("x", -1)
        assert watched.wait_version(more.version)
        versions = [e.version for e in watched.events]
        assert versions == list(range(2, more.version + 1))
        assert wait_until(lambda: watcher_state.live and watcher_state.get("x").value == -1)
    finally:
        watcher_state.close()
        writer_state.close()
        server.stop()


def test_sessions_and_variables_reload_after_a_restart(tmp_path):
    db = tmp_path / "bridge.db"
    server = ServerProcess(f"sqlite:{db}")
    sid = uuid.uuid4().hex
    state = BridgedState(BridgeClient(server.address, server.token), sid)
    state.register("e", "embedding", [1, 2], constraints={"dimensions": 2}, metadata={"m": 1})
    state.register("c", "choice", "a", constraints={"choices": ["a", "b"]})
    state.set("c", "b")
    before = state.export_state()
    state.close()
    server.kill(signal.SIGKILL)
    server = ServerProcess(f"sqlite:{db}")
    state = BridgedState(BridgeClient(server.address, server.token), sid, join=True)
    try:
        assert state.export_state() == before
        assert state.get("e").value == (1.0, 2.0)
        assert [r.value for r in state.history("c")] == ["a", "b"]
        assert state.set("c", "a").version == 3
    finally:
        state.close()
        server.stop()


SPAWNER = """
import sys
from dspex_jupyter import Context
from dspex_jupyter.bridge import launcher
ctx = Context.start(backend="bridged")
ctx.defvariable("x", "int", initial=1)
print(launcher.current().pid, flush=True)
if sys.argv[1] == "wait":
    sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:\tZ") for line in f)
    except FileNotFoundError:
        return False


def _spawn(mode: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(SPAWNER), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )
    line = proc.stdout.readline()
    assert line.strip().isdigit(), proc.stderr.read() if proc.poll() is not None else line
    return proc, int(line)


def test_kill9_of_the_spawning_process_leaves_no_orphan_server():
    proc, server_pid = _spawn("wait")
    assert _alive(server_pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(WAIT_S)
    # the condition, not a clock: the server must go by itself however loaded the machine
    assert wait_until(lambda: not _alive(server_pid)), "the private server outlived its kernel"


def test_normal_exit_without_stop_leaves_no_orphan_server():
    proc, server_pid = _spawn("exit")
    proc.wait(WAIT_S)
    assert wait_until(lambda: not _alive(server_pid))


def test_a_crashed_server_gives_bridge_unavailable_not_a_hang(tmp_path):
    server = ServerProcess("memory")
    state = BridgedState(BridgeClient(server.address, server.token), uuid.uuid4().hex)
    try:
        state.register("x", "int", 1)
        server.kill(signal.SIGKILL)
        assert wait_until(lambda: not state.live)  # reads stop trusting the cache
        with pytest.raises(BridgeUnavailable):
            state.set("x", 2)
        with pytest.raises(BridgeUnavailable):
            state.get("x")
    finally:
        state.close()
