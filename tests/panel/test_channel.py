"""The kernel side of the lab panel's channel, against a real IPython kernel.

Every message is validated against docs/panel-protocol.schema.json by the
client (tests/panel/kernel_client.py).
"""

from __future__ import annotations

from dspex_jupyter import Context
from dspex_jupyter.bridge.testing import ServerProcess

from .kernel_client import KernelSession, register_code


def by_label(contexts: list[dict], label: str) -> dict:
    matches = [c for c in contexts if label in c["labels"]]
    assert len(matches) == 1, f"no single context labelled {label!r} in {contexts}"
    return matches[0]


def variable(ctx: dict, name: str) -> dict:
    return next(v for v in ctx["variables"] if v["name"] == name)


def assert_contiguous(panel) -> None:
    seqs = panel.seqs()
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_register_code_is_silent_and_idempotent(kernel: KernelSession) -> None:
    code = register_code()
    assert "register(get_ipython())" in code
    kernel.execute(code, silent=True)
    kernel.execute(code, silent=True)
    kernel.execute("import dspex_jupyter.jupyter.panel as _p; _p.register(get_ipython())")
    hooks = kernel.evaluate(
        "sum(1 for cb in get_ipython().events.callbacks['post_run_cell'] "
        "if getattr(cb, '__name__', '') == 'post_run_cell' and type(getattr(cb, '__self__', None)).__name__ == 'PanelHub')"
    )
    assert hooks == 1
    # the silent code binds no names in the user namespace
    assert kernel.evaluate("[n for n in get_ipython().user_ns if 'dspex' in n.lower()]") == []


def test_snapshot_then_versioned_deltas(kernel: KernelSession) -> None:
    kernel.execute(register_code(), silent=True)
    kernel.execute(
        "from dspex_jupyter import Context, Variables\n"
        "snap_ctx = Context.start(name='snap')\n"
        "Variables.defvariable(snap_ctx, 'temperature', 'float', initial=0.7, "
        "constraints={'min': 0, 'max': 2})\n"
    )
    panel = kernel.open_panel()
    snapshot = panel.next()
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 1
    assert snapshot["protocol"] == 1
    ctx = by_label(snapshot["contexts"], "snap_ctx")
    assert ctx["name"] == "snap" and ctx["backend"] == "local"
    assert ctx["address"] is None and len(ctx["session_id"]) >= 8
    temperature = variable(ctx, "temperature")
    assert temperature["value"] == 0.7 and temperature["version"] == 1
    assert temperature["type"] == "float"
    assert temperature["constraints"] == {"min": 0, "max": 2}
    assert temperature["lock"] is None

    kernel.execute("snap_ctx.set('temperature', 1.25)")
    delta = panel.wait_for(lambda m: m["type"] == "variable")
    assert delta["context"] == ctx["id"] and delta["kind"] == "set"
    assert delta["variable"]["value"] == 1.25 and delta["variable"]["version"] == 2
    assert delta["variable"]["source"] == "api"

    kernel.execute("Variables.defvariable(snap_ctx, 'style', 'str', initial='terse')")
    registered = panel.wait_for(
        lambda m: m["type"] == "variable" and m["variable"]["name"] == "style"
    )
    assert registered["kind"] == "registered" and registered["variable"]["value"] == "terse"

    kernel.execute("snap_ctx.delete('style')")
    deleted = panel.wait_for(lambda m: m["type"] == "variable_deleted")
    assert deleted["name"] == "style" and deleted["context"] == ctx["id"]
    assert_contiguous(panel)
    panel.close()


def test_writes_from_threads_arrive_in_order(kernel: KernelSession) -> None:
    kernel.execute(register_code(), silent=True)
    kernel.execute(
        "from dspex_jupyter import Context, Variables\n"
        "thread_ctx = Context.start(name='threads')\n"
        "Variables.defvariable(thread_ctx, 'n', 'int', initial=0)\n"
    )
    panel = kernel.open_panel()
    panel.next()
    kernel.execute(
        "import threading\n"
        "def _bump(k):\n"
        "    for i in range(50):\n"
        "        thread_ctx.update('n', lambda v: v + 1)\n"
        "_ts = [threading.Thread(target=_bump, args=(k,)) for k in range(4)]\n"
        "[t.start() for t in _ts]; [t.join() for t in _ts]\n"
    )
    final = kernel.evaluate("thread_ctx.variable('n').version")
    assert kernel.evaluate("thread_ctx.get('n')") == 200
    last = panel.wait_for(
        lambda m: (
            m["type"] == "variable"
            and m["variable"]["name"] == "n"
            and m["variable"]["version"] == final
        )
    )
    assert last["variable"]["value"] == 200
    versions = [
        m["variable"]["version"]
        for m in panel.received
        if m["type"] == "variable" and m["variable"]["name"] == "n"
    ]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert_contiguous(panel)
    panel.close()


