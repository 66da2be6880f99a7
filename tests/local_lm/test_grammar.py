"""The JSON schema built from a signature: exactly its outputs, choices kept to their values."""

from __future__ import annotations

import json

import dspy
import pytest

from dspex_jupyter.bridge.grammar import (
    REASONING_MAX,
    TEXT_MAX,
    constrained_json_adapter,
    field_schema,
    output_schema,
    text_schema,
)
from dspex_jupyter.errors import ProgramError

from .conftest import LABELS, TOPIC_SIGNATURE


def test_predict_schema_is_exactly_the_outputs_with_choices_as_enum():
    schema = output_schema(dspy.Predict(TOPIC_SIGNATURE).signature)
    assert schema == {
        "type": "object",
        "properties": {"topic": {"enum": list(LABELS)}},
        "required": ["topic"],
        "additionalProperties": False,
    }


def test_chain_of_thought_puts_reasoning_first_and_caps_free_text():
    signature = dspy.ChainOfThought("question -> answer, score: int, tags: list[str]")
    schema = output_schema(signature.predict.signature)
    assert list(schema["properties"]) == ["reasoning", "answer", "score", "tags"]
    assert schema["required"] == ["reasoning", "answer", "score", "tags"]
    assert schema["properties"]["reasoning"] == text_schema(REASONING_MAX)
    assert schema["properties"]["answer"] == text_schema(TEXT_MAX)
    assert schema["properties"]["score"] == {"type": "integer"}
    assert schema["properties"]["tags"]["items"] == text_schema(TEXT_MAX)


def test_free_text_is_one_to_max_characters():
    assert text_schema(5) == {"type": "string", "minLength": 1, "maxLength": 5}
    assert "pattern" not in text_schema()  # llama.cpp ignores the whole schema for a pattern


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (bool, {"type": "boolean"}),
        (float, {"type": "number"}),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (dict[str, int], {"type": "object"}),
    ],
)
def test_scalar_and_composite_types(annotation, expected):
    assert field_schema(annotation) == expected


def test_an_unschemable_type_is_a_program_error():
    class Opaque:
        pass

    with pytest.raises(ProgramError, match="cannot build a grammar"):
        field_schema(Opaque)


def test_the_adapter_sends_the_schema_and_parses_a_conforming_answer():
    adapter = constrained_json_adapter()
    signature = dspy.ChainOfThought(TOPIC_SIGNATURE).predict.signature
    kwargs: dict = {}
    adapter._prepare_response_format(None, kwargs, signature)
    assert kwargs["response_format"]["type"] == "json_schema"
    assert kwargs["response_format"]["json_schema"]["schema"] == output_schema(signature)
    parsed = adapter.parse(signature, json.dumps({"reasoning": "a match", "topic": "sports"}))
    assert parsed == {"reasoning": "a match", "topic": "sports"}
    with pytest.raises(Exception, match="topic"):
        adapter.parse(signature, json.dumps({"reasoning": "x", "topic": "weather"}))
