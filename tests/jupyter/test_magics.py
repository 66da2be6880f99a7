"""The ``%dspex`` magics, through a real IPython ``InteractiveShell``."""

from __future__ import annotations

import ipywidgets as w
import pytest

from dspex_jupyter import Context, default_context, errors
from dspex_jupyter.jupyter.magics import DSPexMagics
from dspex_jupyter.jupyter.syntax import MagicSyntaxError

from .conftest import run, run_error


def test_help_is_the_magic_docstring(shell, capsys):
    doc = shell.find_line_magic("dspex").__doc__
    for word in (
        "context",
        "vars",
        "get NAME",
        "set NAME VALUE",
        "watch",
        "run PROGRAM",
        "history NAME",
        "%%dspex program NAME",
        "var NAME TYPE INITIAL",
    ):
        assert word in doc
    run(shell, "%dspex")
    assert "%dspex set NAME VALUE" in capsys.readouterr().out


def test_help_reads_as_plain_text(shell):
    doc = shell.find_line_magic("dspex").__doc__
    assert "``" not in doc and ":mod:" not in doc and "::" not in doc
    assert "a bridged module from dspex_jupyter.modules" in doc


def test_subcommand_arguments_are_parsed_by_magic_arguments(ip, ctx):
    from IPython.core.magic_arguments import MagicArgumentParser

    magics = ip.magics_manager.registry["DSPexMagics"]
    assert isinstance(magics._cmd_history.parser, MagicArgumentParser)
    exc = run_error(ip, "%dspex history temperature many")
    assert isinstance(exc, MagicSyntaxError)
    assert "expected %dspex history NAME [LIMIT]" in str(exc)
    exc = run_error(ip, "%dspex vars extra")
    assert isinstance(exc, MagicSyntaxError) and "unrecognized arguments: extra" in str(exc)
    run(ip, "%dspex def offset float -0.5")  # a negative value is a value, not an option
    assert ctx.get("offset") == -0.5


def test_def_get_set(ip, ctx, capsys):
    run(ip, "%dspex def top_p float 0.9 min=0 max=1")
    assert ctx.variable("top_p").constraints == {"min": 0, "max": 1}
    run(ip, '%dspex def style choice "terse" choices=["terse","verbose"]')
    run(ip, "%dspex def mode choice a choices=a,b,c")
    assert ctx.variable("mode").constraints["choices"] == ["a", "b", "c"]
    assert run(ip, "%dspex get temperature") == 0.7
    run(ip, "%dspex set temperature 0.9")
    assert ctx.get("temperature") == 0.9 and ctx.variable("temperature").source == "magic"
    run(ip, "%dspex set verbose yes")
    run(ip, '%dspex set prompt "hi there"')
    run(ip, "%dspex set model claude-3")
    assert ctx.get_many(["verbose", "prompt", "model"]) == {
        "verbose": True,
        "prompt": "hi there",
        "model": "claude-3",
    }
    ip.user_ns["t"] = 1.5
    run(ip, "%dspex set temperature $t")  # IPython's variable expansion
    assert ctx.get("temperature") == 1.5
    assert "temperature = 1.5 (v3)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "source, error, text",
    [
        ("%dspex set temperature 7", errors.ValidationError, "above max"),
        ("%dspex set temperature warm", errors.ValidationError, "cannot read 'warm' as float"),
        ("%dspex set temprature 0.5", errors.VariableNotFound, "did you mean 'temperature'"),
        ("%dspex set temperature", MagicSyntaxError, "expected %dspex set NAME VALUE"),
        ("%dspex frobnicate", MagicSyntaxError, "unknown subcommand 'frobnicate'"),
        ("%dspex def x float", MagicSyntaxError, "expected %dspex def NAME TYPE INITIAL"),
        ("%dspex def x floaty 1", MagicSyntaxError, "unknown type 'floaty'"),
        ("%dspex def x float 1 min=low", MagicSyntaxError, "min=low is not a number"),
        ("%dspex def x float 5 max=2", errors.ValidationError, "above max"),
        ('%dspex set prompt "unterminated', MagicSyntaxError, "unterminated"),
        ("%dspex get", MagicSyntaxError, "expected %dspex get NAME"),
        ("%dspex context explode", MagicSyntaxError, "unknown context action"),
        ("%dspex history temperature", errors.NotSupportedByBackend, "history"),
    ],
)
def test_bad_input_is_a_clear_typed_error_and_changes_nothing(ip, ctx, source, error, text):
    before = ctx.export_state()
    exc = run_error(ip, source)
    assert isinstance(exc, error), exc
    assert text in str(exc)
    assert exc._render_traceback_() == [f"{type(exc).__name__}: {exc}"]  # one line, no traceback
    assert ctx.export_state() == before


