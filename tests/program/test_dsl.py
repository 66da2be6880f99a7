"""The Program DSL: pure data, exact round-trips, value equality, readable reprs, bad specs."""

from __future__ import annotations

import json

import pytest

from dspex_jupyter import Program
from dspex_jupyter.errors import DSPexError, ProgramError, ValidationError
from dspex_jupyter.modules import ChainOfThought, Predict, ReAct, tool_path
from dspex_jupyter.native import QueryClassifier, function
from dspex_jupyter.testing import tools


def shout(text: str, suffix: str = "!") -> dict:
    return {"shout": text.upper() + suffix}


class MyProgram(Program.Definition):
    def build(self):
        return (
            Program.new()
            .defvariable("temperature", "float", initial=0.7)
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


def full_spec():
    return (
        Program.new("everything")
        .defvariable("temperature", float, initial=0.2, constraints={"min": 0, "max": 2})
        .defvariable("vec", "embedding", initial=[1, 2.5], constraints={"dimensions": 2})
        .defvariable("style", "str", initial="terse", metadata={"widget": "text"})
        .defvariable("tokens", "int", initial=256)
        .chain(
            [
                QueryClassifier(),
                function(shout, inputs=["text"], outputs=["shout"], name="Shout"),
                Predict("question, shout -> summary: str, score: float", instructions="Be brief.")
                .bind_to_variable("temperature")
                .bind_to_variable("tokens", as_="max_tokens"),
                ReAct(
                    "question -> answer",
                    tools=[tools.search_docs, "dspex_jupyter.testing.tools.word_count"],
                    max_iters=3,
                ).bind_to_variable("style", as_="instructions"),
            ]
        )
    )


def test_spec_one_example_builds_pure_data():
    spec = MyProgram().build()
    assert spec == MyProgram().build()
    assert hash(spec) == hash(MyProgram().build())
    assert [m.kind for m in spec.modules] == ["native", "bridged"]
    assert spec.needs_bridge
    assert spec.modules[0].bindings == {"llm_model": "model"}
    assert spec.modules[1].bindings == {"temperature": "temperature"}


@pytest.mark.parametrize("make", [lambda: MyProgram().build(), full_spec, lambda: Program.new()])
def test_round_trip_is_exact_and_json_safe(make):
    spec = make()
    data = spec.to_dict()
    text = json.dumps(data)  # JSON-safe
    again = Program.from_dict(json.loads(text))
    assert again == spec
    assert again.to_dict() == data
    assert repr(again) == repr(spec)


def test_equality_is_by_value():
    a = Predict("question -> answer").bind_to_variable("temperature")
    b = Predict("question -> answer").bind_to_variable("temperature")
    assert a == b and hash(a) == hash(b)
    assert a != Predict("question -> answer")
    assert a != ChainOfThought("question -> answer").bind_to_variable("temperature")
    assert Program.new().chain([a]) != Program.new().chain([a, b])


def test_builders_return_new_specs_and_modules_are_immutable():
    base = Program.new()
    with_var = base.defvariable("t", "float", initial=0.5)
    assert base.variables == () and len(with_var.variables) == 1
    chained = with_var.chain([QueryClassifier()])
    assert with_var.modules == () and len(chained.modules) == 1
    module = Predict("q -> a")
    bound = module.bind_to_variable("t", as_="temperature")
    assert module.bindings == {} and bound.bindings == {"temperature": "t"}
    with pytest.raises(AttributeError):
        module.foo = 1
    with pytest.raises(AttributeError):
        base.modules = ()
    opts = module.options
    opts["signature"] = "x -> y"
    assert module.signature == "q -> a"


def test_repr_is_readable():
    text = repr(MyProgram().build())
    assert "temperature: float = 0.7" in text
    assert "QueryClassifier().bind_to_variable('model', as_='llm_model')" in text
    assert "[bridged] ChainOfThought('question -> answer').bind_to_variable('temperature')" in text
    assert repr(ReAct("q -> a", tools=[tools.search_docs])) == (
        "ReAct('q -> a', tools=['dspex_jupyter.testing.tools:search_docs'], max_iters=5)"
    )


def test_rebinding_the_same_variable_is_idempotent():
    module = QueryClassifier().bind_to_variable("model", as_="llm_model")
    assert module.bind_to_variable("model", as_="llm_model") == module
    with pytest.raises(ProgramError, match="not both"):
        module.bind_to_variable("model")
    cot = ChainOfThought("question -> answer").bind_to_variable("temperature")
    assert cot.bind_to_variable("temperature") == cot


def test_definition_spec_is_named_and_runnable_form():
    assert MyProgram().spec().name == "MyProgram"
    with pytest.raises(NotImplementedError):
        Program.Definition().build()


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda: Program.new().defvariable("t", "float", initial="hot"), ValidationError),
        (
            lambda: Program.new().defvariable("t", "float", initial=3, constraints={"max": 2}),
            ValidationError,
        ),
        (lambda: Program.new().defvariable("t", "nonsense", initial=1), ValidationError),
        (lambda: Program.new().defvariable("bad name!", "float", initial=1.0), ValidationError),
        (
            lambda: (
                Program.new()
                .defvariable("t", "float", initial=1.0)
                .defvariable("t", "float", initial=1.0)
            ),
            ProgramError,
        ),
        (lambda: Program.new().chain(["ChainOfThought"]), ProgramError),
        (lambda: Program.new().chain("q -> a"), ProgramError),
        (lambda: Predict("question answer"), ProgramError),
        (lambda: Predict("q -> "), ProgramError),
        (lambda: Predict("q, q -> a"), ProgramError),
        (lambda: Predict(42), ProgramError),
        (lambda: Predict("q -> a").bind_to_variable("t", as_="top_k"), ProgramError),
        (
            lambda: (
                Predict("q -> a")
                .bind_to_variable("m", as_="model")
                .bind_to_variable("n", as_="llm_model")
            ),
            ProgramError,
        ),
        (
            lambda: (
                Predict("q -> a")
                .bind_to_variable("t", as_="temperature")
                .bind_to_variable("u", as_="temperature")
            ),
            ProgramError,
        ),
        (lambda: Predict("q -> a").bind_to_variable("not a name"), ProgramError),
        (lambda: QueryClassifier().bind_to_variable("temperature"), ProgramError),
        (lambda: ReAct("q -> a", tools=[lambda x: x]), ProgramError),
        (lambda: ReAct("q -> a", tools="dspex_jupyter.testing.tools.search_docs"), ProgramError),
        (lambda: ReAct("q -> a", tools=["not a path"]), ProgramError),
        (lambda: ReAct("q -> a", max_iters=0), ProgramError),
        (lambda: function(lambda x: x), ProgramError),
        (lambda: function(shout, inputs="text"), ProgramError),
    ],
)
def test_bad_specs_raise_typed_errors(build, error):
    with pytest.raises(error) as info:
        build()
    assert isinstance(info.value, DSPexError)


