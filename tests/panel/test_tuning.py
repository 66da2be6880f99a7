"""The panel shows a running tuning: a real ``Tuner`` on a context, an in-process channel.

The Tuner knows nothing of the panel (it is a lower layer); the channel derives
the tuning's state from what the Tuner writes anyway (``source="tuner"``, the
trial number, and the study and score of the write-back). Every message is
validated against the schema as it is sent (RecordingComm).
"""

from __future__ import annotations

import threading

from dspex_jupyter import Context, Program, Tuner
from dspex_jupyter.jupyter import panel, sync
from tests.jupyter.conftest import wait_until
from tests.tuning import scripted
from tests.tuning.test_tuner import SPEC

from .test_schema import RecordingComm, Shell


def _shown(snapshot: dict, name: str) -> dict:
    """The context called ``name`` in a snapshot (other tests' live contexts may be listed too)."""
    (context,) = [c for c in snapshot["contexts"] if c["name"] == name]
    return context


def _tunings(comm: RecordingComm) -> list[dict]:
    return [m["tuning"] for m in comm.sent if m["type"] == "tuning"]


def test_a_running_tuning_then_its_best_reach_the_panel() -> None:
    hub, comm = panel.PanelHub(Shell()), RecordingComm()
    ctx = Context.start(name="tuned")
    gate = scripted.blocked["Japan"] = threading.Event()
    try:
        ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
        hub.shell.user_ns["tuned"] = ctx
        hub.open_channel(comm)
        assert _shown(comm.sent[0], "tuned")["tuning"] is None
        tuner = Tuner(
            SPEC,
            scripted.DEVSET,
            "exact_match",
            context=ctx,
            space={"temperature": [0.9, 0.1]},
            sampler="grid",
            study_name="capitals-study",
            n_trials=2,
            display_progress=False,
        )
        outcome: dict = {}
        thread = threading.Thread(target=lambda: outcome.update(result=tuner.run()))
        thread.start()
        # the first trial is blocked on Japan: the panel shows it running
        assert wait_until(lambda: bool(_tunings(comm)), timeout=60)
        running = _tunings(comm)[0]
        assert running["state"] == "running" and running["trial"] == 0
        assert running["best_score"] is None and running["variables"] == ["temperature"]
        gate.set()
        thread.join(60)
        assert not thread.is_alive()
        assert sync(ctx)
        done = _tunings(comm)[-1]
        result = outcome["result"]
        assert done == {
            "state": "done",
            "study": "capitals-study",
            "trial": result.study.best_trial.number,
            "best_score": result.best_score,
            "variables": ["temperature"],
        }
        assert result.best_score == 1.0
        # while trial 1 ran, the panel showed trial 0's score as the best so far
        (second,) = [t for t in _tunings(comm) if t["state"] == "running" and t["trial"] == 1]
        assert second["best_score"] == result.study.trials[0].value
        # a fresh snapshot says the same
        comm.request({"type": "request_snapshot", "reason": "test"})
        assert _shown(comm.sent[-1], "tuned")["tuning"] == done
    finally:
        gate.set()
        scripted.blocked.pop("Japan", None)
        hub.close()
        ctx.stop()


def test_a_run_in_the_panel_carries_inputs_outputs_and_no_usage_when_native() -> None:
    hub, comm = panel.PanelHub(Shell()), RecordingComm()
    ctx = Context.start(name="ran")
    try:
        ctx.defvariable("temperature", "float", initial=0.2, constraints={"min": 0.0, "max": 1.0})
        hub.shell.user_ns["ran"] = ctx
        hub.open_channel(comm)
        Program.run(SPEC, {"country": "Peru"}, context=ctx)
        (run,) = [m["run"] for m in comm.sent if m["type"] == "run"]
        assert run["inputs"] == {"country": "Peru"} and run["outputs"] == {"capital": "Lima"}
        assert run["status"] == "ok" and run["latency_ms"] > 0
        assert "usage_text" not in run and all("usage_text" not in e for e in run["trace"])
    finally:
        hub.close()
        ctx.stop()