def test_vars_shows_the_widget_panel(ip, ctx):
    panel = run(ip, "%dspex vars")
    assert panel is ctx.widgets()
    assert isinstance(panel, w.Box) and set(panel.controls) == {
        "temperature",
        "steps",
        "model",
        "verbose",
        "prompt",
    }


def test_watch_logs_changes_until_unwatch(ip, ctx):
    log = run(ip, "%dspex watch temperature steps")
    ctx.set("temperature", 1.0)
    ctx.set("verbose", True)  # not watched
    ctx.set("steps", 4, source="optimizer")
    assert log.sync()
    assert log.lines == ["temperature: 0.7 -> 1.0 (v2, api)", "steps: 3 -> 4 (v2, optimizer)"]
    assert "steps: 3 -&gt; 4" in log.widget.value
    run(ip, "%dspex unwatch")
    ctx.set("temperature", 1.1)
    log.sync()
    assert len(log.lines) == 2


def test_context_new_use_info_stop(ip, ctx):
    new = run(ip, "%dspex context new scratch lm.model=test-lm lm.api_base=http://127.0.0.1:9/v1")
    try:
        assert isinstance(new, Context) and new.name == "scratch" and new is not ctx
        assert new.lm_config["model"] == "test-lm"
        assert new.lm_config["api_base"] == "http://127.0.0.1:9/v1"
        run(ip, "%dspex def only_here int 1")
        assert new.get("only_here") == 1
        with pytest.raises(errors.VariableNotFound):
            ctx.get("only_here")
        info = run(ip, "%dspex context info")
        text = info._repr_mimebundle_()["text/plain"]
        assert "scratch" in text and "local" in text and "only_here" in text
        run(ip, "%dspex context stop")
        assert new.closed
        magics = ip.magics_manager.registry["DSPexMagics"]
        assert magics.context is default_context()
    finally:
        if not new.closed:
            new.stop()
    run(ip, "%dspex context use ctx")
    assert ip.magics_manager.registry["DSPexMagics"].context is ctx
    exc = run_error(ip, "%dspex context new x flavour=mint")
    assert isinstance(exc, MagicSyntaxError) and "flavour" in str(exc)


def test_unload_removes_the_magics():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext dspex_jupyter")
    assert shell.find_line_magic("dspex") is not None
    shell.run_cell("%unload_ext dspex_jupyter")
    assert shell.find_line_magic("dspex") is None
    assert shell.find_cell_magic("dspex") is None
    assert shell.run_cell("%load_ext dspex_jupyter").success
    assert isinstance(shell.magics_manager.registry["DSPexMagics"], DSPexMagics)


def test_a_failing_lab_panel_hook_does_not_break_load_ext(monkeypatch, caplog):
    from IPython.core.interactiveshell import InteractiveShell

    import dspex_jupyter.jupyter as jupyter_layer
    import dspex_jupyter.jupyter.panel as panel

    calls = []

    def broken(ipython):
        calls.append(ipython)
        raise RuntimeError("no comm today")

    monkeypatch.setattr(panel, "register", broken)
    shell = InteractiveShell.instance()
    jupyter_layer.load_ipython_extension(shell)
    assert calls == [shell]
    assert "JupyterLab panel hook dspex_jupyter.jupyter.panel.register failed" in caplog.text
    assert "no comm today" in caplog.text
    assert shell.find_line_magic("dspex") is not None
