"""``Program.evaluate`` and ``overrides=`` through a real bridge server and DSPy workers.

The LM is the scripted test server: it answers the capital only when the
prompt carries the PRECISE instruction, so the instruction variable decides
the score.
"""

from __future__ import annotations

import threading

import pytest

from dspex_jupyter import Program
from dspex_jupyter.errors import ValidationError
from dspex_jupyter.modules import ChainOfThought, Predict
from dspex_jupyter.testing.lm_server import answer_messages

from . import scripted

SPEC = (
    Program.new("capitals-lm")
    .defvariable(
        "instructions",
        "choice",
        initial=scripted.VAGUE,
        constraints={"choices": [scripted.VAGUE, scripted.PRECISE]},
    )
    .defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    .chain(
        [
            Predict("country -> capital")
            .bind_to_variable("instructions")
            .bind_to_variable("temperature")
        ]
    )
)


def test_evaluate_with_overrides_never_writes_the_session(bridged_ctx, lm):
    ctx = bridged_ctx
    vague = Program.evaluate(SPEC, scripted.DEVSET, "exact_match", context=ctx, num_threads=4)
    assert vague.score == 0.0 and not vague.errors
    before = {n: ctx.variable(n) for n in ("instructions", "temperature")}
    precise = Program.evaluate(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=ctx,
        num_threads=4,
        overrides={"instructions": scripted.PRECISE, "temperature": 0.2},
    )
    assert precise.score == 1.0, precise.errors
    after = {n: ctx.variable(n) for n in ("instructions", "temperature")}
    assert {n: (r.value, r.version) for n, r in after.items()} == {
        n: (r.value, r.version) for n, r in before.items()
    }
    assert ctx.backend == "bridged"
    row = precise.rows[0]
    assert row.variables["temperature"]["override"] is True
    assert row.variables["temperature"]["value"] == 0.2
    assert row.variables["instructions"]["version"] == before["instructions"].version
    temps = {r["temperature"] for r in lm.requests[-len(scripted.DEVSET) :]}
    assert temps == {0.2}
    assert precise.usage["calls"] == len(scripted.DEVSET)
    assert precise.usage["prompt_tokens"] == sum(r.usage["prompt_tokens"] for r in precise.rows)
    assert precise.usage["prompt_tokens"] > 0 and precise.usage["completion_tokens"] > 0
    assert len(ctx.runs) == 0  # an evaluation records no per-example runs


def test_examples_run_concurrently_through_the_pool(bridged_ctx, lm):
    """A barrier in the LM that only four concurrent requests can pass."""
    barrier = threading.Barrier(4, timeout=60)

    def responder(messages):
        barrier.wait()
        return scripted.responder(messages)

    lm.responder = responder
    ev = Program.evaluate(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=bridged_ctx,
        num_threads=4,
        overrides={"instructions": scripted.PRECISE},
    )
    assert ev.score == 1.0, ev.errors
    assert not barrier.broken


def test_a_failing_example_is_a_row(bridged_ctx, lm):
    devset = [*scripted.DEVSET[:3], {"country": "Nowhere", "capital": "?"}]
    ev = Program.evaluate(
        SPEC,
        devset,
        "exact_match",
        context=bridged_ctx,
        num_threads=2,
        overrides={"instructions": scripted.PRECISE},
    )
    assert [r.index for r in ev.errors] == [3]
    assert "ModuleExecutionError" in ev.errors[0].error
    assert ev.score == pytest.approx(3 / 4)


def test_a_bridged_straggler_times_out(bridged_ctx, lm):
    gate = threading.Event()

    def responder(messages):
        text, values = scripted.responder(messages)
        if "Japan" in str(messages[-1].get("content")):
            gate.wait(60)
        return text, values

    lm.responder = responder
    try:
        ev = Program.evaluate(
            SPEC,
            scripted.DEVSET,
            "exact_match",
            context=bridged_ctx,
            num_threads=3,
            overrides={"instructions": scripted.PRECISE},
            timeout_s=1.0,
        )
    finally:
        gate.set()
    assert [r.index for r in ev.timed_out] == [1]
    assert ev.score == pytest.approx(7 / 8)


def test_program_run_overrides_and_bad_overrides(bridged_ctx, lm):
    result = Program.run(
        SPEC,
        {"country": "Peru"},
        context=bridged_ctx,
        overrides={"instructions": scripted.PRECISE, "temperature": 0.1},
    )
    assert result["capital"] == "Lima" and lm.requests[-1]["temperature"] == 0.1
    assert bridged_ctx.get("temperature") == 0.7
    n = len(lm.requests)
    with pytest.raises(ValidationError, match="override instructions"):
        Program.run(
            SPEC,
            {"country": "Peru"},
            context=bridged_ctx,
            overrides={"instructions": "something else"},
        )
    assert len(lm.requests) == n


def test_the_server_validates_overrides_too(bridged_ctx, lm):
    """Bypassing the kernel's check, the bridge still refuses a value out of range."""
    module = SPEC.modules[0]
    with pytest.raises(ValidationError, match="temperature"):
        bridged_ctx.execute_module(
            module.to_dict(),
            {"country": "Peru"},
            module.bindings,
            overrides={"temperature": 5.0},
        )
    ok = bridged_ctx.execute_module(
        module.to_dict(),
        {"country": "Peru"},
        module.bindings,
        overrides={"temperature": 0.3, "instructions": scripted.PRECISE},
    )
    assert ok["outputs"]["capital"] == "Lima"
    assert ok["variables"]["temperature"]["override"] is True
    assert bridged_ctx.get("temperature") == 0.7


def test_chain_of_thought_with_the_default_responder(bridged_ctx, lm):
    lm.responder = answer_messages
    spec = Program.new().chain([ChainOfThought("question -> answer")])
    devset = [{"question": "What is DSPex?", "answer": "Test answer for: What is DSPex?"}]
    ev = spec.evaluate(devset, "exact_match", context=bridged_ctx)
    assert ev.score == 1.0 and ev.rows[0].outputs["reasoning"]
