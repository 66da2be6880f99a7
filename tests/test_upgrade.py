"""The automatic upgrade LocalState -> BridgedState: atomic, lossless, watchers kept."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspex_jupyter import Context, Variables
from dspex_jupyter.errors import BridgeUnavailable

from .conformance.helpers import Collector


def _populate(ctx: Context) -> None:
    Variables.defvariable(
        ctx,
        "temperature",
        "float",
        initial=0.7,
        constraints={"min": 0, "max": 2},
        metadata={"description": "sampling temperature"},
    )
    Variables.defvariable(
        ctx, "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
    )
    Variables.defvariable(
        ctx, "vec", "embedding", initial=[0.1, 0.2], constraints={"dimensions": 2}
    )
    for value in (0.1, 0.2, 0.3):
        Variables.set(ctx, "temperature", value, source="optimizer")


def test_upgrade_migrates_every_variable_exactly():
    with Context.start() as ctx:
        _populate(ctx)
        before = ctx.list()
        assert ctx.backend == "local"
        assert ctx.ensure_bridged() is ctx
        assert ctx.backend == "bridged" and ctx.address
        assert ctx.list() == before  # values, versions, types, constraints, metadata, sources
        assert Variables.set(ctx, "temperature", 0.9).version == 5
        ctx.ensure_bridged()  # a no-op once bridged
        assert ctx.backend == "bridged"


def test_watchers_keep_firing_across_the_upgrade_without_gap_or_duplicate():
    with Context.start() as ctx:
        Variables.defvariable(ctx, "x", "int", initial=0)
        seen = Collector()
        handle = Variables.watch(ctx, ["x"], seen)
        stop = threading.Event()
        written: list[int] = []

        def writer() -> None:
            step = 0
            while not stop.is_set() or step < 50:
                step += 1
                written.append(Variables.set(ctx, "x", step).version)

        thread = threading.Thread(target=writer)
        thread.start()
        ctx.ensure_bridged()
        stop.set()
        thread.join()
        total = len(written)
        events = seen.wait_for(total)
        assert [e.version for e in events] == list(range(2, 2 + total))
        assert handle.active
        Variables.set(ctx, "x", -1)
        assert seen.wait_for(total + 1)[-1].new_value == -1


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(threads=st.integers(1, 4), writes=st.integers(5, 40))
def test_concurrent_writers_lose_nothing_during_the_switch(threads, writes):
    with Context.start() as ctx:
        for index in range(threads):
            Variables.defvariable(ctx, f"w{index}", "int", initial=0)
        start = threading.Barrier(threads + 1)

        def writer(index: int) -> None:
            start.wait()
            for step in range(1, writes + 1):
                Variables.set(ctx, f"w{index}", step)

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        ctx.ensure_bridged()
        for worker in workers:
            worker.join()
        assert ctx.backend == "bridged"
        for index in range(threads):
            record = ctx.variable(f"w{index}")
            assert (record.value, record.version) == (writes, writes + 1)


def test_failed_upgrade_leaves_the_context_local_and_intact(monkeypatch):
    monkeypatch.setenv("DSPEX_BRIDGE", "127.0.0.1:1")  # configured, unreachable
    monkeypatch.setenv("DSPEX_BRIDGE_TOKEN", "t")
    # nothing listens there: give up on connecting after 0.5 s rather than the default 15
    with Context.start(connect_timeout_s=0.5) as ctx:
        assert ctx.backend == "local"  # the environment configures the upgrade, never forces it
        _populate(ctx)
        before = ctx.list()
        seen = Collector()
        Variables.watch(ctx, ["temperature"], seen)
        with pytest.raises(BridgeUnavailable):
            ctx.ensure_bridged()
        assert ctx.backend == "local"
        assert ctx.list() == before
        Variables.set(ctx, "temperature", 1.5)
        assert seen.wait_for(1)[0].new_value == 1.5
