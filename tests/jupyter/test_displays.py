"""Rich displays: one compact usage line everywhere, HTML for Context, Variable, RunResult.

Through a real IPython shell's display formatter (what a notebook cell's last
expression goes through), so the MIME types a frontend receives are checked,
not just a method's return value.
"""

from __future__ import annotations

import html
import re

from dspex_jupyter import Program
from dspex_jupyter.jupyter.display import HistoryView, RunResultView
from dspex_jupyter.native import QueryClassifier
from dspex_jupyter.running.result import RunResult, TraceEntry, usage_detail, usage_line

USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 26,
    "total_tokens": 146,
    "calls": 1,
    "prompt_tokens_details": None,
    "by_model": {"openai/gpt-4o-mini": {"total_tokens": 146, "calls": 1}},
}


def test_usage_line_is_compact_and_hides_zero_and_null() -> None:
    assert usage_line(USAGE) == "146 tok"
    assert usage_line({**USAGE, "calls": 3}) == "146 tok · 3 calls"
    assert usage_line({"prompt_tokens": 10, "completion_tokens": 5}) == "15 tok"
    for nothing in (None, {}, {"prompt_tokens": 0, "total_tokens": 0, "calls": 0}):
        assert usage_line(nothing) == ""
        assert usage_detail(nothing) == ""
    detail = usage_detail(USAGE).splitlines()
    assert detail == [
        "prompt: 120",
        "completion: 26",
        "total: 146",
        "calls: 1",
        "openai/gpt-4o-mini: 146 tok",
    ]
    assert "None" not in usage_detail(USAGE) and "details" not in usage_detail(USAGE)


def _entry(usage: dict | None) -> TraceEntry:
    return TraceEntry(
        index=0,
        name="qa",
        type="Predict",
        kind="bridged",
        inputs={"question": "2+2?"},
        outputs={"answer": "4"},
        bindings={},
        variables={"temperature": {"param": "temperature", "version": 3, "value": 0.7}},
        latency_ms=12.5,
        usage=usage,
    )


def _result(usage: dict | None) -> RunResult:
    return RunResult(
        run_id="r1",
        program="qa",
        inputs={"question": "2+2?"},
        outputs={"answer": "4 <b>bold</b>"},
        trace=(_entry(usage),),
        latency_ms=13.0,
        backend="bridged",
        started_at=0.0,
    )


def test_run_result_html_shows_outputs_then_a_collapsed_trace(shell) -> None:
    data, _ = shell.display_formatter.format(_result(USAGE))
    markup = data["text/html"]
    outputs, trace = markup.index("answer"), markup.index("<details>")
    assert outputs < trace  # the outputs first, the trace folded below
    assert "<details open" not in markup
    assert "4 &lt;b&gt;bold&lt;/b&gt;" in markup  # values escaped, never raw HTML
    assert "146 tok" in markup and "title='prompt: 120" in markup
    assert "temperature@v3" in markup
    assert data["text/plain"].startswith("<RunResult ok")


def test_run_result_of_a_native_program_shows_no_usage(ctx, shell) -> None:
    spec = Program.new("triage").chain([QueryClassifier()])
    result = Program.run(spec, {"question": "What is the capital of France?"}, context=ctx)
    markup = shell.display_formatter.format(result)[0]["text/html"]
    assert "tok" not in markup and "calls" not in markup and "prompt_tokens" not in markup
    assert "QueryClassifier" in markup and "category" in markup
    assert result.summary_line() == f"ok · {result.latency_ms:.1f} ms · local"


def test_the_magics_view_uses_the_same_usage_line() -> None:
    bundle = RunResultView(_result(USAGE), "qa")._repr_mimebundle_()
    assert "LM 146 tok" in bundle["text/plain"]
    assert "by_model" not in bundle["text/plain"] and "prompt_tokens" not in bundle["text/html"]
    native = RunResultView(_result(None), "qa")._repr_mimebundle_()
    assert "LM" not in native["text/plain"].splitlines()[0]


