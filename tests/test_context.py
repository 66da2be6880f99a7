"""Context and the Variables API on the local backend."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import dspex_jupyter
from dspex_jupyter import Context, Variables, default_context
from dspex_jupyter.errors import (
    ContextClosed,
    DSPexError,
    NotSupportedByBackend,
    ValidationError,
    VariableExists,
    VariableNotFound,
)

from .conformance.helpers import Collector


@pytest.fixture
def ctx():
    with Context.start() as context:
        yield context


def test_import_is_light():
    code = (
        "import sys, dspex_jupyter; "
        "heavy = [m for m in ('dspy', 'grpc', 'ipywidgets', 'litellm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_errors_hierarchy():
    from dspex_jupyter import errors

    for name in (
        "ValidationError",
        "VariableNotFound",
        "NotSupportedByBackend",
        "BridgeUnavailable",
        "CycleError",
        "LockedError",
        "AccessDenied",
    ):
        assert issubclass(getattr(errors, name), DSPexError)


def test_starts_local_with_a_session_id(ctx):
    assert ctx.backend == "local"
    assert isinstance(ctx.session_id, str) and ctx.session_id
    assert ctx.address is None
    assert "local" in repr(ctx)


def test_variables_api_round_trip(ctx):
    Variables.defvariable(
        ctx, "temperature", "float", initial=0.7, constraints={"min": 0, "max": 2}
    )
    Variables.defvariable(
        ctx, "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
    )
    assert Variables.get(ctx, "temperature") == 0.7
    assert Variables.get(ctx, "missing", default=None) is None
    with pytest.raises(VariableNotFound):
        Variables.get(ctx, "missing")
    record = Variables.set(ctx, "temperature", 0.9, metadata={"by": "optimizer"})
    assert record.version == 2 and record.metadata["by"] == "optimizer"
    assert Variables.update(ctx, "temperature", lambda t: t / 3).value == pytest.approx(0.3)
    Variables.update_many(ctx, {"temperature": 1.0, "model": "claude-3"})
    assert Variables.get_many(ctx, ["temperature", "model"]) == {
        "temperature": 1.0,
        "model": "claude-3",
    }
    assert [v.name for v in Variables.list(ctx)] == ["model", "temperature"]
    assert Variables.info(ctx, "temperature").version == 4
    Variables.delete(ctx, "model")
    assert [v.name for v in Variables.list(ctx)] == ["temperature"]


def test_defvariable_is_idempotent_but_refuses_a_different_definition(ctx):
    Variables.defvariable(ctx, "t", "float", initial=0.7, constraints={"min": 0, "max": 2})
    Variables.set(ctx, "t", 1.5)
    again = Variables.defvariable(ctx, "t", "float", initial=0.7, constraints={"min": 0, "max": 2})
    assert again.value == 1.5 and again.version == 2  # a re-run cell keeps tuned values
    with pytest.raises(VariableExists):
        Variables.defvariable(ctx, "t", "float", initial=0.7, constraints={"min": 0, "max": 3})


def test_update_is_atomic_under_threads(ctx):
    Variables.defvariable(ctx, "n", "int", initial=0)
    threads = [
        threading.Thread(
            target=lambda: [Variables.update(ctx, "n", lambda v: v + 1) for _ in range(200)]
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Variables.get(ctx, "n") == 800


def test_watch_and_unwatch_through_the_api(ctx):
    Variables.defvariable(ctx, "t", "float", initial=0.5)
    seen = Collector()
    handle = Variables.watch(ctx, "t", seen, include_initial=True)
    Variables.set(ctx, "t", 0.6)
    assert [e.new_value for e in seen.wait_for(2)] == [0.5, 0.6]
    assert Variables.unwatch(ctx, handle) is True
    assert Variables.unwatch(ctx, handle) is False


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_dependency("a", "b"),
        lambda c: c.remove_dependency("a", "b"),
        lambda c: c.dependencies("a"),
        lambda c: c.topological_order(),
        lambda c: c.acquire_lock(["a"], "optimizer"),
        lambda c: c.release_lock(object()),
        lambda c: c.locks(),
        lambda c: c.grant("alice", ["read"]),
        lambda c: c.revoke("alice", ["read"]),
        lambda c: c.permissions("alice"),
        lambda c: Variables.history(c, "a"),
        lambda c: Variables.rollback(c, "a", 1),
    ],
)
def test_advanced_operations_say_they_need_the_bridge(ctx, call):
    with pytest.raises(NotSupportedByBackend) as info:
        call(ctx)
    assert info.value.backend == "local"
    assert info.value.operation in str(info.value)


def test_stop_releases_watchers_and_refuses_further_use():
    ctx = Context.start()
    Variables.defvariable(ctx, "t", "int", initial=1)
    handle = Variables.watch(ctx, ["t"], Collector())
    ctx.stop()
    ctx.stop()  # idempotent
    assert not handle.active
    assert ctx.backend == "stopped"
    with pytest.raises(ContextClosed):
        Variables.get(ctx, "t")
    with pytest.raises(ContextClosed):
        Variables.set(ctx, "t", 2)


def test_default_context_is_shared_and_renewed_after_stop():
    first = default_context()
    assert default_context() is first
    assert Variables.list(None) == first.list()
    first.stop()
    second = default_context()
    assert second is not first and second.backend == "local"


def test_several_contexts_are_isolated():
    with Context.start() as a, Context.start() as b:
        Variables.defvariable(a, "x", "int", initial=1)
        with pytest.raises(VariableNotFound):
            Variables.get(b, "x")
        assert a.session_id != b.session_id


def test_bad_options_are_typed_errors():
    with pytest.raises(ValidationError):
        Context.start(backend="redis")
    with pytest.raises(ValidationError):
        Context.start(lm="gpt-4")


def test_lm_config_from_environment(monkeypatch):
    monkeypatch.setenv("DSPEX_LM_MODEL", "gpt-4")
    monkeypatch.setenv("DSPEX_LM_API_BASE", "http://127.0.0.1:9/v1")
    with Context.start(lm={"model": "claude-3"}) as ctx:
        assert ctx.lm_config == {"model": "claude-3", "api_base": "http://127.0.0.1:9/v1"}


def test_run_listeners_are_isolated_from_failures(ctx):
    got = []
    ctx.add_run_listener(lambda run: 1 / 0)
    ctx.add_run_listener(got.append)
    ctx.record_run({"program": "p", "latency_ms": 1.0})
    assert got == [{"program": "p", "latency_ms": 1.0}] and list(ctx.runs) == got


def test_package_exports():
    for name in ("Context", "Variables", "default_context", "errors"):
        assert hasattr(dspex_jupyter, name)