def test_edits_valid_invalid_and_unparsable(kernel: KernelSession) -> None:
    kernel.execute(register_code(), silent=True)
    kernel.execute(
        "from dspex_jupyter import Context, Variables\n"
        "edit_ctx = Context.start(name='edits')\n"
        "Variables.defvariable(edit_ctx, 'temperature', 'float', initial=0.7, "
        "constraints={'min': 0, 'max': 2})\n"
        "Variables.defvariable(edit_ctx, 'verbose', 'bool', initial=False)\n"
    )
    panel = kernel.open_panel()
    ctx = by_label(panel.next()["contexts"], "edit_ctx")
    cid = ctx["id"]

    panel.send(
        {"type": "edit", "request_id": "r1", "context": cid, "name": "temperature", "text": "1.5"}
    )
    ok = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r1")
    assert ok["ok"] is True and ok["error"] is None
    assert ok["variable"]["value"] == 1.5 and ok["variable"]["version"] == 2
    assert ok["variable"]["source"] == "panel"
    assert kernel.evaluate("edit_ctx.get('temperature')") == 1.5

    panel.send(
        {"type": "edit", "request_id": "r2", "context": cid, "name": "temperature", "text": "5"}
    )
    bad = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r2")
    assert bad["ok"] is False and "2" in bad["error"]  # names the broken maximum
    assert bad["variable"]["value"] == 1.5 and bad["variable"]["version"] == 2  # the real value
    assert kernel.evaluate("edit_ctx.get('temperature')") == 1.5

    panel.send(
        {"type": "edit", "request_id": "r3", "context": cid, "name": "temperature", "text": "warm"}
    )
    unparsable = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r3")
    assert unparsable["ok"] is False and "warm" in unparsable["error"]
    assert unparsable["variable"]["value"] == 1.5

    panel.send(
        {"type": "edit", "request_id": "r4", "context": cid, "name": "verbose", "text": "true"}
    )
    flag = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r4")
    assert flag["ok"] is True and flag["variable"]["value"] is True
    assert kernel.evaluate("edit_ctx.get('verbose')") is True

    panel.send({"type": "edit", "request_id": "r5", "context": cid, "name": "nope", "text": "1"})
    missing = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r5")
    assert missing["ok"] is False and missing["variable"] is None and "nope" in missing["error"]

    panel.send({"type": "edit", "request_id": "r6", "context": "no-such", "name": "x", "text": "1"})
    unknown = panel.wait_for(lambda m: m["type"] == "edit_result" and m["request_id"] == "r6")
    assert unknown["ok"] is False and "context" in unknown["error"]
    assert_contiguous(panel)
    panel.close()


def test_request_snapshot_and_context_lifecycle(kernel: KernelSession) -> None:
    kernel.execute(register_code(), silent=True)
    panel = kernel.open_panel()
    first = panel.next()
    assert first["type"] == "snapshot"
    # a context bound in a cell appears after that cell (post_run_cell), with its names
    kernel.execute("from dspex_jupyter import Context\nlife_ctx = Context.start(name='life')")
    added = panel.wait_for(
        lambda m: m["type"] == "context" and "life_ctx" in m["context"]["labels"]
    )
    cid = added["context"]["id"]
    assert added["context"]["variables"] == [] and added["context"]["runs"] == []
    kernel.execute("life_alias = life_ctx")
    relabelled = panel.wait_for(lambda m: m["type"] == "context" and m["context"]["id"] == cid)
    assert relabelled["context"]["labels"] == ["life_alias", "life_ctx"]

    # runs recorded on the context are pushed as they finish
    kernel.execute(
        "life_ctx.record_run({'program': 'qa', 'latency_ms': 12.5, "
        "'modules': [{'name': 'answer', 'kind': 'bridged', 'latency_ms': 11.0, "
        "'lm_usage': {'prompt_tokens': 10, 'completion_tokens': 3}, "
        "'variable_versions': {'temperature': 2}}]})"
    )
    run = panel.wait_for(lambda m: m["type"] == "run")
    assert run["context"] == cid and run["run"]["program"] == "qa"
    assert run["run"]["modules"][0]["lm_usage"]["prompt_tokens"] == 10

    panel.send({"type": "request_snapshot", "reason": "test"})
    again = panel.wait_for(lambda m: m["type"] == "snapshot")
    ctx = by_label(again["contexts"], "life_ctx")
    assert ctx["runs"][-1]["program"] == "qa"
    assert again["seq"] == panel.received[-2]["seq"] + 1  # numbering continues

    kernel.execute("life_ctx.stop()")
    removed = panel.wait_for(lambda m: m["type"] == "context_removed")
    assert removed["context"] == cid
    assert_contiguous(panel)
    panel.close()


