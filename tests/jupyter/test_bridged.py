"""On a shared bridged session, another process's writes move this kernel's traits and widgets.

Real processes and a real bridge server (``python -m dspex_jupyter.bridge serve``):
the same Jupyter layer, unchanged, on the bridged backend.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from dspex_jupyter import Context
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.jupyter import sync

from .conftest import wait_until

OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from dspex_jupyter import Context, Variables
    ctx = Context.start(bridge=sys.argv[1], token=sys.argv[2], session_id=sys.argv[3])
    for value in (0.2, 0.4, 1.9):
        Variables.set(ctx, "temperature", value)
    Variables.set(ctx, "model", "claude-3")
    Variables.defvariable(ctx, "added_elsewhere", "int", initial=7, constraints={"min": 0, "max": 9})
    ctx.stop()
    """
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess("memory")
    yield proc
    proc.stop()


@pytest.fixture
def bctx(server, monkeypatch) -> Iterator[Context]:
    monkeypatch.delenv("DSPEX_BRIDGE", raising=False)
    context = Context.start(bridge=server.address, token=server.token, name="shared")
    context.defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
    context.defvariable(
        "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
    )
    yield context
    context.stop()


def test_another_process_moves_widgets_and_traits_with_no_write_back(bctx, server):
    assert bctx.backend == "bridged"
    panel, traits = bctx.widgets(), bctx.traits
    echoes = []
    handle = bctx.watch(
        None, lambda e: echoes.append(e) if e.source in ("widget", "traits") else None
    )
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, server.address, server.token, bctx.session_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: panel.controls.get("added_elsewhere") is not None, 60)
    assert wait_until(lambda: panel.controls["temperature"].value == 1.9, 60)
    assert wait_until(lambda: traits.has_trait("added_elsewhere"), 60)
    assert sync(bctx, 60)
    assert traits.temperature == 1.9 and traits.model == "claude-3"
    assert panel.controls["model"].value == "claude-3"
    assert "v4" in panel.versions["temperature"].value
    assert panel.controls["added_elsewhere"].value == 7
    handle.flush(60)
    assert echoes == []  # updates that came from the backend were not written back
    bctx.unwatch(handle)


LOCKING_PROCESS = textwrap.dedent(
    """
    import sys
    from dspex_jupyter import Context
    ctx = Context.start(bridge=sys.argv[1], token=sys.argv[2], session_id=sys.argv[3])
    lease = ctx.acquire_lock(["temperature"], "optimizer-7", ttl_s=600)
    print("HELD", flush=True)
    sys.stdin.readline()  # hold the lease until told to release it
    ctx.set("temperature", 1.1)  # the holder may write
    lease.release()
    print("RELEASED", flush=True)
    sys.stdin.readline()
    ctx.stop()
    """
)


def test_a_lease_taken_elsewhere_disables_the_widget_and_names_its_holder(bctx, server):
    """Real locks: another process leases a variable; the lock events move the panel
    (no refresh, no cell), and an edit meanwhile is refused and snaps back."""
    panel = bctx.widgets()
    assert not panel.controls["temperature"].disabled
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKING_PROCESS, server.address, server.token, bctx.session_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "HELD"
        assert wait_until(lambda: panel.controls["temperature"].disabled, 60)
        assert "optimizer-7" in panel.lock_labels["temperature"].value
        assert not panel.controls["model"].disabled
        assert bctx.locks() == {"temperature": "optimizer-7"}
        panel.controls["temperature"].set_state({"value": 1.5})  # e.g. a stale front end
        assert bctx.get("temperature") == 0.7
        assert panel.controls["temperature"].value == 0.7
        assert "optimizer-7" in panel.message.value
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "RELEASED"
        assert wait_until(lambda: not panel.controls["temperature"].disabled, 60)
        assert panel.lock_labels["temperature"].value == ""
        assert wait_until(lambda: panel.controls["temperature"].value == 1.1, 60)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_widget_edit_on_the_bridged_backend(bctx):
    panel = bctx.widgets()
    sets = []
    handle = bctx.watch(None, lambda e: sets.append(e) if e.source == "widget" else None)
    panel.controls["temperature"].set_state({"value": 1.5})
    panel.controls["model"].set_state({"index": 1})
    assert bctx.get_many(["temperature", "model"]) == {"temperature": 1.5, "model": "claude-3"}
    assert handle.flush(60) and sync(bctx, 60)
    assert [(e.name, e.new_value) for e in sets] == [("temperature", 1.5), ("model", "claude-3")]
    bctx.unwatch(handle)


def test_widgets_survive_the_upgrade_from_local(server, monkeypatch):
    monkeypatch.setenv("DSPEX_BRIDGE", server.address)
    monkeypatch.setenv("DSPEX_BRIDGE_TOKEN", server.token)
    ctx = Context.start(name="upgrading")
    try:
        ctx.defvariable("steps", "int", initial=2, constraints={"min": 1})  # IntText
        panel, traits = ctx.widgets(), ctx.traits
        ctx.ensure_bridged()
        assert ctx.backend == "bridged"
        ctx.set("steps", 6)
        assert wait_until(lambda: panel.controls["steps"].value == 6, 60)
        assert wait_until(lambda: traits.steps == 6, 60)
        panel.controls["steps"].set_state({"value": 0})  # invalid: snaps back on this backend too
        assert panel.controls["steps"].value == 6 and "below min" in panel.message.value
        traits.steps = 9
        assert ctx.get("steps") == 9
    finally:
        ctx.stop()


def test_magics_bridge_the_context_and_show_history(shell, server, monkeypatch):
    from .conftest import run

    monkeypatch.setenv("DSPEX_BRIDGE", server.address)
    monkeypatch.setenv("DSPEX_BRIDGE_TOKEN", server.token)
    ctx = run(shell, "%dspex context new history-demo")
    try:
        run(shell, "%dspex def temperature float 0.7 min=0 max=2")
        run(shell, "%dspex set temperature 0.8")  # v2, still local
        info = run(shell, "%dspex context bridge")
        assert ctx.backend == "bridged"
        assert "bridged" in info._repr_mimebundle_()["text/plain"]
        run(shell, "%dspex set temperature 0.9")
        view = run(shell, "%dspex history temperature")
        assert [r.value for r in view.records][-1] == 0.9
        assert view.records[-1].version == 3
        bundle = view._repr_mimebundle_()
        assert "history of temperature" in bundle["text/plain"] and "<table" in bundle["text/html"]
        run(shell, "%dspex context stop")
        assert ctx.closed
    finally:
        if not ctx.closed:
            ctx.stop()
