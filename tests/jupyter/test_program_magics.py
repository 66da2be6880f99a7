"""``%%dspex program NAME`` and ``%dspex run``: the cell syntax equals the Python DSL."""

from __future__ import annotations

import re

import pytest

from dspex_jupyter import Program, errors
from dspex_jupyter.jupyter.syntax import MagicSyntaxError
from dspex_jupyter.modules import ChainOfThought, Predict
from dspex_jupyter.native import QueryClassifier

from .conftest import run, run_error

CELL = """%%dspex program qa
# the example of SPEC §1, as a cell
var temperature float 0.7 min=0 max=2
var model choice gpt-4 choices=gpt-4,claude-3   # comma list or JSON list
native QueryClassifier model->llm_model
module ChainOfThought "question -> answer" temperature
"""


def _python_spec(name="qa"):
    return (
        Program.new(name)
        .defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
        .defvariable(
            "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
        )
        .chain(
            [
                QueryClassifier().bind_to_variable("model", as_="llm_model"),
                ChainOfThought("question -> answer").bind_to_variable("temperature"),
            ]
        )
    )


def test_cell_builds_the_same_spec_as_the_python_dsl(ip, capsys):
    ip.user_ns.pop("qa", None)
    assert run(ip, CELL) is None
    assert "qa: 2 variables; QueryClassifier -> ChainOfThought" in capsys.readouterr().out
    spec = ip.user_ns["qa"]
    assert spec == _python_spec()
    assert spec.to_dict() == _python_spec().to_dict()
    assert Program.from_dict(spec.to_dict()) == spec


def test_cell_options_positional_args_and_same_name_bindings(ip):
    run(
        ip,
        "%%dspex program p2\n"
        'var instructions str "Answer in one word."\n'
        "var max_tokens int 64 min=1\n"
        "module Predict 'question -> answer' name=short instructions max_tokens\n"
        "native QueryClassifier input_field=answer\n",
    )
    expected = (
        Program.new("p2")
        .defvariable("instructions", "str", initial="Answer in one word.")
        .defvariable("max_tokens", "int", initial=64, constraints={"min": 1})
        .chain(
            [
                Predict("question -> answer", name="short")
                .bind_to_variable("instructions")
                .bind_to_variable("max_tokens"),
                QueryClassifier(input_field="answer"),
            ]
        )
    )
    assert ip.user_ns["p2"] == expected


@pytest.mark.parametrize(
    "body, line, text",
    [
        (
            "var t float 0.5\nmodul Predict 'q -> a'\n",
            2,
            "unknown statement 'modul'; expected 'var', 'module' or 'native'",
        ),
        ("var t float\nmodule Predict 'q -> a'\n", 1, "expected var NAME TYPE INITIAL"),
        ("var t flot 1\nmodule Predict 'q -> a'\n", 1, "unknown type 'flot'"),
        ("var t float hot\nmodule Predict 'q -> a'\n", 1, "cannot read 'hot' as float"),
        ("var t float 5 max=2\nmodule Predict 'q -> a'\n", 1, "above max"),
        ("\n\nmodule Predikt 'q -> a'\n", 3, "unknown bridged module 'Predikt'; expected one of"),
        ("native ChainOfThought 'q -> a'\n", 1, "unknown native module 'ChainOfThought'"),
        ("module Predict 'q -> a\n", 1, "unterminated ' quote"),
        ("module Predict 'q -> a' t->no_such_param\n", 1, "Predict"),
        ("module Predict 'q -> a' 3x\n", 1, "a binding VAR or VAR->PARAM"),
        ("var t float 0.5\n", None, "the program has no modules"),
        ("var t float 1\nvar t float 2\nnative QueryClassifier\n", 2, "already declared"),
    ],
)
def test_bad_cells_name_the_line_and_define_nothing(ip, body, line, text):
    ip.user_ns["bad"] = sentinel = object()
    exc = run_error(ip, "%%dspex program bad\n" + body)
    assert isinstance(exc, MagicSyntaxError), exc
    assert isinstance(exc, errors.ValidationError)
    assert exc.line == line
    if line is not None:
        assert str(exc).startswith(f"line {line}: ")
    assert text in str(exc)
    assert ip.user_ns["bad"] is sentinel


def test_bad_cell_magic_line(ip):
    exc = run_error(ip, "%%dspex programme x\nvar t float 1\n")
    assert isinstance(exc, MagicSyntaxError) and "%%dspex program NAME" in str(exc)


def test_run_a_native_program_and_display_the_result(ip, ctx):
    run(
        ip,
        "%%dspex program router\n"
        "var model choice gpt-4 choices=gpt-4,claude-3\n"
        "native QueryClassifier model->llm_model\n",
    )
    run(ip, "%dspex set model claude-3")  # defined by the context fixture: the value is kept
    view = run(ip, '%dspex run router question="How do I install DSPy?"')
    assert view.outputs["category"] == "how-to"
    assert view.outputs["llm_model"] == "claude-3"
    (step,) = view.trace
    assert step.variables["model"]["version"] == 2
    bundle = view._repr_mimebundle_()
    assert "QueryClassifier" in bundle["text/html"] and "model@v2" in bundle["text/html"]
    assert "how-to" in bundle["text/plain"] and "<table" in bundle["text/html"]
    assert ctx.backend == "local"  # a native-only program never bridges


def test_run_errors(ip):
    exc = run_error(ip, "%dspex run nowhere question=x")
    assert isinstance(exc, MagicSyntaxError) and "no program named 'nowhere'" in str(exc)
    ip.user_ns["notaprogram"] = 42
    exc = run_error(ip, "%dspex run notaprogram")
    assert isinstance(exc, MagicSyntaxError) and "not a program" in str(exc)
    run(ip, "%%dspex program router2\nnative QueryClassifier\n")
    exc = run_error(ip, "%dspex run router2 question")
    assert isinstance(exc, MagicSyntaxError) and "an input KEY=VALUE" in str(exc)
    exc = run_error(ip, "%dspex run router2 text=hello")
    assert isinstance(exc, errors.DSPexError), exc


def test_run_a_bridged_program_shows_outputs_trace_and_lm_usage(shell, monkeypatch):
    """SPEC §1 through the magics, against a real local OpenAI-compatible LM server."""
    monkeypatch.delenv("DSPEX_BRIDGE", raising=False)
    from dspex_jupyter import Context
    from dspex_jupyter.testing import LMServer

    with LMServer() as lm:
        context = Context.start(
            name="bridged-run", lm={"model": "test-lm", "api_base": lm.url, "api_key": "sk-x"}
        )
        try:
            shell.user_ns["bctx"] = context
            run(shell, "%dspex context use bctx")
            run(shell, CELL)
            result = shell.run_cell('%dspex run qa question="What is DSPex?"')
            assert result.success, result.error_in_exec
            view = result.result
            assert view.outputs["answer"] == "Test answer for: What is DSPex?"
            classify, cot = view.trace
            assert (classify.kind, cot.kind) == ("native", "bridged")
            bundle = view._repr_mimebundle_()
            assert "temperature@v1" in bundle["text/html"] and "model@v1" in bundle["text/html"]
            # the LM usage, in the one compact form every display uses
            assert re.search(r"\b\d+ tok\b", bundle["text/html"]), bundle["text/html"]
            assert "total_tokens" not in bundle["text/html"]
            assert "ChainOfThought" in bundle["text/plain"]
            assert context.backend == "bridged"
        finally:
            context.stop()
