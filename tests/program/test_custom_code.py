"""Notebook-defined code end to end: the kernel's private server (it allows code), real
DSPy workers, the test LM server. Custom modules, typed signatures, notebook tools, and
the errors when that code cannot load or raises, after which the pool keeps working.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from typing import Literal, Optional

import cloudpickle
import dspy
import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.errors import ModuleExecutionError, ProgramError
from dspex_jupyter.modules import ChainOfThought, Custom, Predict, ReAct


class Shout(dspy.Module):
    """A two-step module of the notebook's own: answer, then shout it."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self.suffix = suffix
        self.qa = dspy.Predict("question -> answer")

    def forward(self, question: str, style: str = "loud") -> dspy.Prediction:
        answer = self.qa(question=question).answer
        return dspy.Prediction(answer=answer.upper() + self.suffix, style=style)


class Failing(dspy.Module):
    def forward(self, question: str) -> dspy.Prediction:
        raise RuntimeError(f"no answer for {question}")


class Unbuildable(dspy.Module):
    def __init__(self) -> None:
        raise ValueError("needs a database")

    def forward(self, question: str) -> dspy.Prediction:
        return dspy.Prediction(answer=question)


class Classify(dspy.Signature):
    """Classify the review's sentiment."""

    review: str = dspy.InputField(desc="one customer review")
    label: Literal["pos", "neg"] = dspy.OutputField()
    stars: int = dspy.OutputField(desc="1 to 5")
    helpful: bool = dspy.OutputField()
    tags: list[str] = dspy.OutputField()


def word_count(text: str) -> str:
    """Count the words of a text."""
    return f"{len(text.split())} words"


@pytest.fixture(scope="module")
def context(lm_server):
    ctx = Context.start(lm=lm_server.lm_config())
    yield ctx
    ctx.stop()


def test_a_custom_module_runs_in_the_worker_with_bound_variables(context, lm):
    context.defvariable("temperature", "float", initial=0.3)
    module = Custom(Shout, "!").bind_to_variable("temperature")
    spec = Program.new().chain([module])
    result = spec.run({"question": "hi"}, context=context)
    assert result.outputs == {"answer": "TEST ANSWER FOR: HI!", "style": "loud"}
    assert lm.requests[-1]["temperature"] == 0.3
    assert result.trace[0].variables["temperature"]["version"] == 1
    context.set("temperature", 0.9)  # read when the module starts: the next run uses it
    spec.run({"question": "again"}, context=context)
    assert lm.requests[-1]["temperature"] == 0.9


def test_a_custom_module_is_data_in_the_spec(context):
    module = Custom(Shout, "?").bind_to_variable("tone", as_="style")
    assert module.name == "Shout" and module.input_fields() == ["question"]
    assert module.output_fields() is None
    assert repr(module) == "Custom(Shout).bind_to_variable('tone', as_='style')"
    spec = Program.new().defvariable("tone", "str", initial="calm").chain([module])
    again = Program.from_dict(spec.to_dict())
    assert again == spec
    result = again.run({"question": "x"}, context=context)  # rebuilt from data, still runs
    assert result.outputs == {"answer": "TEST ANSWER FOR: X?", "style": "calm"}
    with pytest.raises(ProgramError, match="no bindable parameter 'instructions'"):
        module.bind_to_variable("instructions")
    with pytest.raises(ProgramError, match="dspy.Module subclass"):
        Custom(Shout("!"))


@pytest.mark.parametrize("kind", [Predict, ChainOfThought])
def test_a_class_based_signature_with_typed_fields_works_like_a_string(context, lm, kind):
    module = kind(Classify)
    assert module.options["signature"] == (
        "review: str -> label: Literal['pos', 'neg'], stars: int, helpful: bool, tags: list[str]"
    )
    result = Program.new().chain([module]).run({"review": "lovely"}, context=context)
    outputs = dict(result.outputs)
    outputs.pop("reasoning", None)
    assert outputs == {"label": "pos", "stars": 1, "helpful": True, "tags": ["lovely"]}
    prompt = lm.requests[-1]["messages"][0]["content"]
    assert "one customer review" in prompt and "1 to 5" in prompt
    assert "Classify the review's sentiment." in prompt


