"""The execution engine: WorkerPool processes running DSPy against the test LM server."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dspex_jupyter.bridge.execution import execute_module_request, lm_settings, scrub
from dspex_jupyter.bridge.workers import WorkerPool
from dspex_jupyter.errors import (
    ModuleExecutionError,
    ProgramError,
    ValidationError,
    VariableNotFound,
)
from dspex_jupyter.modules import ChainOfThought, Predict, ReAct
from dspex_jupyter.native import QueryClassifier
from dspex_jupyter.testing import LMServer

from .conftest import SECRET, lm_config

COT = ChainOfThought("question -> answer").bind_to_variable("temperature").to_dict()


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def question_of(request):
    text = request["messages"][-1]["content"]
    return text.split("[[ ## question ## ]]\n", 1)[1].split("\n", 1)[0]


def test_concurrent_cot_runs_each_with_its_own_model_and_temperature(pool, lm):
    lm.latency = 0.2
    n = 16

    def run(i):
        return pool.execute(
            COT,
            {"question": f"q{i}"},
            {"temperature": i / 10, "model": f"model-{i}"},
            lm_config(lm),
        )

    with ThreadPoolExecutor(n) as executor:
        results = list(executor.map(run, range(n)))
    for i, result in enumerate(results):
        assert result["outputs"] == {
            "reasoning": f"Let me think step by step about: q{i}",
            "answer": f"Test answer for: q{i}",
        }
        assert result["lm"]["model"] == f"openai/model-{i}"
        assert result["lm"]["temperature"] == i / 10
        usage = result["usage"]
        assert usage["calls"] == 1 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert result["latency_ms"] > 0 and result["total_ms"] >= result["latency_ms"]
        assert SECRET not in json.dumps(result)
    assert len(lm.requests) == n
    for request in lm.requests:
        i = int(question_of(request)[1:])
        assert request["model"] == f"model-{i}" and request["temperature"] == i / 10
        assert request["authorized"]
    assert {r["worker"]["pid"] for r in results} <= set(pool.pids())


def test_model_falls_back_to_lm_config_and_temperature_to_config(pool, lm):
    config = {**lm_config(lm, model="openai/base-model"), "temperature": 0.25, "max_tokens": 123}
    result = pool.execute(Predict("question -> answer").to_dict(), {"question": "x"}, {}, config)
    assert result["lm"] == {
        "model": "openai/base-model",
        "temperature": 0.25,
        "max_tokens": 123,
        "api_base": lm.url,
    }
    assert lm.requests[-1]["model"] == "base-model" and lm.requests[-1]["max_tokens"] == 123


def test_react_tools_resolve_in_the_worker(pool, lm):
    spec = ReAct(
        "question -> answer", tools=["dspex_jupyter.testing.tools.search_docs"], max_iters=3
    ).to_dict()
    result = pool.execute(spec, {"question": "what is a variable"}, {}, lm_config(lm))
    trajectory = result["outputs"]["trajectory"]
    assert trajectory["tool_name_0"] == "search_docs"
    assert trajectory["observation_0"].startswith("Variables are typed")
    assert result["outputs"]["answer"] == "Test answer for: what is a variable"
    assert result["usage"]["calls"] == 3


def test_instructions_and_input_fields_can_be_bound(pool, lm):
    spec = Predict("question, context -> answer").bind_to_variable("style", as_="instructions")
    spec = spec.bind_to_variable("ctx_text", as_="context").to_dict()
    pool.execute(
        spec,
        {"question": "q"},
        {"instructions": "Answer like a pirate.", "context": "from a variable"},
        lm_config(lm),
    )
    messages = lm.requests[-1]["messages"]
    assert "Answer like a pirate." in messages[0]["content"]
    assert "from a variable" in messages[-1]["content"]


@pytest.mark.parametrize(
    "spec, inputs, bound, error",
    [
        ({"type": "Nope"}, {"question": "q"}, {}, ProgramError),
        (QueryClassifier().to_dict(), {"question": "q"}, {}, ProgramError),
        (
            ReAct("question -> answer", tools=["no_such_module.tool"]).to_dict(),
            {"question": "q"},
            {},
            ProgramError,
        ),
        (COT, {}, {}, ProgramError),
        (COT, {"question": "q"}, {"temperature": "hot"}, ValidationError),
        (COT, {"question": "q"}, {"max_tokens": -1}, ValidationError),
    ],
)
def test_bad_requests_get_typed_errors(pool, lm, spec, inputs, bound, error):
    with pytest.raises(error):
        pool.execute(spec, inputs, bound, lm_config(lm))


def test_no_model_configured(pool):
    with pytest.raises(ModuleExecutionError, match="no LM model"):
        pool.execute(COT, {"question": "q"}, {}, {})


def test_lm_failure_is_a_clear_error_without_the_key(pool):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = {
        "model": "gpt-4",
        "api_base": f"http://127.0.0.1:{port}/v1",
        "api_key": SECRET,
        "num_retries": 0,
    }
    with pytest.raises(ModuleExecutionError) as info:
        pool.execute(COT, {"question": "q"}, {}, config)
    assert "ChainOfThought failed with openai/gpt-4" in str(info.value)
    assert SECRET not in str(info.value)


def test_api_keys_never_in_public_lm_settings():
    model, kwargs, public = lm_settings(
        {"model": "gpt-4", "api_base": "http://user:pw@host:1/v1", "api_key": SECRET},
        {"temperature": 1},
    )
    assert model == "openai/gpt-4" and kwargs["api_key"] == SECRET and kwargs["temperature"] == 1.0
    assert SECRET not in json.dumps(public) and "pw" not in public["api_base"]
    assert scrub(f"bad key {SECRET}", {"api_key": SECRET}) == "bad key ***"
    _, other, _ = lm_settings(
        {"model": "gpt-4", "api_base": "http://x/v1", "api_key": SECRET},
        {"model": "anthropic/claude-3"},
    )
    assert "api_key" not in other and "api_base" not in other


def test_execute_module_request_resolves_bindings_at_run_time(pool, lm):
    session = {"temperature": (0.9, 4), "model": ("claude-3", 2)}

    def lookup(name):
        try:
            return session[name]
        except KeyError:
            raise VariableNotFound(name, session) from None

    module = (
        ChainOfThought("question -> answer")
        .bind_to_variable("temperature")
        .bind_to_variable("model")
    )
    result = execute_module_request(
        pool, module.to_dict(), {"question": "q"}, module.bindings, lm_config(lm), lookup
    )
    assert result["variables"] == {
        "temperature": {"param": "temperature", "version": 4, "value": 0.9},
        "model": {"param": "model", "version": 2, "value": "claude-3"},
    }
    assert lm.requests[-1]["model"] == "claude-3" and lm.requests[-1]["temperature"] == 0.9
    missing = Predict("question -> answer").bind_to_variable("nope", as_="temperature")
    with pytest.raises(VariableNotFound):
        execute_module_request(
            pool, missing.to_dict(), {"question": "q"}, missing.bindings, lm_config(lm), lookup
        )
    with pytest.raises(ProgramError, match="differ"):
        execute_module_request(pool, module.to_dict(), {"question": "q"}, {}, lm_config(lm), lookup)


def test_timeout_fails_the_run_not_the_pool(pool, lm):
    lm.latency = 3.0
    with pytest.raises(ModuleExecutionError, match="did not finish"):
        pool.execute(COT, {"question": "slow"}, {}, lm_config(lm), timeout=0.5)
    lm.latency = 0.0
    assert pool.execute(COT, {"question": "fast"}, {}, lm_config(lm))["outputs"]["answer"]


def test_kill_9_fails_only_that_run_and_the_pool_recovers():
    with LMServer(latency=0.0) as lm, WorkerPool(1, threads_per_worker=8) as pool:
        assert pool.wait_ready(180)
        config = lm_config(lm)
        assert pool.execute(COT, {"question": "warm"}, {}, config)["outputs"]["answer"]
        victim = pool.pids()[0]
        lm.latency = 30.0
        future = pool.submit(COT, {"question": "doomed"}, {}, config)
        assert wait_for(lambda: any(question_of(r) == "doomed" for r in lm.requests))
        os.kill(victim, signal.SIGKILL)
        reply_error = future.exception(timeout=60)
        assert isinstance(reply_error, ModuleExecutionError)
        assert f"pid {victim}" in str(reply_error) and "killed by signal 9" in str(reply_error)
        lm.latency = 0.0
        result = pool.execute(COT, {"question": "after"}, {}, config, timeout=180)
        assert result["outputs"]["answer"] == "Test answer for: after"
        assert pool.restarts == 1 and pool.pids() != [victim]
        assert result["worker"]["pid"] == pool.pids()[0]


def test_killed_run_through_execute_raises_module_execution_error():
    with LMServer(latency=30.0) as lm, WorkerPool(1, threads_per_worker=4) as pool:
        assert pool.wait_ready(180)
        victim = pool.pids()[0]

        def kill_when_asked():
            assert wait_for(lambda: len(lm.requests) > 0)
            os.kill(victim, signal.SIGKILL)

        with ThreadPoolExecutor(1) as executor:
            executor.submit(kill_when_asked)
            with pytest.raises(ModuleExecutionError, match="before the run finished"):
                pool.execute(COT, {"question": "q"}, {}, lm_config(lm), timeout=120)
        assert wait_for(lambda: pool.pids() and pool.pids()[0] != victim)


def test_closed_pool_refuses_runs(lm):
    pool = WorkerPool(1).start()
    pool.close()
    with pytest.raises(ModuleExecutionError, match="closed"):
        pool.execute(COT, {"question": "q"}, {}, lm_config(lm))
    with pytest.raises(ValueError):
        WorkerPool(0)
