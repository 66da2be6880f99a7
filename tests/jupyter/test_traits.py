"""``ctx.traits``: one trait per variable, observe, validated writes, live sync."""

from __future__ import annotations

import threading

import pytest
import traitlets

from dspex_jupyter import Variables, errors
from dspex_jupyter.jupyter import sync

from .conftest import wait_until


def _events(ctx, source=None):
    """Record every event (optionally only those written by ``source``)."""
    seen = []
    handle = ctx.watch(None, lambda e: seen.append(e) if source in (None, e.source) else None)
    return seen, handle


def test_traits_is_hastraits_with_one_typed_trait_per_variable(ctx):
    view = ctx.traits
    assert isinstance(view, traitlets.HasTraits)
    assert view is ctx.traits  # cached per context
    assert sorted(view.trait_names()) == ["model", "prompt", "steps", "temperature", "verbose"]
    assert isinstance(view.traits()["temperature"], traitlets.Float)
    assert view.traits()["temperature"].max == 2
    assert isinstance(view.traits()["steps"], traitlets.Int)
    assert isinstance(view.traits()["model"], traitlets.Enum)
    assert list(view.traits()["model"].values) == ["gpt-4", "claude-3"]
    assert isinstance(view.traits()["verbose"], traitlets.Bool)
    assert isinstance(view.traits()["prompt"], traitlets.Unicode)
    assert (view.temperature, view.steps, view.model) == (0.7, 3, "gpt-4")


def test_setting_a_trait_is_one_validated_set(ctx):
    view = ctx.traits
    seen, handle = _events(ctx, source="traits")
    view.temperature = 1
    assert ctx.variable("temperature").value == 1.0
    assert ctx.variable("temperature").source == "traits"
    assert isinstance(view.temperature, float)  # canonical value from the context
    handle.flush()
    assert [(e.name, e.new_value) for e in seen] == [("temperature", 1.0)]
    ctx.unwatch(handle)


def test_invalid_trait_set_raises_the_typed_error_and_changes_nothing(ctx):
    view = ctx.traits
    before = ctx.variable("temperature")
    with pytest.raises(errors.ValidationError, match="above max"):
        view.temperature = 5.0
    with pytest.raises(errors.ValidationError):
        view.model = "llama"
    with pytest.raises(errors.ValidationError):
        view.steps = 2.5
    assert view.temperature == 0.7 and view.model == "gpt-4" and view.steps == 3
    assert ctx.variable("temperature") == before


def test_observe_fires_for_changes_from_code_and_other_threads(ctx):
    view = ctx.traits
    changes = []
    view.observe(
        lambda change: changes.append((change.name, change.old, change.new)), "temperature"
    )
    Variables.set(ctx, "temperature", 0.9)
    thread = threading.Thread(target=lambda: ctx.set("temperature", 1.3, source="optimizer"))
    thread.start()
    thread.join()
    assert wait_until(lambda: view.temperature == 1.3)
    assert sync(ctx)
    assert changes == [("temperature", 0.7, 0.9), ("temperature", 0.9, 1.3)]


def test_backend_updates_make_no_set(ctx):
    view = ctx.traits
    seen, handle = _events(ctx)
    for value in (0.1, 0.2, 0.3):
        ctx.set("temperature", value)
    assert sync(ctx)
    handle.flush()
    assert view.temperature == 0.3
    assert [e.source for e in seen] == ["api", "api", "api"]  # nothing written back
    ctx.unwatch(handle)


def test_traits_follow_registration_and_deletion(ctx):
    view = ctx.traits
    names = []
    view.observe(lambda change: names.append(change.new), "top_k")
    ctx.defvariable("top_k", "int", initial=5, constraints={"min": 1, "max": 10})
    assert wait_until(lambda: view.has_trait("top_k"))
    assert view.top_k == 5
    ctx.set("top_k", 7)
    assert wait_until(lambda: view.top_k == 7)
    assert names == [7]  # the observer registered before the trait existed works
    ctx.delete("verbose")
    assert wait_until(lambda: not view.has_trait("verbose"))
    assert not hasattr(view, "verbose")
    # redefined with another type: a new trait of the new type
    ctx.delete("top_k")
    ctx.defvariable("top_k", "str", initial="many")
    assert wait_until(lambda: view.has_trait("top_k") and view.top_k == "many")
    assert isinstance(view.traits()["top_k"], traitlets.Unicode)


def test_concurrent_writers_leave_the_trait_at_the_latest_version(ctx):
    view = ctx.traits

    def writer(offset):
        for i in range(50):
            ctx.set("steps", offset + i)

    threads = [threading.Thread(target=writer, args=(k * 100 + 1,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for i in range(50):
        view.steps = 1000 + i
    for thread in threads:
        thread.join()
    assert sync(ctx)
    assert view.steps == ctx.get("steps")


def test_a_variable_named_like_a_hastraits_method_gets_no_trait(ctx, caplog):
    view = ctx.traits
    ctx.defvariable("observe", "int", initial=1)
    ctx.defvariable("after", "int", initial=2)
    assert wait_until(lambda: view.has_trait("after"))
    assert not view.has_trait("observe") and callable(view.observe)
    assert "reserved by HasTraits" in caplog.text
    ctx.set("observe", 5)  # changes of it are ignored, not fatal
    assert sync(ctx) and view.after == 2


def test_an_observer_that_assigns_a_trait_makes_a_real_write(ctx):
    """A backend update notifies observers; what they assign is a normal, validated write."""
    view = ctx.traits

    def follow(change):
        view.steps = 10 if change.new > 1 else 2

    view.observe(follow, "temperature")
    ctx.set("temperature", 1.5)
    assert wait_until(lambda: ctx.get("steps") == 10)
    assert ctx.variable("steps").source == "traits"
    assert sync(ctx) and view.steps == 10