def test_a_signature_type_that_is_not_data_is_refused_at_build_time():
    class Odd(dspy.Signature):
        question: str = dspy.InputField()
        when: complex = dspy.OutputField()

    with pytest.raises(ProgramError, match="signature Odd: field 'when'.*complex"):
        Predict(Odd)


def test_a_notebook_function_is_a_react_tool(context):
    nested_unit = "words"

    def count(text: str) -> str:  # a closure: no import path at all
        """Count the words of a text."""
        return f"{len(text.split())} {nested_unit}"

    for tool, seen in ((count, "2 words"), (word_count, "2 words")):
        module = ReAct("question -> answer", tools=[tool], max_iters=3)
        result = Program.new().chain([module]).run({"question": "two words"}, context=context)
        assert result.outputs["trajectory"]["observation_0"] == seen


def test_code_that_does_not_load_names_the_object_and_the_next_run_works(
    context, tmp_path, monkeypatch
):
    (tmp_path / "gone_helpers.py").write_text(
        "import dspy\nclass Gone(dspy.Module):\n    def forward(self, question):\n"
        "        return dspy.Prediction(answer=question)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_helpers  # type: ignore[import-not-found]

    data = Custom(gone_helpers.Gone).to_dict()
    # what a kernel with another Python path would send: the class by reference
    by_reference = cloudpickle.dumps((gone_helpers.Gone, (), {}))
    data["options"]["code"]["pickle"] = base64.b64encode(by_reference).decode()
    data["options"]["code"]["sha256"] = hashlib.sha256(by_reference).hexdigest()
    spec = Program.from_dict({"format": "dspex-program/1", "modules": [data]})
    sys.modules.pop("gone_helpers")
    with pytest.raises(ProgramError, match="cannot load module Gone in the bridge worker"):
        spec.run({"question": "q"}, context=context)
    ok = Program.new().chain([Custom(Shout, ".")]).run({"question": "after"}, context=context)
    assert ok.outputs["answer"] == "TEST ANSWER FOR: AFTER."


@pytest.mark.parametrize(
    "module, message",
    [
        (Failing, r"module Failing failed .*RuntimeError: no answer for boom"),
        (Unbuildable, r"module Unbuildable could not be built .*ValueError: needs a database"),
    ],
)
def test_a_custom_module_that_raises_names_itself_and_the_pool_stays_healthy(
    context, module, message
):
    with pytest.raises(ModuleExecutionError, match=message):
        Program.new().chain([Custom(module)]).run({"question": "boom"}, context=context)
    ok = Program.new().chain([Custom(Shout, "!")]).run({"question": "next"}, context=context)
    assert ok.outputs["answer"] == "TEST ANSWER FOR: NEXT!"


def test_every_supported_field_type_survives_the_trip_as_text():
    """The text the worker rebuilds from gives DSPy back the very same annotations."""

    class Many(dspy.Signature):
        a: int = dspy.InputField()
        b: Optional[float] = dspy.InputField()  # noqa: UP045 (both spellings are supported)
        c: dict[str, list[int]] = dspy.OutputField()
        d: list[Literal["x", 2, True]] = dspy.OutputField()
        e: bool | None = dspy.OutputField()

    text = Predict(Many).options["signature"]
    rebuilt = dspy.ensure_signature(text)
    assert {k: v.annotation for k, v in rebuilt.fields.items()} == {
        k: v.annotation for k, v in Many.fields.items()
    }
    assert Predict(Many).options.get("instructions") is None  # DSPy's default is not kept


def test_a_worker_loads_no_code_the_server_did_not_allow(pool, lm, tmp_path):
    """Defence in depth: the worker itself refuses a spec with code unless told it is allowed."""
    from dspex_jupyter.errors import AccessDenied

    from .conftest import lm_config

    marker = tmp_path / "built"
    spec = Custom(Marking, str(marker)).to_dict()
    with pytest.raises(AccessDenied, match="module Marking"):
        pool.execute(spec, {"question": "q"}, {}, lm_config(lm))
    assert not marker.exists()
    result = pool.execute(spec, {"question": "q"}, {}, lm_config(lm), allow_code=True)
    assert result["outputs"] == {"answer": "q"} and marker.exists()


class Marking(dspy.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        open(marker, "w").close()

    def forward(self, question: str) -> dspy.Prediction:
        return dspy.Prediction(answer=question)