def test_tools_defined_in_main_have_no_path_so_react_ships_them_as_code():
    """A notebook function cannot be imported by name (tool_path says why); ReAct then
    carries it as code, which only a server allowing code runs (tests/bridge/test_security_code.py)."""
    import __main__

    def tool(x: str) -> str:
        return x

    tool.__module__ = "__main__"
    tool.__qualname__ = "tool"
    __main__.tool = tool
    try:
        with pytest.raises(ProgramError, match="__main__"):
            tool_path(tool)
        module = ReAct("q -> a", tools=[tool])
        (entry,) = module.tools
        assert entry["$code"] == "tool tool" and entry["pickle"]
        assert repr(module) == "ReAct('q -> a', tools=['tool'], max_iters=5)"
    finally:
        del __main__.tool


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"format": "other/9"},
        {"variables": {}, "modules": []},
        {"modules": [{"type": "Nope"}]},
        {"modules": [{"type": "Predict", "kind": "native", "options": {"signature": "q -> a"}}]},
        {"modules": [{"type": "Predict", "options": {"signature": "q -> a"}, "extra": 1}]},
        {"modules": [{"type": "Predict", "options": {"signatur": "q -> a"}}]},
        {
            "modules": [
                {"type": "Predict", "options": {"signature": "q -> a"}, "bindings": {"top_k": "x"}}
            ]
        },
        {"variables": [{"name": "t", "type": "float"}]},
        {"variables": [{"name": "t", "type": "float", "initial": "x"}]},
        {"unknown": True},
        {"modules": [{"type": "Predict", "options": {"signature": "q -> a", "x": float("nan")}}]},
    ],
)
def test_from_dict_rejects_malformed_specs(data):
    with pytest.raises(ProgramError):
        Program.from_dict(data)


def test_program_namespace():
    with pytest.raises(TypeError):
        Program()
    assert Program.new("x").name == "x"
