"""``Program.evaluate`` on native-only programs: in the kernel, on LocalState, no DSPy."""

from __future__ import annotations

import _thread
import subprocess
import sys
import textwrap
import threading

import pytest

from dspex_jupyter import Evaluation, Program
from dspex_jupyter.errors import ProgramError, ValidationError, VariableNotFound
from dspex_jupyter.native import function

from . import scripted
from .conftest import wait_until

SPEC = (
    Program.new("capitals")
    .defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
    .chain([function(scripted.answer, outputs=["capital"]).bind_to_variable("temperature")])
)


def test_score_rows_and_overrides_that_write_nothing(ctx):
    bad = Program.evaluate(SPEC, scripted.DEVSET, "exact_match", context=ctx)
    assert isinstance(bad, Evaluation) and bad.score == 0.0 and bad.n == len(scripted.DEVSET)
    before = ctx.variable("temperature")
    good = SPEC.evaluate(
        scripted.DEVSET, "exact_match", context=ctx, overrides={"temperature": 0.2}
    )
    assert good.score == 1.0 and not good.errors and good.stopped is None
    after = ctx.variable("temperature")
    assert (after.value, after.version) == (before.value, before.version) == (0.7, 1)
    row = good.rows[2]
    assert row.inputs == {"country": "Italy"} and row.expected == {"capital": "Rome"}
    assert row.outputs == {"capital": "Rome"} and row.score == 1.0 and row.status == "ok"
    assert row.variables["temperature"] == {
        "param": "temperature",
        "version": 1,
        "value": 0.2,
        "override": True,
    }
    assert row.overrides == {"temperature": 0.2}
    cmp = good.compare(bad)
    assert len(cmp.wins) == len(scripted.DEVSET) and not cmp.losses and cmp.delta == 1.0
    assert ctx.backend == "local"


def test_program_run_takes_overrides(ctx):
    result = Program.run(SPEC, {"country": "Peru"}, context=ctx, overrides={"temperature": 0.1})
    assert result["capital"] == "Lima"
    assert result.trace[0].variables["temperature"]["override"] is True
    assert ctx.get("temperature") == 0.7
    assert SPEC.run({"country": "Peru"}, context=ctx)["capital"] == "unsure"


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"temperature": 2.0}, ValidationError),
        ({"temperature": "hot"}, ValidationError),
        ({"temprature": 0.1}, VariableNotFound),
        (["temperature"], ValidationError),
    ],
)
def test_bad_overrides_fail_before_anything_runs(ctx, overrides, error):
    with pytest.raises(error):
        Program.evaluate(SPEC, scripted.DEVSET, "exact_match", context=ctx, overrides=overrides)
    with pytest.raises(error):
        Program.run(SPEC, {"country": "Peru"}, context=ctx, overrides=overrides)
    assert ctx.list() == [] and list(ctx.runs) == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_threads": 0}, ValidationError, "num_threads"),
        ({"max_errors": -1}, ValidationError, "max_errors"),
        ({"timeout_s": 0}, ValidationError, "timeout_s"),
        ({"metric": "bleu"}, ValidationError, "unknown metric"),
        ({"devset": []}, ValidationError, "empty"),
        ({"devset": [{"capital": "Paris"}]}, ValidationError, "row 0 lacks the input"),
        ({"spec": "not a spec"}, ProgramError, "program spec"),
    ],
)
def test_bad_arguments_are_typed_errors_and_change_nothing(ctx, kwargs, error, match):
    args = {"spec": SPEC, "devset": scripted.DEVSET, "metric": "exact_match", **kwargs}
    spec, devset, metric = args.pop("spec"), args.pop("devset"), args.pop("metric")
    with pytest.raises(error, match=match):
        Program.evaluate(spec, devset, metric, context=ctx, **args)
    assert ctx.list() == []