def test_unknown_request_gets_an_error(kernel: KernelSession) -> None:
    kernel.execute(register_code(), silent=True)
    panel = kernel.open_panel()
    panel.next()
    # valid per the client's schema check is not required for this probe
    panel._shell_send("comm_msg", {"comm_id": panel.comm_id, "data": {"type": "bogus"}})
    error = panel.wait_for(lambda m: m["type"] == "error")
    assert "bogus" in error["message"]
    panel.close()


CHANNELS = "len(__import__('dspex_jupyter.jupyter.panel', fromlist=['_hub'])._hub.channels)"
SUBSCRIPTIONS = "len(close_ctx.provider._hub.subscriptions)"  # LocalState's watch hub
# the channels' observers on the context's one mirror (ctx.traits)
OBSERVERS = (
    "len(close_ctx.traits._trait_notifiers.get(__import__('traitlets').All, {}).get('dspex', []))"
)


def test_closing_the_comm_stops_the_watches(kernel: KernelSession) -> None:
    """Panels derive from the context's one mirror: however many are open, the
    context has one watch for them, and closing a comm drops its observer."""
    kernel.execute(register_code(), silent=True)
    kernel.execute(
        "from dspex_jupyter import Context, Variables\n"
        "close_ctx = Context.start(name='close')\n"
        "Variables.defvariable(close_ctx, 'x', 'int', initial=1)\n"
    )
    channels, subscriptions = kernel.evaluate(CHANNELS), kernel.evaluate(SUBSCRIPTIONS)
    panel, second = kernel.open_panel(), kernel.open_panel()
    assert panel.next()["type"] == "snapshot" and second.next()["type"] == "snapshot"
    assert kernel.evaluate(CHANNELS) == channels + 2
    assert kernel.evaluate(SUBSCRIPTIONS) == subscriptions + 1  # the mirror's, shared
    assert kernel.evaluate(OBSERVERS) == 2
    panel.close()
    second.close()
    kernel.execute(
        "import time\n"
        "for _ in range(600):\n"
        f"    if {CHANNELS} == {channels}: break\n"
        "    time.sleep(0.05)\n"
    )
    assert kernel.evaluate(CHANNELS) == channels
    assert kernel.evaluate(OBSERVERS) == 0
    assert kernel.evaluate(SUBSCRIPTIONS) == subscriptions + 1  # ctx.traits lives on
    kernel.execute("close_ctx.stop()")


def test_without_registration_the_kernel_refuses_the_comm() -> None:
    session = KernelSession()
    try:
        panel = session.open_panel()
        closed = panel.queue.get(timeout=60)
        assert closed == {"type": "__closed__"}
    finally:
        session.close()


def test_load_ext_registers_the_panel() -> None:
    session = KernelSession()
    try:
        session.execute("%load_ext dspex_jupyter")
        panel = session.open_panel()
        assert panel.next()["type"] == "snapshot"
        panel.close()
    finally:
        session.close()


def test_lock_holders_are_shown(kernel: KernelSession) -> None:
    """Real locks: the kernel's context is bridged to a server this test started; an
    optimizer in this (other) process leases a variable, and the lock events reach
    the panel with no cell running in the kernel."""
    server = ServerProcess("memory")
    optimizer = None
    try:
        kernel.execute(register_code(), silent=True)
        kernel.execute(
            "from dspex_jupyter import Context, Variables\n"
            f"lock_ctx = Context.start(name='locks', bridge={server.address!r}, "
            f"token={server.token!r})\n"
            "Variables.defvariable(lock_ctx, 'temperature', 'float', initial=0.5)\n"
        )
        sid = kernel.evaluate("lock_ctx.session_id")
        panel = kernel.open_panel()
        ctx = by_label(panel.next()["contexts"], "lock_ctx")
        assert ctx["backend"] == "bridged"
        assert ctx["locks"] == {} and variable(ctx, "temperature")["lock"] is None
        optimizer = Context.start(bridge=server.address, token=server.token, session_id=sid)
        lease = optimizer.acquire_lock(["temperature"], "optimizer-7", ttl_s=600)
        changed = panel.wait_for(
            lambda m: m["type"] == "context" and m["context"]["id"] == ctx["id"]
        )
        assert changed["context"]["locks"] == {"temperature": "optimizer-7"}
        assert variable(changed["context"], "temperature")["lock"] == "optimizer-7"
        optimizer.set("temperature", 0.6)  # the holder writes
        delta = panel.wait_for(lambda m: m["type"] == "variable")
        assert delta["variable"]["lock"] == "optimizer-7" and delta["variable"]["value"] == 0.6
        lease.release()
        released = panel.wait_for(
            lambda m: m["type"] == "context" and m["context"]["id"] == ctx["id"]
        )
        assert released["context"]["locks"] == {}
        assert variable(released["context"], "temperature")["lock"] is None
        assert_contiguous(panel)
        panel.close()
        kernel.execute("lock_ctx.stop()")
    finally:
        if optimizer is not None:
            optimizer.stop()
        server.stop()
