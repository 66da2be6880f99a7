"""The StateProvider contract, written once and run against every backend."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from dspex_jupyter.errors import (
    ValidationError,
    VariableExists,
    VariableNotFound,
    VersionConflict,
)

from .helpers import WAIT_S, Collector


def _define_basics(provider):
    provider.register("temperature", "float", 0.7, constraints={"min": 0.0, "max": 2.0})
    provider.register("model", "choice", "gpt-4", constraints={"choices": ["gpt-4", "claude-3"]})
    provider.register("steps", "int", 3, constraints={"min": 1, "max": 10})


# --------------------------------------------------------------------------- register / get


def test_register_returns_first_version(provider):
    record = provider.register(
        "temperature",
        "float",
        1,
        constraints={"min": 0, "max": 2},
        metadata={"description": "LM sampling temperature"},
        source="test",
    )
    assert record.version == 1
    assert record.value == 1.0 and type(record.value) is float
    assert record.type == "float"
    assert dict(record.constraints) == {"min": 0, "max": 2}
    assert dict(record.metadata) == {"description": "LM sampling temperature"}
    assert record.source == "test"
    assert provider.get("temperature") == record


def test_register_twice_is_refused_and_changes_nothing(provider):
    provider.register("x", "int", 1)
    with pytest.raises(VariableExists):
        provider.register("x", "str", "one")
    assert provider.get("x").value == 1 and provider.get("x").version == 1


@pytest.mark.parametrize(
    "args",
    [
        ("bad name", "int", 1, None),
        ("x", "complex", 1, None),
        ("x", "int", 1.5, None),
        ("x", "float", 3.0, {"max": 2.0}),
        ("x", "float", 0.5, {"min": 1.0, "max": 0.0}),
        ("x", "float", 0.5, {"maximum": 1}),
        ("x", "choice", "a", None),
        ("x", "choice", "c", {"choices": ["a", "b"]}),
    ],
)
def test_bad_definitions_are_refused(provider, args):
    name, type_, initial, constraints = args
    with pytest.raises(ValidationError):
        provider.register(name, type_, initial, constraints=constraints)
    assert provider.list() == []


def test_unknown_variable_errors(provider):
    provider.register("temperature", "float", 0.7)
    with pytest.raises(VariableNotFound, match="did you mean 'temperature'"):
        provider.get("temprature")
    with pytest.raises(VariableNotFound):
        provider.set("nope", 1)
    with pytest.raises(VariableNotFound):
        provider.delete("nope")
    with pytest.raises(VariableNotFound):
        provider.get_many(["temperature", "nope"])
    with pytest.raises(VariableNotFound):
        provider.update_many({"temperature": 0.1, "nope": 1})
    assert provider.get("temperature").version == 1


# --------------------------------------------------------------------------- set


def test_set_bumps_version_and_records_source(provider):
    _define_basics(provider)
    first = provider.set("temperature", 0.9, source="optimizer")
    second = provider.set("temperature", 0.9)
    assert (first.version, second.version) == (2, 3)
    assert first.source == "optimizer"
    assert provider.get("temperature").value == 0.9
    assert provider.get("temperature").version == 3


@pytest.mark.parametrize(
    "name,value",
    [
        ("temperature", "0.9"),
        ("temperature", True),
        ("temperature", 2.5),
        ("temperature", float("nan")),
        ("model", "gpt-5"),
        ("steps", 2.0),
        ("steps", 11),
    ],
)
def test_invalid_set_changes_nothing(provider, name, value):
    _define_basics(provider)
    before = provider.get(name)
    with pytest.raises(ValidationError):
        provider.set(name, value)
    assert provider.get(name) == before


def test_compare_and_set(provider):
    _define_basics(provider)
    assert provider.set("steps", 4, expected_version=1).version == 2
    with pytest.raises(VersionConflict) as info:
        provider.set("steps", 5, expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert provider.get("steps").value == 4


def test_metadata_is_merged_on_set(provider):
    provider.register("t", "float", 0.5, metadata={"unit": "none", "owner": "me"})
    provider.set("t", 0.6, metadata={"reason": "tuned"})
    assert dict(provider.get("t").metadata) == {"unit": "none", "owner": "me", "reason": "tuned"}
    with pytest.raises(ValidationError):
        provider.set("t", 0.7, metadata={"bad": object()})
    assert provider.get("t").version == 2


# --------------------------------------------------------------------------- many / list / delete


def test_get_many_and_list(provider):
    _define_basics(provider)
    many = provider.get_many(["steps", "model"])
    assert {k: v.value for k, v in many.items()} == {"steps": 3, "model": "gpt-4"}
    assert [v.name for v in provider.list()] == ["model", "steps", "temperature"]


def test_update_many_is_all_or_nothing(provider):
    _define_basics(provider)
    with pytest.raises(ValidationError):
        provider.update_many({"temperature": 0.2, "steps": 99})
    assert provider.get("temperature").version == 1
    assert provider.get("temperature").value == 0.7
    records = provider.update_many({"temperature": 0.2, "steps": 5}, source="batch")
    assert {n: (r.value, r.version, r.source) for n, r in records.items()} == {
        "temperature": (0.2, 2, "batch"),
        "steps": (5, 2, "batch"),
    }


def test_update_many_compare_and_set(provider):
    _define_basics(provider)
    provider.set("steps", 4)
    with pytest.raises(VersionConflict):
        provider.update_many({"temperature": 0.1, "steps": 6}, expected_versions={"steps": 1})
    assert provider.get("temperature").version == 1
    provider.update_many({"temperature": 0.1, "steps": 6}, expected_versions={"steps": 2})
    assert provider.get("steps").value == 6


def test_delete(provider):
    _define_basics(provider)
    provider.delete("steps")
    assert "steps" not in [v.name for v in provider.list()]
    with pytest.raises(VariableNotFound):
        provider.get("steps")
    provider.register("steps", "str", "again")  # the name is free again
    assert provider.get("steps").value == "again"


# --------------------------------------------------------------------------- export / import


def test_export_import_round_trip_exactly(make_provider):
    source = make_provider()
    _define_basics(source)
    source.register("vec", "embedding", [1, 2, 3], constraints={"dimensions": 3})
    source.register("grid", "tensor", [[1, 2], [3, 4]], constraints={"shape": [2, 2]})
    source.register("flag", "bool", False, metadata={"k": [1, "two"]})
    for value in (0.1, 0.2, 0.3):
        source.set("temperature", value, source="opt")
    snapshot = source.export_state()
    assert json.loads(json.dumps(snapshot)) == snapshot  # JSON-safe

    target = make_provider()
    target.import_state(snapshot)
    assert target.list() == source.list()
    assert target.export_state() == snapshot
    assert target.get("temperature").version == 4
    assert target.set("temperature", 0.4).version == 5


def test_import_is_atomic_and_refuses_clashes(make_provider):
    source = make_provider()
    _define_basics(source)
    snapshot = source.export_state()
    target = make_provider()
    target.register("steps", "int", 7)
    with pytest.raises(VariableExists):
        target.import_state(snapshot)
    assert [v.name for v in target.list()] == ["steps"]
    broken = json.loads(json.dumps(snapshot))
    broken["variables"][-1]["value"] = "not a float"
    with pytest.raises(ValidationError):
        make_provider().import_state(broken)
    target.import_state(snapshot, replace=True)
    assert target.get("steps").value == 3
    assert target.get("steps").version == 2  # never goes back in version


def test_backend_identity(provider):
    assert provider.name in ("local", "bridged")
    assert provider.requires_bridge == (provider.name == "bridged")


# --------------------------------------------------------------------------- watch


def test_watch_delivers_in_version_order_with_shape(provider):
    _define_basics(provider)
    seen = Collector()
    provider.watch(["temperature"], seen)
    for value in (0.1, 0.2, 0.3):
        provider.set("temperature", value, source="opt")
    provider.set("steps", 4)  # not watched
    events = seen.wait_for(3)
    assert [(e.old_value, e.new_value, e.version) for e in events] == [
        (0.7, 0.1, 2),
        (0.1, 0.2, 3),
        (0.2, 0.3, 4),
    ]
    assert all(e.name == "temperature" and e.source == "opt" and e.kind == "set" for e in events)
    assert all(isinstance(e.timestamp, float) for e in events)


def test_watch_include_initial(provider):
    _define_basics(provider)
    seen = Collector()
    provider.watch(["temperature", "model"], seen, include_initial=True)
    provider.set("model", "claude-3")
    events = seen.wait_for(3)
    initial = sorted((e.name, e.new_value, e.kind) for e in events[:2])
    assert initial == [("model", "gpt-4", "initial"), ("temperature", 0.7, "initial")]
    assert (events[2].name, events[2].new_value, events[2].version) == ("model", "claude-3", 2)


def test_watch_filter(provider):
    _define_basics(provider)
    seen = Collector()
    provider.watch(["temperature"], seen, filter=lambda old, new: abs(new - old) >= 0.5)
    for value in (0.8, 1.5, 1.6, 0.2):
        provider.set("temperature", value)
    events = seen.wait_for(2)
    fence = Collector()
    provider.watch(["temperature"], fence)
    provider.set("temperature", 0.25)
    fence.wait_for(1)
    assert [(e.old_value, e.new_value) for e in seen.events] == [(0.8, 1.5), (1.6, 0.2)]
    assert len(events) == 2


def test_watch_debounce_coalesces(provider):
    _define_basics(provider)
    seen = Collector()
    provider.watch(["temperature"], seen, debounce_ms=1000)
    records = [provider.set("temperature", v / 10) for v in range(1, 6)]
    seen.wait_for(1)
    assert seen.flush_until(records[-1].version)
    events = seen.events
    # Whatever the timing, coalesced events chain without a gap and end on the last write...
    assert events[0].old_value == 0.7
    assert all(a.new_value == b.old_value for a, b in zip(events, events[1:], strict=False))
    assert (events[-1].new_value, events[-1].version) == (0.5, records[-1].version)
    # ...and five writes made within a fraction of the 1 s window are not five deliveries.
    assert len(events) < 5


def test_unknown_name_in_watch(provider):
    with pytest.raises(VariableNotFound):
        provider.watch(["ghost"], Collector())
    with pytest.raises(ValidationError):
        provider.watch([], Collector())


def test_unwatch_stops_delivery(provider):
    _define_basics(provider)
    stopped, fence = Collector(), Collector()
    handle = provider.watch(["steps"], stopped)
    provider.set("steps", 4)
    stopped.wait_for(1)
    assert provider.unwatch(handle) is True
    provider.watch(["steps"], fence)
    provider.set("steps", 5)
    fence.wait_for(1)
    assert stopped.versions() == [2]


def test_watch_all_sees_registration_and_deletion(provider):
    seen = Collector()
    provider.watch(None, seen)
    provider.register("a", "int", 1)
    provider.set("a", 2)
    provider.delete("a")
    events = seen.wait_for(3)
    assert [(e.kind, e.name, e.new_value) for e in events] == [
        ("registered", "a", 1),
        ("set", "a", 2),
        ("deleted", "a", None),
    ]


def test_failing_callback_is_reported_and_isolated(provider, caplog):
    _define_basics(provider)

    def broken(event):
        raise RuntimeError("watcher bug")

    healthy = Collector()
    bad = provider.watch(["steps"], broken)
    provider.watch(["steps"], healthy)
    with caplog.at_level(logging.ERROR, logger="dspex_jupyter.watch"):
        provider.set("steps", 4)
        provider.set("steps", 5)
        healthy.wait_for(2)
        assert bad.flush(WAIT_S)
    assert bad.errors == 2 and isinstance(bad.last_error, RuntimeError)
    assert any("watcher bug" in (r.exc_text or "") for r in caplog.records)


def test_slow_callback_never_blocks_writers_or_other_watchers(provider):
    _define_basics(provider)
    release = threading.Event()
    entered = threading.Event()

    def slow(event):
        entered.set()
        release.wait(WAIT_S)

    fast = Collector()
    provider.watch(["steps"], slow)
    provider.watch(["steps"], fast)
    try:
        for value in range(1, 11):
            provider.set("steps", value)  # would hang here if writers waited for `slow`
        assert entered.wait(WAIT_S)
        assert fast.wait_for(10)[-1].new_value == 10  # and here if `slow` blocked `fast`
        assert not release.is_set()
    finally:
        release.set()