def test_context_displays_as_a_table_of_variables_with_versions_and_writers(ctx, shell) -> None:
    ctx.set("temperature", 1.25, source="widget")
    data, _ = shell.display_formatter.format(ctx)
    markup = data["text/html"]
    assert markup.startswith("<table")
    for fact in ("local", ctx.session_id, "temperature", "v2", "widget", "gpt-4"):
        assert fact in markup, fact
    assert data["text/plain"].startswith("<Context test local")  # plain text stays text


def test_variable_displays_as_html(ctx, shell) -> None:
    markup = shell.display_formatter.format(ctx.variable("model"))[0]["text/html"]
    assert "<b>model</b>" in markup and "v1 · set by api" in markup
    assert html.escape("choices=['gpt-4', 'claude-3']") in markup
    assert "<table" not in markup  # one line: defvariable's result stays small


def test_history_is_a_table_and_no_html_is_printed_as_text(shell, ctx) -> None:
    first = ctx.variable("temperature")
    ctx.set("temperature", 0.9)
    view = HistoryView("temperature", [first, ctx.variable("temperature")])
    data, _ = shell.display_formatter.format(view)
    assert "<table" in data["text/html"] and "0.9" in data["text/html"]
    assert not re.search(r"<[a-z]+[ >]", data["text/plain"])


def test_the_widgets_lock_marker_is_text_not_a_glyph(ctx) -> None:
    panel = ctx.widgets()
    panel._apply_lock("temperature", "optimizer-7")
    label = panel.lock_labels["temperature"].value
    assert "locked</span> by optimizer-7" in label
    assert "&#128274;" not in label and "\U0001f512" not in label
    assert panel.controls["temperature"].disabled
    panel._apply_lock("temperature", None)
    assert panel.lock_labels["temperature"].value == ""


def test_a_dspex_error_is_short_and_names_dspex_ways_out(shell, ctx, capsys) -> None:
    """The cell's own frames and one line; no internal frames; %tb has the rest."""
    shell.user_ns["ctx"] = ctx
    result = shell.run_cell("def bump():\n    ctx.set('temperature', 5)\nbump()")
    shown = capsys.readouterr().out
    assert not result.success and type(result.error_in_exec).__name__ == "ValidationError"
    assert "ctx.set('temperature', 5)" in shown and "above max 2" in shown
    assert "dspex_jupyter" not in shown and "%tb" in shown
    assert shown.count("File ") == 2  # the cell and bump(), nothing of the package
    shell.run_cell("%tb")
    assert "dspex_jupyter" in capsys.readouterr().out  # the full traceback is still there
    # what a worker relays when DSPy's LM finds no key (LiteLLM's words)
    shell.user_ns["said"] = "AuthenticationError: Set OPENAI_API_KEY or pass api_key= to dspy.LM"
    shell.run_cell(
        "from dspex_jupyter.errors import ModuleExecutionError\nraise ModuleExecutionError(said)"
    )
    shown = capsys.readouterr().out
    assert "OPENAI_API_KEY" not in shown and "dspy.LM" not in shown
    for way in ("lm={'model'", "DSPEX_LM_MODEL", "%dspex lm", "dspex-jupyter[local-lm]"):
        assert way in shown, way
    # a model was named (here by a model variable) but has no key: the message names it
    shell.user_ns["said"] = (
        "Predict failed with openai/gpt-4: LMNotConfiguredError: [openai/gpt-4] no API key "
        'found. Set OPENAI_API_KEY in the environment, or pass api_key="..." to dspy.LM(...).'
    )
    shell.run_cell("raise ModuleExecutionError(said)")
    shown = capsys.readouterr().out
    assert "The LM openai/gpt-4 has no API key" in shown
    assert "OPENAI_API_KEY" not in shown and "dspy.LM" not in shown and "No LM is" not in shown
    for way in ("lm={'model'", "DSPEX_LM_API_KEY", "%dspex lm"):
        assert way in shown, way
    assert ctx.get("temperature") == 0.7  # the refused write changed nothing
