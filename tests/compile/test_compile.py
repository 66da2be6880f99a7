"""Program.compile against the test LM server, where demos make the answer right."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import ModuleExecutionError, ProgramError, ValidationError
from dspex_jupyter.modules import ChainOfThought, Predict
from dspex_jupyter.variables.compiled_state import is_compiled_state
from tests.bridge.conftest import child_pids

from .conftest import DATA

WAIT_S = 60.0


def wait_until(predicate, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _spec(name: str = "qa"):
    return Program.new("capitals").chain([Predict("country -> capital", name=name)])


def test_bootstrap_raises_the_score_and_rollback_undoes_it(ctx, lm):
    spec = _spec()
    compiled = spec.compile(
        DATA,
        "exact_match",
        context=ctx,
        display_progress=False,
        max_labeled_demos=3,
        max_bootstrapped_demos=3,
    )
    assert compiled.before.score == 0.0
    assert compiled.after.score == 1.0
    assert compiled.delta == 1.0
    assert compiled.variables == {"qa.state": 2}
    assert compiled.steps[0].demos_added == 3
    assert "demos" in compiled._repr_html_()
    state = ctx.get("qa.state")
    assert is_compiled_state(state) and state["optimizer"] == "bootstrap_fewshot"
    assert [v.version for v in ctx.history("qa.state")] == [1, 2]
    assert Program.run(spec, {"country": "Peru"}, context=ctx).outputs["capital"] == "Lima"
    ctx.rollback("qa.state", 1)  # the uncompiled state
    assert (
        Program.evaluate(spec, DATA, "exact_match", context=ctx, display_progress=False).score
        == 0.0
    )
    ctx.rollback("qa.state", 2)  # an earlier compiled state
    assert (
        Program.evaluate(spec, DATA, "exact_match", context=ctx, display_progress=False).score
        == 1.0
    )


def test_a_second_kernel_on_the_shared_session_runs_the_compiled_state(lm):
    server = ServerProcess("memory")
    try:
        a = Context.start(bridge=server.address, token=server.token, lm=lm.lm_config())
        b = Context.start(
            bridge=server.address, token=server.token, session_id=a.session_id, lm=lm.lm_config()
        )
        try:
            spec = _spec("shared_qa")
            before = Program.run(spec, {"country": "Japan"}, context=b).outputs["capital"]
            assert before == "unsure"
            Program.compile(spec, DATA, "exact_match", context=a, display_progress=False)
            assert wait_until(lambda: b.get("shared_qa.state", None) is not None)
            assert Program.run(spec, {"country": "Japan"}, context=b).outputs["capital"] == "Tokyo"
        finally:
            b.stop()
            a.stop()
    finally:
        server.stop()


def test_bad_arguments_change_nothing_and_run_nothing(ctx, lm):
    lm.clear()
    spec = _spec("bad")
    with pytest.raises(ValidationError, match="choose one of"):
        Program.compile(spec, DATA, "exact_match", optimizer="sgd", context=ctx)
    with pytest.raises(ValidationError, match="max_labeled_demos"):
        Program.compile(spec, DATA, "exact_match", context=ctx, max_labled_demos=2)
    with pytest.raises(ValidationError, match="built-in metric"):
        Program.compile(spec, DATA, lambda e, o: 1.0, context=ctx)
    twins = Program.new().chain([Predict("country -> capital"), Predict("capital -> country")])
    with pytest.raises(ProgramError, match="its own name"):
        Program.compile(twins, DATA, "exact_match", context=ctx)
    assert lm.requests == []
    with pytest.raises(KeyError):
        ctx.variable("bad.state")


def echo(country: str) -> dict:
    """A native step (a top-level function, as a spec needs)."""
    return {"country": country}


def test_native_steps_are_refused(ctx):
    from dspex_jupyter import native

    spec = Program.new().chain([native.function(echo, inputs=["country"], outputs=["country"])])
    with pytest.raises(ProgramError, match="native"):
        Program.compile(spec, DATA, "exact_match", context=ctx)


@pytest.mark.parametrize(
    ("optimizer", "options"),
    [
        ("bootstrap_random_search", {"num_candidate_programs": 1, "max_labeled_demos": 2}),
        (
            "mipro_v2",
            {
                "auto": None,
                "num_candidates": 2,
                "num_trials": 2,
                "max_labeled_demos": 2,
                "max_bootstrapped_demos": 1,
                "minibatch": False,
            },
        ),
        ("copro", {"breadth": 2, "depth": 1}),
        ("gepa", {"max_metric_calls": 12, "reflection_minibatch_size": 2}),
    ],
)
def test_each_optimizer_runs_end_to_end(ctx, optimizer, options):
    spec = Program.new().chain([ChainOfThought("country -> capital", name=f"o_{optimizer}")])
    compiled = Program.compile(
        spec,
        DATA,
        "exact_match",
        optimizer=optimizer,
        context=ctx,
        display_progress=False,
        **options,
    )
    assert compiled.optimizer == optimizer
    assert compiled.metric_calls > 0
    assert ctx.variable(f"o_{optimizer}.state").version == 2


def test_kill9_of_the_worker_mid_compile_fails_that_compile_only(lm):
    server = ServerProcess("memory")
    ctx = Context.start(bridge=server.address, token=server.token, lm=lm.lm_config())
    try:
        spec = _spec("killed")
        Program.run(spec, {"country": "Peru"}, context=ctx)  # workers up
        errors: list[BaseException] = []
        lm.clear()
        lm.latency = 0.5
        started = threading.Event()

        def go() -> None:
            started.set()
            try:
                Program.compile(spec, DATA, "exact_match", context=ctx, display_progress=False)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=go)
        thread.start()
        workers = child_pids(server.pid)
        # the compile's LM calls (after the kernel's "before" evaluation) come from a worker
        assert wait_until(lambda: len(lm.requests) > len(DATA))
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        thread.join(WAIT_S)
        assert errors and isinstance(errors[0], ModuleExecutionError)
        assert "killed" in str(errors[0]) or "worker" in str(errors[0])
        with pytest.raises(KeyError):  # nothing was written
            ctx.variable("killed.state")
        lm.latency = 0.0
        assert Program.run(spec, {"country": "Peru"}, context=ctx).status == "ok"
    finally:
        lm.latency = 0.0
        ctx.stop()
        server.stop()
