"""The embedded model's loopback endpoint: token-protected, OpenAI-shaped, knobs honoured."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import dspy
import jsonschema
import pytest

from dspex_jupyter.bridge.grammar import output_schema
from dspex_jupyter.bridge.local_lm import LocalLMHost

from .conftest import LABELS

SCHEMA = {
    "type": "object",
    "properties": {"topic": {"enum": list(LABELS)}},
    "required": ["topic"],
    "additionalProperties": False,
}


def post(host: LocalLMHost, body: object, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        host.url + "/chat/completions", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=280) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def classify(text: str, **knobs: object) -> dict:
    return {
        "messages": [{"role": "user", "content": f"Topic of: {text}"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": SCHEMA}},
        **knobs,
    }


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_request_without_the_token_is_rejected(host, token):
    before = len(host.requests)
    code, body = post(host, classify("a goal", temperature=0.0, max_tokens=32), token)
    assert code == 401
    assert body["error"]["type"] == "authentication_error"
    assert host.token not in json.dumps(body)
    assert len(host.requests) == before  # never reached the model


def test_constrained_answer_with_usage_and_the_knobs_as_sent(host):
    code, body = post(
        host, classify("The striker scored.", temperature=0.0, max_tokens=64, seed=7), host.token
    )
    assert code == 200, body
    answer = json.loads(body["choices"][0]["message"]["content"])
    assert set(answer) == {"topic"} and answer["topic"] in LABELS
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    assert body["model"] == host.model_name  # not the file path
    assert host.requests[-1]["temperature"] == 0.0
    assert host.requests[-1]["max_tokens"] == 64
    assert host.requests[-1]["seed"] == 7


def test_litellms_max_completion_tokens_is_honoured(host):
    body = classify("Bake the bread.", temperature=0.0, max_completion_tokens=3)
    body["response_format"] = None
    body.pop("response_format")
    code, reply = post(host, body, host.token)
    assert code == 200, reply
    assert host.requests[-1]["max_tokens"] == 3
    assert reply["usage"]["completion_tokens"] <= 3


def test_concurrent_requests_all_answer(host):
    texts = ["a goal", "an election", "a recipe", "a laptop"]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda t: post(host, classify(t, temperature=0.0, max_tokens=32), host.token), texts
            )
        )
    for code, body in results:
        assert code == 200, body
        assert json.loads(body["choices"][0]["message"]["content"])["topic"] in LABELS


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"messages": "not a list"}, 400),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, 400),
        ({"messages": [{"role": "user", "content": "hi"}], "grammar": "root ::= ["}, 400),
        ({"messages": [{"role": "user", "content": "word " * 5000}], "max_tokens": 8}, 400),
    ],
    ids=["malformed", "stream", "bad-grammar", "larger-than-context"],
)
def test_bad_requests_get_an_error_and_the_endpoint_keeps_serving(host, body, code):
    status, reply = post(host, body, host.token)
    assert status == code, reply
    assert reply["error"]["message"]
    ok, _ = post(host, classify("a goal", temperature=0.0, max_tokens=32), host.token)
    assert ok == 200


@pytest.mark.parametrize(
    "signature",
    [
        "question -> answer",
        "question -> answer: int, sure: bool",
        "text -> keywords: list[str], score: float",
        "question -> reasoning, verdict: Literal['yes', 'no', 'unsure']",
    ],
)
def test_llama_cpp_builds_the_grammar_of_a_signature_and_answers_within_it(host, signature):
    schema = output_schema(dspy.ensure_signature(signature))
    body = {
        "messages": [{"role": "user", "content": "Answer in JSON: is water wet?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": schema}},
        "temperature": 0.0,
        "max_tokens": 256,
    }
    code, reply = post(host, body, host.token)
    assert code == 200, reply
    jsonschema.validate(json.loads(reply["choices"][0]["message"]["content"]), schema)
