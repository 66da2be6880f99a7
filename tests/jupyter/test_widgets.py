"""``ctx.widgets()``: controls per type, two-way sync, snap-back, exactly one set."""

from __future__ import annotations

import threading

import ipywidgets as w
import pytest

from dspex_jupyter.jupyter import sync

from .conftest import wait_until


def _widget_sets(ctx):
    """Every event written by a widget edit."""
    seen = []
    handle = ctx.watch(None, lambda e: seen.append(e) if e.source == "widget" else None)
    return seen, handle


def _edit(control, **state):
    """What a message from the browser does: ``set_state`` on the kernel side."""
    control.set_state(state)


def test_one_labelled_control_per_variable_by_type(ctx):
    ctx.defvariable("k", "int", initial=4, constraints={"min": 1, "max": 8})
    ctx.defvariable("scale", "float", initial=1.5)
    ctx.defvariable("mod", "module", initial="Predict")
    ctx.defvariable(
        "engine", "module", initial="Predict", constraints={"choices": ["Predict", "ReAct"]}
    )
    ctx.defvariable("vec", "embedding", initial=[0.5, 0.25])
    panel = ctx.widgets()
    assert isinstance(panel, w.Box)
    assert panel is ctx.widgets()
    c = panel.controls
    assert isinstance(c["temperature"], w.FloatSlider)
    assert (c["temperature"].min, c["temperature"].max, c["temperature"].value) == (0, 2, 0.7)
    assert isinstance(c["k"], w.IntSlider) and (c["k"].min, c["k"].max) == (1, 8)
    assert isinstance(c["steps"], w.IntText)  # only a lower bound: not a slider
    assert isinstance(c["scale"], w.FloatText)
    assert isinstance(c["model"], w.Dropdown) and c["model"].value == "gpt-4"
    assert isinstance(c["engine"], w.Dropdown)
    assert isinstance(c["mod"], w.Text)
    assert isinstance(c["verbose"], w.Checkbox)
    assert isinstance(c["prompt"], w.Text)
    assert (
        isinstance(c["vec"], w.Textarea) and c["vec"].disabled and c["vec"].value == "[0.5, 0.25]"
    )
    for name, control in c.items():
        assert control.description == name
    assert "v1" in panel.versions["temperature"].value
    assert panel.message in panel.children  # the message area lives in the container


def test_widget_edit_is_exactly_one_validated_set(ctx):
    panel = ctx.widgets()
    seen, handle = _widget_sets(ctx)
    _edit(panel.controls["temperature"], value=1.25)
    _edit(panel.controls["model"], index=1)  # a Dropdown syncs its index
    _edit(panel.controls["verbose"], value=True)
    _edit(panel.controls["prompt"], value="bonjour")
    assert ctx.get_many(["temperature", "model", "verbose", "prompt"]) == {
        "temperature": 1.25,
        "model": "claude-3",
        "verbose": True,
        "prompt": "bonjour",
    }
    assert sync(ctx) and handle.flush()
    assert [(e.name, e.new_value) for e in seen] == [
        ("temperature", 1.25),
        ("model", "claude-3"),
        ("verbose", True),
        ("prompt", "bonjour"),
    ]
    assert "v2" in panel.versions["temperature"].value
    assert panel.controls["temperature"].value == 1.25  # our own event did not move it again
    ctx.unwatch(handle)


def test_invalid_edit_snaps_back_and_shows_why(ctx):
    panel = ctx.widgets()
    seen, handle = _widget_sets(ctx)
    _edit(panel.controls["steps"], value=0)
    assert panel.controls["steps"].value == 3
    assert ctx.variable("steps").version == 1
    assert "steps" in panel.message.value and "below min 1" in panel.message.value
    _edit(panel.controls["prompt"], value="far too long for it")
    assert panel.controls["prompt"].value == "hello"
    assert "max_length" in panel.message.value
    assert ctx.get("prompt") == "hello"
    _edit(panel.controls["steps"], value=5)  # a good edit clears the message
    assert panel.message.value == "" and ctx.get("steps") == 5
    assert handle.flush()
    assert [(e.name, e.new_value) for e in seen] == [("steps", 5)]
    ctx.unwatch(handle)


