"""``Tuner`` on Optuna with a native program whose answers are right only at low temperature."""

from __future__ import annotations

import _thread
import subprocess
import sys
import textwrap
import threading

import pytest

from dspex_jupyter import Program, Tuner, TuningResult
from dspex_jupyter.errors import ValidationError, VariableNotFound
from dspex_jupyter.native import function

from . import scripted
from .conftest import wait_until

SPEC = (
    Program.new("capitals")
    .defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    .defvariable("style", "choice", initial="a", constraints={"choices": ["a", "b"]})
    .chain([function(scripted.answer, outputs=["capital"]).bind_to_variable("temperature")])
)


def test_grid_finds_the_good_region_and_writes_the_best_with_metadata(ctx):
    seen = []
    ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    handle = ctx.watch("temperature", lambda event: seen.append(event.new_value))
    tuner = Tuner(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=ctx,
        space={"temperature": (0.0, 1.0, 0.25)},
        sampler="grid",
        n_trials=10,
        display_progress=False,
    )
    result = tuner.run()
    assert isinstance(result, TuningResult)
    assert len(result.study.trials) == 5  # the grid is exhausted before n_trials
    assert result.best_score == 1.0 and result.best_params["temperature"] <= 0.25
    record = ctx.variable("temperature")
    assert record.value == result.best_params["temperature"]
    assert record.metadata["source"] == "tuner" and record.metadata["score"] == 1.0
    assert record.metadata["study"] == tuner.study_name
    assert record.metadata["trial"] == result.study.best_trial.number
    assert wait_until(lambda: set(seen) >= {0.0, 0.25, 0.5, 0.75, 1.0}), seen
    ctx.unwatch(handle)
    frame = result.trials
    assert len(frame) == 5 and "params_temperature" in frame and "user_attrs_errors" in frame
    assert result.best_evaluation is not None and result.best_evaluation.score == 1.0


def test_tpe_with_the_default_space_finds_a_good_temperature(ctx):
    result = SPEC.tune(
        scripted.DEVSET, "exact_match", context=ctx, n_trials=15, seed=3, display_progress=False
    )
    assert result.best_score == 1.0 and result.best_params["temperature"] <= 0.3
    assert set(result.best_params) == {"temperature"}  # only bound variables by default
    assert ctx.get("temperature") == result.best_params["temperature"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"space": {"temprature": (0, 1)}}, VariableNotFound, "did you mean 'temperature'"),
        ({"space": {"temperature": (0.0, 2.0)}}, ValidationError, "space temperature"),
        ({"space": {"style": ["a", "c"]}}, ValidationError, "space style"),
        ({"space": {"temperature": "hot"}}, ValidationError, "a \\(low, high\\) range"),
        ({"sampler": "grid"}, ValidationError, "needs explicit values or a step"),
        ({"sampler": "annealing"}, ValidationError, "sampler must be one of"),
        ({"n_trials": 0}, ValidationError, "n_trials"),
        ({"direction": "up"}, ValidationError, "direction"),
        ({"metric": "bleu"}, ValidationError, "unknown metric"),
    ],
)
def test_bad_arguments_fail_before_any_trial(ctx, kwargs, error, match):
    args = {"metric": "exact_match", **kwargs}
    metric = args.pop("metric")
    with pytest.raises(error, match=match):
        Tuner(SPEC, scripted.DEVSET, metric, context=ctx, display_progress=False, **args).run()
    assert ctx.list() == []


def test_interrupt_restores_the_best_so_far(ctx):
    calls = {"n": 0}

    def interrupt_on_the_third_trial():
        calls["n"] += 1
        if calls["n"] == 3:
            gate = scripted.blocked["France"] = threading.Event()
            threading.Timer(0, _thread.interrupt_main).start()
            scripted.on_start["Japan"] = gate.set  # unblock once the run moves on

    scripted.on_start["France"] = interrupt_on_the_third_trial
    result = Tuner(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=ctx,
        space={"temperature": [0.1, 0.9, 0.5, 0.7]},
        sampler="grid",
        seed=0,
        num_threads=1,
        display_progress=False,
    ).run()
    scripted.blocked.get("France", threading.Event()).set()
    assert result.interrupted
    completed = [t for t in result.study.trials if t.value is not None]
    assert len(completed) == 2
    assert ctx.get("temperature") == result.best_params["temperature"]
    assert ctx.variable("temperature").metadata["score"] == result.best_score


def test_interrupt_before_any_trial_completes_restores_the_original(ctx):
    ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    scripted.on_start["France"] = _thread.interrupt_main
    gate = scripted.blocked["France"] = threading.Event()
    result = Tuner(
        SPEC, scripted.DEVSET, "exact_match", context=ctx, n_trials=3, display_progress=False
    ).run()
    gate.set()
    assert result.interrupted and result.best_params == {} and result.best_score is None
    assert ctx.get("temperature") == 0.7


def test_two_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    script = textwrap.dedent(
        f"""
        from dspex_jupyter import Context, Tuner
        from tests.tuning import scripted
        from tests.tuning.test_tuner import SPEC
        ctx = Context.start()
        result = Tuner(SPEC, scripted.DEVSET, "exact_match", context=ctx, n_trials=4,
                       storage={url!r}, study_name="shared", sampler="random",
                       display_progress=False).run()
        print("trials", len(result.study.trials))
        """
    )
    import optuna

    # Create the schema and the study once, as Optuna advises for RDB storage
    # (two processes creating the tables at the same moment race in SQLite).
    optuna.create_study(storage=url, study_name="shared", direction="maximize")
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs

    study = optuna.load_study(study_name="shared", storage=url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(8))  # trials from both, each counted once
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_trait_observers_see_every_trial_value(ctx):
    import dspex_jupyter  # noqa: F401  (plugs ctx.traits)

    ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    seen = []
    ctx.traits.observe(lambda change: seen.append(change["new"]), names="temperature")
    result = Tuner(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=ctx,
        space={"temperature": [0.9, 0.1, 0.5]},
        sampler="grid",
        seed=2,
        display_progress=False,
    ).run()
    order = [t.params["temperature"] for t in result.study.trials]
    # then the best (0.1); traitlets reports no change when it is already the value
    expected = order + ([0.1] if order[-1] != 0.1 else [])
    assert wait_until(lambda: seen == expected), (seen, order)
