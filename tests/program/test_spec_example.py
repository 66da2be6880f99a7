"""The README's first program end to end through Program.run.

The native step runs in the kernel; the bridged step runs on a real bridge
server against the scripted LM server. A missing bridge is a failure, not a skip.
"""

from __future__ import annotations

import json

from dspex_jupyter import Context, Program, Variables
from dspex_jupyter.modules import ChainOfThought
from dspex_jupyter.native import QueryClassifier

from .conftest import SECRET, lm_config


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


def test_spec_one_as_written(lm):
    context = Context.start(lm=lm_config(lm))
    try:
        assert context.backend == "local"
        spec = MyProgram().build()
        result = Program.run(spec, {"question": "What is DSPex?"}, context=context)
        assert context.backend == "bridged"
        assert result.outputs["category"] == "factual"
        assert result.outputs["answer"] == "Test answer for: What is DSPex?"
        assert lm.requests[-1]["temperature"] == 0.7 and lm.requests[-1]["model"] == "gpt-4"

        Variables.set(context, "temperature", 0.9)
        result2 = Program.run(spec, {"question": "How does it work?"}, context=context)
        assert lm.requests[-1]["temperature"] == 0.9 and lm.requests[-1]["model"] == "gpt-4"
        classify, cot = result2.trace
        assert classify.kind == "native" and classify.versions == {"model": 1}
        assert cot.kind == "bridged" and cot.versions == {"temperature": 2}
        assert cot.lm["model"] == "openai/gpt-4" and cot.lm["model_source"] == "upstream"
        assert cot.usage["prompt_tokens"] > 0 and cot.usage["completion_tokens"] > 0

        Variables.set(context, "model", "claude-3")
        result3 = spec.run({"question": "Compare A vs B"}, context=context)
        assert lm.requests[-1]["model"] == "claude-3"
        assert result3.trace[0].versions == {"model": 2}

        for summary in context.runs:
            assert SECRET not in json.dumps(summary)
    finally:
        context.stop()