def test_changes_from_code_and_threads_move_widgets_without_writing_back(ctx):
    panel = ctx.widgets()
    seen, handle = _widget_sets(ctx)
    ctx.set("temperature", 1.5)
    thread = threading.Thread(target=lambda: ctx.set("model", "claude-3", source="optimizer"))
    thread.start()
    thread.join()
    assert wait_until(lambda: panel.controls["model"].value == "claude-3")
    assert wait_until(lambda: panel.controls["temperature"].value == 1.5)
    assert sync(ctx)
    assert "v2" in panel.versions["model"].value and "optimizer" in panel.versions["model"].value
    handle.flush()
    assert seen == []  # an update from the backend made no set
    ctx.unwatch(handle)


def test_new_variables_appear_and_deleted_ones_disappear(ctx):
    panel = ctx.widgets()
    ctx.defvariable("top_p", "float", initial=0.9, constraints={"min": 0, "max": 1})
    assert wait_until(lambda: "top_p" in panel.controls)
    assert isinstance(panel.controls["top_p"], w.FloatSlider)
    ctx.delete("verbose")
    assert wait_until(lambda: "verbose" not in panel.controls)
    rows = panel.children[1].children
    assert [row.children[0].description for row in rows] == sorted(panel.controls)
    _edit(panel.controls["top_p"], value=0.5)
    assert ctx.get("top_p") == 0.5
    # redefined with other bounds: a new control with the new bounds
    ctx.delete("top_p")
    ctx.defvariable("top_p", "float", initial=5.0, constraints={"min": 0, "max": 10})
    assert wait_until(lambda: "top_p" in panel.controls and panel.controls["top_p"].max == 10)
    assert panel.controls["top_p"].value == 5.0 and "v1" in panel.versions["top_p"].value


@pytest.mark.parametrize("edits_on", ["shell thread", "subshell thread"])
def test_concurrent_edits_and_writers_converge(ctx, edits_on):
    """Edits (possibly on a subshell thread, as ipykernel 7 allows) race backend writes."""
    panel = ctx.widgets()
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            ctx.set("steps", 100 + i % 50)
            i += 1

    def edits():
        for i in range(100):
            _edit(panel.controls["steps"], value=1 + i)

    thread = threading.Thread(target=writer)
    thread.start()
    if edits_on == "shell thread":
        edits()
    else:
        editor = threading.Thread(target=edits)
        editor.start()
        editor.join()
    stop.set()
    thread.join()
    assert sync(ctx)
    assert panel.controls["steps"].value == ctx.get("steps")
    assert f"v{ctx.variable('steps').version}<" in panel.versions["steps"].value


def test_stopping_the_context_disables_the_panel(ctx):
    panel = ctx.widgets()
    ctx.stop()
    assert panel.closed
    assert all(control.disabled for control in panel.controls.values())
    assert "stopped" in panel.children[0].value


def test_a_user_observer_editing_another_control_makes_a_real_write(ctx):
    """Moving a control from the backend must not silence edits made by user code meanwhile."""
    panel = ctx.widgets()
    panel.controls["temperature"].observe(
        lambda change: setattr(panel.controls["verbose"], "value", change.new > 1), "value"
    )
    ctx.set("temperature", 1.8)
    assert wait_until(lambda: ctx.get("verbose") is True)
    assert ctx.variable("verbose").source == "widget"


def test_the_applier_drops_stale_versions(ctx):
    """A late or duplicated update (e.g. a resumed stream replaying) never moves a control back."""
    from dspex_jupyter.variables.record import WatchEvent

    panel, traits = ctx.widgets(), ctx.traits
    ctx.set("temperature", 1.0)  # v2
    ctx.set("temperature", 1.2)  # v3
    assert sync(ctx)
    late = WatchEvent("temperature", 0.7, 1.0, 2, "api", 0.0, "set")
    panel._on_event(late)
    traits._dspex_on_event(late)
    assert (
        panel.controls["temperature"].value == 1.2 and "v3" in panel.versions["temperature"].value
    )
    assert traits.temperature == 1.2
    newer = WatchEvent("temperature", 1.2, 0.4, 4, "elsewhere", 0.0, "set")
    panel._on_event(newer)
    assert (
        panel.controls["temperature"].value == 0.4 and "v4" in panel.versions["temperature"].value
    )
