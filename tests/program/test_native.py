"""Native modules and native-only runs: in the kernel, no DSPy, no server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dspex_jupyter import Program, Variables
from dspex_jupyter.errors import ModuleExecutionError, ProgramError, VariableExists
from dspex_jupyter.native import CATEGORIES, Function, QueryClassifier, classify, function


def shout(text: str, suffix: str = "!") -> dict:
    return {"shout": text.upper() + suffix}


def length(shout: str) -> int:
    return len(shout)


def boom(text: str) -> dict:
    raise RuntimeError("kaput")


@pytest.mark.parametrize(
    "question, category",
    [
        ("What is DSPex?", "factual"),
        ("Who wrote DSPy?", "factual"),
        ("How do I install DSPex?", "how-to"),
        ("Steps to configure a bridge server", "how-to"),
        ("How does it work?", "explanation"),
        ("Why is the sky blue?", "explanation"),
        ("Compare gRPC vs REST", "comparison"),
        ("What is the difference between LocalState and BridgedState?", "comparison"),
        ("Should I use ReAct for this?", "opinion"),
        ("Which model do you recommend?", "opinion"),
        ("Hello there", "other"),
        ("", "other"),
    ],
)
def test_query_classifier_categories(question, category):
    got, confidence, _ = classify(question)
    assert got == category
    assert got in CATEGORIES
    assert 0 < confidence <= 1
    out = QueryClassifier().execute({"question": question}, {})
    assert out == {"category": category, "confidence": confidence, "llm_model": None}


def test_query_classifier_publishes_its_bound_model(ctx):
    spec = (
        Program.new()
        .defvariable(
            "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
        )
        .chain([QueryClassifier().bind_to_variable("model", as_="llm_model")])
    )
    first = spec.run({"question": "What is DSPex?"}, context=ctx)
    assert first.outputs == {"category": "factual", "confidence": 1.0, "llm_model": "gpt-4"}
    Variables.set(ctx, "model", "claude-3")
    second = Program.run(spec, {"question": "What is DSPex?"}, context=ctx)
    assert second.outputs["llm_model"] == "claude-3"
    entry = second.trace[0]
    assert entry.kind == "native" and entry.name == "QueryClassifier"
    assert entry.variables == {"model": {"param": "llm_model", "version": 2, "value": "claude-3"}}
    assert entry.versions == {"model": 2} and entry["variables"] == entry.variables
    assert first.trace[0].versions == {"model": 1}
    assert entry.usage is None and entry.latency_ms >= 0


def test_query_classifier_needs_a_string_question(ctx):
    spec = Program.new().chain([QueryClassifier()])
    with pytest.raises(ModuleExecutionError, match="string 'question'"):
        spec.run({"question": 3}, context=ctx)
    assert ctx.runs[-1]["status"] == "error"


def test_function_modules_and_data_flow(ctx):
    spec = (
        Program.new("shouty")
        .defvariable("suffix", "str", initial="?!")
        .chain(
            [
                function(shout, outputs=["shout"]).bind_to_variable("suffix"),
                Function(length, outputs=["n"]),
            ]
        )
    )
    result = spec.run({"text": "hi"}, context=ctx)
    assert result.outputs == {"shout": "HI?!", "n": 4}
    assert result["n"] == 4
    assert result.values == {"text": "hi", "shout": "HI?!", "n": 4}
    assert [e.inputs for e in result.trace] == [{"text": "hi"}, {"shout": "HI?!"}]
    assert result.trace[0].variables["suffix"]["version"] == 1
    assert Program.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.modules[0].options == {"function": f"{__name__}:shout", "outputs": ["shout"]}
    summary = ctx.runs[-1]
    json.dumps(summary)
    assert summary["program"] == "shouty" and summary["status"] == "ok"
    assert summary["trace"][1]["outputs"] == {"n": 4}


def test_function_errors_are_typed_and_recorded(ctx):
    spec = Program.new().chain([function(boom, outputs=["x"])])
    with pytest.raises(ModuleExecutionError, match="kaput") as info:
        spec.run({"text": "a"}, context=ctx)
    assert info.value.result.status == "error"
    assert info.value.result.trace[0].status == "error"
    assert ctx.runs[-1]["status"] == "error"


def test_missing_inputs_are_caught_before_anything_changes(ctx):
    spec = (
        Program.new()
        .defvariable("temperature", "float", initial=0.7)
        .chain([QueryClassifier(), function(length, outputs=["n"])])
    )
    with pytest.raises(ProgramError, match=r"needs \['shout'\]"):
        spec.run({"question": "What?"}, context=ctx)
    with pytest.raises(ProgramError, match="needs"):
        spec.run({}, context=ctx)
    with pytest.raises(ProgramError):
        spec.run("What?", context=ctx)
    assert ctx.list() == [] and len(ctx.runs) == 0


def test_unknown_bound_variable_and_conflicting_declaration_change_nothing(ctx):
    spec = (
        Program.new()
        .defvariable("a", "float", initial=0.5)
        .chain([QueryClassifier().bind_to_variable("nowhere", as_="llm_model")])
    )
    with pytest.raises(ProgramError, match="nowhere"):
        spec.run({"question": "q"}, context=ctx)
    assert ctx.list() == []
    Variables.defvariable(ctx, "b", "int", initial=1)
    clash = (
        Program.new().defvariable("a", "float", initial=0.5).defvariable("b", "str", initial="x")
    )
    with pytest.raises(VariableExists):
        clash.run({}, context=ctx)
    assert [v.name for v in ctx.list()] == ["b"]


def test_declared_variables_keep_existing_values(ctx):
    spec = (
        Program.new()
        .defvariable("model", "str", initial="gpt-4")
        .chain([QueryClassifier().bind_to_variable("model")])
    )
    spec.run({"question": "q"}, context=ctx)
    Variables.set(ctx, "model", "tuned")
    result = spec.run({"question": "q"}, context=ctx)
    assert result.outputs["llm_model"] == "tuned"
    assert Variables.get(ctx, "model") == "tuned"


def test_bound_variable_defined_on_the_context_only(ctx):
    Variables.defvariable(ctx, "m", "str", initial="from-widget")
    result = (
        Program.new()
        .chain([QueryClassifier().bind_to_variable("m", as_="model")])
        .run({"question": "q"}, context=ctx)
    )
    assert result.outputs["llm_model"] == "from-widget"


def test_default_context_is_used():
    import dspex_jupyter

    result = Program.run(Program.new().chain([QueryClassifier()]), {"question": "Why?"})
    assert result.outputs["category"] == "explanation"
    assert dspex_jupyter.default_context().runs[-1]["run_id"] == result.run_id


def test_definition_run(ctx):
    class Classify(Program.Definition):
        def build(self):
            return Program.new().chain([QueryClassifier()])

    assert Classify().run({"question": "Why?"}, context=ctx).outputs["category"] == "explanation"
    assert Program.run(Classify, {"question": "Why?"}, context=ctx).program == "Classify"


def test_native_only_program_never_imports_dspy():
    code = textwrap.dedent(
        """
        import sys
        import dspex_jupyter
        from dspex_jupyter import Context, Program, Variables
        from dspex_jupyter.modules import ChainOfThought, ReAct
        from dspex_jupyter.native import QueryClassifier, function
        from dspex_jupyter.testing import LMServer
        spec = (Program.new()
            .defvariable("model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "x"]})
            .chain([QueryClassifier().bind_to_variable("model", as_="llm_model"),
                    function("dspex_jupyter.testing.tools:word_count", outputs=["n"])]))
        bridged = Program.new().chain([ChainOfThought("question -> answer")])
        Program.from_dict(bridged.to_dict())
        with Context.start() as ctx:
            result = Program.run(spec, {"question": "How do I install it?", "text": "a b c"}, context=ctx)
            assert result.outputs["category"] == "how-to", result.outputs
            assert result.outputs["n"] == 3, result.outputs
            assert ctx.backend == "local"
        bad = [m for m in ("dspy", "litellm", "grpc") if m in sys.modules]
        assert not bad, bad
        print("OK")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"


def test_bridged_program_with_bad_inputs_changes_nothing(ctx):
    from dspex_jupyter.modules import ChainOfThought

    spec = (
        Program.new()
        .defvariable("temperature", "float", initial=0.7)
        .chain([ChainOfThought("question -> answer").bind_to_variable("temperature")])
    )
    with pytest.raises(ProgramError, match="JSON-safe"):
        spec.run({"question": object()}, context=ctx)
    with pytest.raises(ProgramError, match="needs"):
        spec.run({"query": "typo"}, context=ctx)
    assert ctx.backend == "local" and ctx.list() == [] and len(ctx.runs) == 0


def test_execute_module_is_a_bridged_only_operation(ctx):
    from dspex_jupyter.errors import NotSupportedByBackend
    from dspex_jupyter.modules import Predict

    with pytest.raises(NotSupportedByBackend, match="execute_module"):
        ctx.execute_module(Predict("q -> a").to_dict(), {"q": "x"}, {})