def test_failing_example_is_a_row_and_max_errors_stops():
    from dspex_jupyter import Context

    ctx = Context.start()
    devset = [*scripted.DEVSET[:2], {"country": "Atlantis", "capital": "?"}, *scripted.DEVSET[2:]]
    try:
        ev = Program.evaluate(
            SPEC, devset, "exact_match", context=ctx, overrides={"temperature": 0}
        )
        assert ev.n == len(devset) and len(ev.errors) == 1
        failed = ev.errors[0]
        assert failed.index == 2 and failed.status == "error" and failed.score == 0.0
        assert "no such country" in failed.error
        assert ev.score == pytest.approx(8 / 9)
        html = ev._repr_html_()
        assert html.index("Atlantis") < html.index("France")  # failing rows first
        assert "fde2e2" in html and "exact_match 0.889 on 9/9, 1 errors" in html
        frame = ev.to_pandas()
        assert list(frame["status"]).count("error") == 1
        assert frame.loc[2, "input.country"] == "Atlantis" and frame.loc[0, "score"] == 1.0

        many = [{"country": "Atlantis", "capital": "?"}] * 5 + scripted.DEVSET
        stopped = Program.evaluate(
            SPEC, many, "exact_match", context=ctx, max_errors=2, num_threads=1
        )
        assert stopped.stopped == "max_errors" and len(stopped.errors) == 2
        assert stopped.n == 2 and stopped.total == len(many)
    finally:
        ctx.stop()


def test_a_straggler_times_out_and_the_run_moves_on(ctx):
    gate = scripted.blocked["Japan"] = threading.Event()
    ev = Program.evaluate(
        SPEC,
        scripted.DEVSET,
        "exact_match",
        context=ctx,
        overrides={"temperature": 0.0},
        num_threads=2,
        timeout_s=0.2,
    )
    gate.set()
    assert [r.index for r in ev.timed_out] == [1]
    assert ev.rows[1].status == "timeout" and ev.rows[1].score == 0.0
    assert all(r.status == "ok" for r in ev.rows if r.index != 1)
    assert ev.score == pytest.approx(7 / 8)


def test_keyboard_interrupt_returns_the_partial_result(ctx):
    gate = scripted.blocked["Italy"] = threading.Event()
    scripted.on_start["Italy"] = _thread.interrupt_main
    ev = Program.evaluate(
        SPEC, scripted.DEVSET, "exact_match", context=ctx, num_threads=3, display_progress=False
    )
    gate.set()
    assert ev.stopped == "interrupted" and ev.interrupted
    assert ev.n < len(scripted.DEVSET)
    by_index = {r.index: r for r in ev.rows}
    assert by_index[2].status == "cancelled" and by_index[2].score == 0.0
    assert {r.status for r in ev.rows} <= {"ok", "cancelled"}


def test_metric_errors_are_rows_and_callables_see_the_example(ctx):
    seen = []

    def metric(example, outputs):
        seen.append(example)
        if example["country"] == "Peru":
            raise KeyError("boom")
        return outputs["capital"] == example["capital"]

    ev = Program.evaluate(SPEC, scripted.DEVSET, metric, context=ctx, overrides={"temperature": 0})
    assert len(ev.errors) == 1 and "metric metric: KeyError" in ev.errors[0].error
    assert {"country": "France", "capital": "Paris"} in seen


def test_native_only_stays_local_and_never_imports_dspy():
    script = textwrap.dedent(
        """
        import sys
        from dspex_jupyter import Context, Program
        from tests.tuning import scripted
        from tests.tuning.test_evaluate_native import SPEC
        ctx = Context.start()
        ev = Program.evaluate(SPEC, scripted.DEVSET, "f1", context=ctx,
                              overrides={"temperature": 0.1}, num_threads=4)
        assert ev.score == 1.0, ev
        assert ctx.backend == "local", ctx.backend
        assert "dspy" not in sys.modules and "grpc" not in sys.modules
        assert "optuna" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_wait_helper_is_honest():
    assert not wait_until(lambda: False, timeout=0.05)
