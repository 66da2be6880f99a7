"""The real model end to end: Program.run -> gRPC -> bridge server -> worker -> llama.cpp.

No LM is configured anywhere, so the bridge hosts the embedded model (once)
and the workers reach it over its token-protected loopback endpoint. The
assertions are on structure (fields present and parsed, choices within their
labels, usage counted, the knobs as llama.cpp received them), never on the
wording of a weak model's answers.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.bridge.server import BridgeServer
from dspex_jupyter.bridge.store import open_store
from dspex_jupyter.modules import ChainOfThought, Predict

from .conftest import LABELS, TOPIC_EXAMPLES, TOPIC_SIGNATURE


@pytest.fixture(scope="module")
def bridge() -> Iterator[BridgeServer]:
    token = secrets.token_urlsafe(16)
    server = BridgeServer("127.0.0.1:0", token, open_store("memory", 1000), workers=1).start()
    server.token = token  # type: ignore[attr-defined]
    yield server
    server.stop(grace=0.5)


def local_host(server: BridgeServer):
    return server.servicer._pool.local_lm


def context(server: BridgeServer, **options) -> Context:
    return Context.start(bridge=server.address, token=server.token, **options)


@pytest.mark.parametrize("module", [Predict, ChainOfThought], ids=["Predict", "ChainOfThought"])
def test_choice_outputs_parse_and_stay_within_their_labels(bridge, module):
    ctx = context(bridge)
    try:
        spec = Program.new().chain([module(TOPIC_SIGNATURE)])
        for text, _label in TOPIC_EXAMPLES:
            result = Program.run(spec, {"text": text}, context=ctx)
            assert result.outputs["topic"] in LABELS
            expected = {"reasoning", "topic"} if module is ChainOfThought else {"topic"}
            assert set(result.outputs) == expected
            if module is ChainOfThought:
                assert isinstance(result.outputs["reasoning"], str) and result.outputs["reasoning"]
            entry = result.trace[-1]
            assert entry.usage["prompt_tokens"] > 0 and entry.usage["completion_tokens"] > 0
            assert entry.lm["provider"] == "local" and entry.lm["temperature"] == 0.0
    finally:
        ctx.stop()
    host = local_host(bridge)
    sent = host.requests[-1]["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["topic"] == {"enum": list(LABELS)}
    assert sent["required"] == (["reasoning", "topic"] if module is ChainOfThought else ["topic"])


def test_temperature_zero_seed_and_max_tokens_reach_llama_cpp(bridge):
    ctx = context(bridge, lm={"seed": 11, "max_tokens": 300})
    try:
        spec = (
            Program.new()
            .defvariable("temperature", "float", initial=1.0)
            .chain([Predict(TOPIC_SIGNATURE).bind_to_variable("temperature")])
        )
        host = local_host_after(ctx, bridge, spec)
        ctx.set("temperature", 0.0)
        result = Program.run(spec, {"text": "Bake the bread for an hour."}, context=ctx)
        assert result.trace[-1].lm["temperature"] == 0.0
        assert host.requests[-1]["temperature"] == 0.0  # not dropped as "unset"
        assert host.requests[-1]["seed"] == 11
        assert host.requests[-1]["max_tokens"] == 300
    finally:
        ctx.stop()


def local_host_after(ctx: Context, server: BridgeServer, spec):
    result = Program.run(spec, {"text": "The match ended in a draw."}, context=ctx)
    host = local_host(server)
    assert host.requests[-1]["temperature"] == 1.0 == result.trace[-1].lm["temperature"]
    return host


def test_the_model_is_loaded_once_and_stops_with_the_server():
    token = secrets.token_urlsafe(16)
    server = BridgeServer("127.0.0.1:0", token, open_store("memory", 100), workers=1).start()
    ctx = Context.start(bridge=server.address, token=token)
    try:
        spec = Program.new().chain([ChainOfThought("question -> answer")])
        Program.run(spec, {"question": "What is the capital of France?"}, context=ctx)
        host = local_host(server)
        load_s, port = host.load_s, int(host.url.rsplit(":", 1)[1].split("/")[0])
        Program.run(spec, {"question": "What colour is the sky?"}, context=ctx)
        assert host.load_s == load_s and host.loaded  # not reloaded by the second run
    finally:
        ctx.stop()
        server.stop(grace=0.5)
    assert not host.loaded
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


#: Ten short texts for the smoke evaluation (structure only: a 135M model's accuracy is in bench/).
TEN = [
    *TOPIC_EXAMPLES,
    ("Our team won the basketball championship last night.", "sports"),
    ("The senator announced her campaign for governor.", "politics"),
    ("Bake the bread for forty minutes until golden.", "food"),
    ("The software update fixes a security bug in the browser.", "technology"),
    ("The goalkeeper saved a penalty in the last minute.", "sports"),
    ("Add a pinch of salt to the soup and stir.", "food"),
]


def test_a_ten_example_evaluation_on_the_real_model(bridge):
    ctx = context(bridge)
    try:
        spec = Program.new().chain([Predict(TOPIC_SIGNATURE)])
        devset = [{"text": text, "topic": label} for text, label in TEN]
        evaluation = Program.evaluate(
            spec, devset, "exact_match", context=ctx, num_threads=4, display_progress=False
        )
        assert evaluation.n == 10 and not evaluation.errors and not evaluation.timed_out
        assert all(row.outputs["topic"] in LABELS for row in evaluation.rows)
        assert 0.0 <= evaluation.score <= 1.0
        assert evaluation.score == sum(row.score for row in evaluation.rows) / 10
        assert evaluation.usage["prompt_tokens"] > 0 and evaluation.usage["completion_tokens"] > 0
    finally:
        ctx.stop()


def test_one_easy_fact_the_model_gets_right(bridge):
    ctx = context(bridge)
    try:
        spec = Program.new().chain([ChainOfThought("question -> answer")])
        result = Program.run(spec, {"question": "What is the capital of France?"}, context=ctx)
        assert "paris" in result.outputs["answer"].lower()
    finally:
        ctx.stop()
