"""Two real processes on one session of a shared server."""

from __future__ import annotations

import subprocess
import textwrap
import threading

from dspex_jupyter import Context
from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.errors import VersionConflict

from .conftest import PYTHON, WAIT_S, python_env


def _run(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=timeout,
    )


def test_a_set_in_one_process_reaches_the_other_process_watcher(server):
    ctx = Context.start(bridge=server.address, token=server.token)
    ctx.defvariable("temperature", "float", initial=0.7)
    got: list = []
    done = threading.Event()

    def on_change(event) -> None:
        got.append(event)
        if event.version >= 3:
            done.set()

    ctx.watch("temperature", on_change)
    result = _run(
        """
        import sys
        from dspex_jupyter import Context, Variables
        ctx = Context.start(bridge=sys.argv[1], token=sys.argv[2], session_id=sys.argv[3])
        assert ctx.get("temperature") == 0.7
        Variables.set(ctx, "temperature", 0.8)
        Variables.set(ctx, "temperature", 0.9, metadata={"from": "other"})
        ctx.stop()
        """,
        server.address,
        server.token,
        ctx.session_id,
    )
    assert result.returncode == 0, result.stderr
    assert done.wait(WAIT_S)
    assert [(e.version, e.new_value) for e in got] == [(2, 0.8), (3, 0.9)]
    assert got[1].old_value == 0.8 and got[1].metadata["from"] == "other"
    assert ctx.get("temperature") == 0.9  # the cache followed the other process's writes
    ctx.stop()


def test_concurrent_compare_and_set_conflicts_are_reported_never_lost(server):
    ctx = Context.start(bridge=server.address, token=server.token)
    ctx.defvariable("counter", "int", initial=0)
    per_process = 40
    code = """
        import sys
        from dspex_jupyter import Context
        from dspex_jupyter.errors import VersionConflict
        ctx = Context.start(bridge=sys.argv[1], token=sys.argv[2], session_id=sys.argv[3])
        done = conflicts = 0
        while done < int(sys.argv[4]):
            current = ctx.provider.get("counter")
            try:
                ctx.set("counter", current.value + 1, expected_version=current.version)
                done += 1
            except VersionConflict:
                conflicts += 1
        print(conflicts)
        ctx.stop()
    """
    args = (server.address, server.token, ctx.session_id, str(per_process))
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(code), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=python_env(),
        )
        for _ in range(2)
    ]
    mine = conflicts = 0
    while mine < per_process:  # this process competes too
        current = ctx.provider.get("counter")
        try:
            ctx.set("counter", current.value + 1, expected_version=current.version)
            mine += 1
        except VersionConflict:
            conflicts += 1
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        conflicts += int(out.strip())
    record = ctx.provider.client.call(  # straight from the server, not the cache
        "GetVariable", pb.GetVariableRequest(session_id=ctx.session_id, name="counter")
    )
    # every successful compare-and-set counted exactly once: nothing lost
    assert int(record.value_json) == 3 * per_process
    assert record.version == 3 * per_process + 1
    history = ctx.history("counter")
    assert [r.value for r in history] == list(range(0, 3 * per_process + 1))
    ctx.stop()
