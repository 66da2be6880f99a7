"""The Tuner on a bridged context: the optimizer lock, trial values in the shared session,
the best values in history, rollback, and the lease released at the end."""

from __future__ import annotations

import pytest

from dspex_jupyter import Context, Tuner
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import LockedError

from . import scripted
from .test_tuner import SPEC


@pytest.fixture(scope="module")
def server():
    proc = ServerProcess("memory")
    yield proc
    proc.stop()


def test_lock_trial_values_history_and_release(server):
    ctx = Context.start(bridge=server.address, token=server.token)
    other = Context.start(bridge=server.address, token=server.token, session_id=ctx.session_id)
    try:
        ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
        observed = []

        def during_a_trial():
            record = ctx.variable("temperature")
            try:
                other.set("temperature", 0.5)
                refused = None
            except LockedError as exc:
                refused = exc.holder
            observed.append((record.value, dict(record.metadata), refused, other.locks()))

        scripted.on_start["Peru"] = during_a_trial
        tuner = Tuner(
            SPEC,
            scripted.DEVSET,
            "exact_match",
            context=ctx,
            space={"temperature": [0.9, 0.2, 0.6]},
            sampler="grid",
            seed=1,
            display_progress=False,
        )
        result = tuner.run()
        assert result.best_params == {"temperature": 0.2} and result.best_score == 1.0
        holder = f"tuner:{tuner.study_name}"
        assert len(observed) == 3
        for trial, (value, metadata, refused, locks) in enumerate(observed):
            assert value == result.study.trials[trial].params["temperature"]
            assert metadata["source"] == "tuner" and metadata["trial"] == trial
            assert refused == holder and locks == {"temperature": holder}
        assert other.locks() == {}  # released
        other.set("temperature", 0.4)  # and writable again
        history = ctx.history("temperature")
        best = [v for v in history if v.source == "tuner" and v.metadata.get("score") == 1.0]
        assert best and best[-1].value == 0.2 and best[-1].metadata["study"] == tuner.study_name
        ctx.rollback("temperature", best[-1].version)
        assert ctx.get("temperature") == 0.2
    finally:
        other.stop()
        ctx.stop()


def test_tuning_an_instruction_choice_through_the_lm(server, lm):
    from .test_evaluate_bridged import SPEC as LM_SPEC

    ctx = Context.start(bridge=server.address, token=server.token, lm=lm.lm_config())
    try:
        result = Tuner(
            LM_SPEC,
            scripted.DEVSET[:4],
            "exact_match",
            context=ctx,
            space={"instructions": [scripted.VAGUE, scripted.PRECISE]},
            sampler="grid",
            num_threads=4,
            display_progress=False,
        ).run()
        assert result.best_params == {"instructions": scripted.PRECISE}
        assert result.best_score == 1.0
        assert ctx.get("instructions") == scripted.PRECISE
        assert ctx.get("temperature") == 0.7  # not in the space: untouched
        assert ctx.locks() == {}
        assert len(lm.requests) == 8  # 2 trials x 4 examples
    finally:
        ctx.stop()
