"""The test LM server answers real, unpatched DSPy for arbitrary signatures."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import dspy
import pytest

from dspex_jupyter.bridge.handshake import wait_ready
from dspex_jupyter.testing import LMServer
from dspex_jupyter.testing.lm_server import answer_messages

from .conftest import SECRET


def make_lm(server, model="openai/test-lm", **kwargs):
    return dspy.LM(model, api_base=server.url, api_key=SECRET, cache=False, **kwargs)


@pytest.mark.parametrize(
    "signature, inputs, expected",
    [
        ("question -> answer", {"question": "What is DSPex?"}, {"answer": str}),
        (
            "document, topic -> summary, keywords: list[str]",
            {"document": "Long text", "topic": "x"},
            {"summary": str, "keywords": list},
        ),
        (
            "text -> sentiment: bool, score: float, count: int",
            {"text": "great"},
            {"sentiment": bool, "score": float, "count": int},
        ),
        ("claim -> verdict: Literal['true', 'false']", {"claim": "sky is green"}, {"verdict": str}),
    ],
)
@pytest.mark.parametrize("module", ["Predict", "ChainOfThought"])
def test_predict_and_cot_for_any_signature(lm, module, signature, inputs, expected):
    program = getattr(dspy, module)(signature)
    with dspy.context(lm=make_lm(lm, temperature=0.4), track_usage=True):
        prediction = program(**inputs)
    for name, kind in expected.items():
        assert isinstance(prediction[name], kind), (name, prediction[name])
    if module == "ChainOfThought":
        assert prediction.reasoning.startswith("Let me think step by step")
    assert "openai/test-lm" in prediction.get_lm_usage()
    request = lm.requests[-1]
    assert request["model"] == "test-lm" and request["temperature"] == 0.4
    assert request["authorized"] and request["messages"][0]["role"] == "system"


def test_answers_are_deterministic(lm):
    program = dspy.Predict("question -> answer")
    with dspy.context(lm=make_lm(lm)):
        a = program(question="Why?").answer
        b = program(question="Why?").answer
    assert a == b == "Test answer for: Why?"


def test_react_calls_a_tool_then_finishes(lm):
    from dspex_jupyter.testing.tools import search_docs

    agent = dspy.ReAct("question -> answer", tools=[search_docs], max_iters=4)
    with dspy.context(lm=make_lm(lm)):
        prediction = agent(question="What is a dspex context?")
    trajectory = prediction.trajectory
    assert trajectory["tool_name_0"] == "search_docs"
    assert trajectory["tool_args_0"] == {"query": "What is a dspex context?"}
    assert "DSPex runs DSPy programs" in trajectory["observation_0"]
    assert trajectory["tool_name_1"] == "finish"
    assert prediction.answer == "Test answer for: What is a dspex context?"
    assert len(lm.requests) == 3  # two ReAct steps and the extraction


def test_latency_usage_and_recording(lm):
    lm.latency = 0.05
    body = json.dumps(
        {"model": "m", "temperature": 0.1, "messages": [{"role": "user", "content": "hi there"}]}
    )
    request = urllib.request.Request(
        lm.url + "/chat/completions", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    assert reply["usage"]["prompt_tokens"] == 2 and reply["usage"]["total_tokens"] > 2
    assert lm.requests[-1]["model"] == "m" and lm.requests[-1]["temperature"] == 0.1
    assert not lm.requests[-1]["authorized"]
    bad = urllib.request.Request(
        lm.url + "/chat/completions", b"{nope", {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=30)
    assert info.value.code == 400


def test_json_adapter_prompts_get_json(lm):
    with dspy.context(lm=make_lm(lm), adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict("question -> answer, n: int")(question="How many?")
    assert prediction.answer == "Test answer for: How many?" and prediction.n == 1


def test_answer_messages_without_dspy_markers():
    text, fields = answer_messages([{"role": "user", "content": "plain chat"}])
    assert fields == {} and "completed" in text


def test_standalone_cli():
    proc = subprocess.Popen(
        [sys.executable, "-m", "dspex_jupyter.testing.lm_server", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_ready(proc, 60.0, "the LM server")
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/models", timeout=30) as response:
            assert json.loads(response.read())["data"][0]["id"] == "test-lm"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_context_manager_and_repr():
    server = LMServer(latency=0.01)
    with server:
        assert "127.0.0.1" in repr(server)
        assert server.lm_config()["api_base"] == server.url
    assert "stopped" in repr(server)
    with pytest.raises(ValueError):
        LMServer(latency=-1)
