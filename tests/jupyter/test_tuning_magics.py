"""``%dspex eval``, ``%dspex tune`` and ``%dspex lm`` through a real IPython shell.

Native programs run in the kernel; the bridged ones go through a real bridge
server to the scripted test LM (right only with the PRECISE instruction).
"""

from __future__ import annotations

import json

import optuna
import pytest

from dspex_jupyter import Context, Program, errors
from dspex_jupyter.jupyter.syntax import MagicSyntaxError
from dspex_jupyter.modules import Predict
from dspex_jupyter.native import function
from dspex_jupyter.testing import LMServer
from dspex_jupyter.tuning import Evaluation, TuningResult
from tests.tuning import scripted

from .conftest import run, run_error


def answer(country: str, style: str) -> dict[str, str]:
    """Right only in the precise style."""
    return {"capital": scripted.CAPITALS[country] if style == "precise" else "unsure"}


STYLE = {"choices": ["vague", "precise"]}
CAPITALS = (
    Program.new("capitals")
    .defvariable("style", "choice", initial="vague", constraints=STYLE)
    .chain([function(answer, outputs=["capital"]).bind_to_variable("style")])
)


@pytest.fixture
def nb(ip, ctx):
    """The shell with a program and a devset in the user namespace."""
    ctx.defvariable("style", "choice", initial="vague", constraints=STYLE)
    ip.user_ns.update(capitals=CAPITALS, devset=list(scripted.DEVSET))
    yield ip
    for name in ("capitals", "devset", "_tune_result"):
        ip.user_ns.pop(name, None)


def _html(shell, value) -> str:
    data, _ = shell.display_formatter.format(value)
    return data["text/html"]


def test_help_documents_eval_tune_and_lm(shell):
    doc = shell.find_line_magic("dspex").__doc__
    for text in (
        "%dspex eval PROGRAM DATA --metric NAME [--threads N]",
        "%dspex tune PROGRAM DATA --metric NAME [--trials N] [--sampler tpe|random|grid]",
        "[--storage URL] [--study NAME]",
        ".jsonl/.csv path",
        "%dspex lm",
    ):
        assert text in doc, text


def test_eval_scores_a_program_on_a_devset_in_the_namespace(nb, ctx):
    ev = run(nb, "%dspex eval capitals devset --metric exact_match")
    assert isinstance(ev, Evaluation)
    assert ev.score == 0.0 and ev.n == len(scripted.DEVSET) and not ev.errors
    ctx.set("style", "precise")
    ev = run(nb, "%dspex eval capitals devset --metric exact_match --threads 4")
    assert ev.score == 1.0
    markup = _html(nb, ev)
    assert "exact_match 1.000 on 8/8" in markup and "Paris" in markup


def test_eval_reads_a_path_and_a_metric_function(nb, ctx, tmp_path):
    path = tmp_path / "capitals.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in scripted.DEVSET[:3]) + "\n")
    nb.user_ns["starts_with_p"] = lambda example, outputs: outputs["capital"].startswith("P")
    ctx.set("style", "precise")
    ev = run(nb, f'%dspex eval capitals "{path}" --metric starts_with_p')
    assert ev.n == 3 and [r.score for r in ev.rows] == [1.0, 0.0, 0.0]  # Paris, Tokyo, Rome
    ev = run(nb, f"%dspex eval capitals {path} --metric contains --field capital")
    assert ev.score == 1.0


def test_tune_finds_the_best_value_and_writes_it(nb, ctx):
    result = run(nb, "%dspex tune capitals devset --metric exact_match --sampler grid --trials 5")
    assert isinstance(result, TuningResult)
    assert len(result.study.trials) == 2  # the grid of two choices is exhausted
    assert result.best_params == {"style": "precise"} and result.best_score == 1.0
    record = ctx.variable("style")
    assert record.value == "precise" and record.metadata["source"] == "tuner"
    markup = _html(nb, result)
    assert "best 1.000" in markup and markup.count("<tr") == 3  # a header and two trials
    assert '<tr style="font-weight:bold"><td>' in markup  # the best trial stands out


def test_tune_shares_a_study_through_storage(nb, ctx, tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    line = (
        "%dspex tune capitals devset --metric exact_match --sampler random --trials 2 "
        f"--storage {url} --study shared --seed 1"
    )
    run(nb, line)
    result = run(nb, line.replace("--seed 1", "--seed 2"))
    assert result.study.study_name == "shared"
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == 4


@pytest.mark.parametrize(
    "line, error, text",
    [
        (
            "eval capitals devset",
            MagicSyntaxError,
            "the following arguments are required: --metric",
        ),
        ("eval capitals devset --metric bleu", MagicSyntaxError, "unknown metric 'bleu'"),
        ("eval nosuch devset --metric f1", MagicSyntaxError, "no program named 'nosuch'"),
        ("eval devset devset --metric f1", MagicSyntaxError, "'devset' is a list, not a program"),
        ("eval capitals nodata --metric f1", MagicSyntaxError, "no devset named 'nodata'"),
        ("eval capitals missing.jsonl --metric f1", errors.ValidationError, "missing.jsonl"),
        ("eval capitals devset --metric f1 --threads many", MagicSyntaxError, "invalid int"),
        ("eval capitals devset --metric f1 --threads 0", errors.ValidationError, "num_threads"),
        ("eval capitals devset --metric f1 --thread 2", MagicSyntaxError, "unrecognized"),
        ("eval capitals devset --metric len --field capital", MagicSyntaxError, "--field"),
        (
            "tune capitals devset --metric f1 --sampler annealing",
            MagicSyntaxError,
            "invalid choice",
        ),
        ("tune capitals devset --metric f1 --trials 0", errors.ValidationError, "n_trials"),
        ("tune capitals devset --metric f1 --storage nosuch://x", MagicSyntaxError, "--storage"),
        ("tune capitals devset --metric f1 --study ''", errors.ValidationError, "study_name"),
        (
            "tune capitals devset --metric exact_match --field answer",
            errors.ValidationError,
            "answer",
        ),
    ],
)
def test_bad_arguments_are_clear_typed_errors_and_change_nothing(nb, ctx, line, error, text):
    nb.user_ns["len"] = len
    before = {v.name: (v.value, v.version) for v in ctx.list()}
    exc = run_error(nb, f"%dspex {line}")
    nb.user_ns.pop("len")
    assert isinstance(exc, error), exc
    assert text in str(exc)
    assert {v.name: (v.value, v.version) for v in ctx.list()} == before


def test_lm_shows_the_configured_provider_without_its_key(ip, shell):
    lm = {"model": "openai/m1", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-secret"}
    ctx = Context.start(lm=lm)
    try:
        shell.user_ns["lm_ctx"] = ctx
        run(shell, "%dspex context use lm_ctx")
        info = run(shell, "%dspex lm")
        assert info.info["kind"] == "configured" and info.info["model"] == "openai/m1"
        assert info.info["api_key_set"] is True
        text = repr(info)
        assert "configured LM openai/m1 at http://127.0.0.1:9/v1" in text
        assert "sk-secret" not in text and "sk-secret" not in _html(shell, info)
        assert ctx.lm_info() == info.info
    finally:
        ctx.stop()
        shell.user_ns.pop("lm_ctx", None)


def test_lm_without_a_provider_is_the_embedded_model_not_yet_loaded(ip, ctx, monkeypatch):
    for name in ("DSPEX_LM_MODEL", "DSPEX_LM_API_BASE", "DSPEX_LM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    fresh = Context.start()  # lm_config is read at start
    try:
        ip.user_ns["fresh"] = fresh
        run(ip, "%dspex context use fresh")
        info = run(ip, "%dspex lm").info
        assert info["kind"] == "local" and info["loaded"] is False and info["load_s"] is None
        monkeypatch.setenv("DSPEX_LOCAL_LM_MODEL", "/nonexistent/model.gguf")
        info = fresh.lm_info()
        assert info["available"] is False and "/nonexistent/model.gguf" in info["problem"]
        assert "embedded model unavailable" in repr(run(ip, "%dspex lm"))
    finally:
        fresh.stop()
        ip.user_ns.pop("fresh", None)


# ---------------------------------------------------------------------- bridged, scripted LM

LM_PROGRAM = (
    Program.new("capitals-lm")
    .defvariable(
        "instructions",
        "choice",
        initial=scripted.VAGUE,
        constraints={"choices": [scripted.VAGUE, scripted.PRECISE]},
    )
    .chain([Predict("country -> capital").bind_to_variable("instructions")])
)


@pytest.fixture(scope="module")
def lm_server():
    with LMServer(responder=scripted.responder) as server:
        yield server


@pytest.fixture(scope="module")
def bridged(lm_server):
    context = Context.start(lm=lm_server.lm_config(), name="bridged")
    context.ensure_bridged()
    yield context
    context.stop()


def test_eval_and_tune_a_bridged_program_on_the_test_lm(shell, bridged, lm_server):
    shell.user_ns.update(bridged=bridged, qa=LM_PROGRAM, devset=list(scripted.DEVSET[:4]))
    try:
        run(shell, "%dspex context use bridged")
        lm_server.clear()
        ev = run(shell, "%dspex eval qa devset --metric exact_match --threads 4")
        assert ev.score == 0.0 and not ev.errors and len(lm_server.requests) == 4
        result = run(shell, "%dspex tune qa devset --metric exact_match --sampler grid --threads 4")
        assert result.best_params == {"instructions": scripted.PRECISE}
        assert result.best_score == 1.0
        assert bridged.get("instructions") == scripted.PRECISE
        assert bridged.locks() == {}  # the tuner's lease is released
        ev = run(shell, "%dspex eval qa devset --metric exact_match")
        assert ev.score == 1.0
        info = run(shell, "%dspex lm").info
        assert (
            info["kind"] == "configured" and info["api_base"] == lm_server.lm_config()["api_base"]
        )
    finally:
        for name in ("bridged", "qa", "devset"):
            shell.user_ns.pop(name, None)


# ---------------------------------------------------------------------- the embedded model


@pytest.fixture
def embedded_bridge(monkeypatch):
    """A bridge server with no LM configured anywhere: runs go to the embedded model."""
    import secrets

    from dspex_jupyter.bridge.server import BridgeServer
    from dspex_jupyter.bridge.store import open_store

    for name in ("DSPEX_LM_MODEL", "DSPEX_LM_API_BASE", "DSPEX_LM_API_KEY", "DSPEX_LOCAL_LM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    token = secrets.token_urlsafe(16)
    server = BridgeServer("127.0.0.1:0", token, open_store("memory", 1000), workers=1).start()
    yield server, token
    server.stop(grace=0.5)


def test_the_run_that_loads_the_embedded_model_reports_it_once(shell, embedded_bridge):
    server, token = embedded_bridge
    short = {"max_tokens": 64}  # a sampling knob only: still no LM configured
    ctx = Context.start(bridge=server.address, token=token, lm=short)
    other = Context.start(bridge=server.address, token=token)
    program = Program.new("fact").chain([Predict("question -> answer")])
    try:
        assert ctx.lm_info()["loaded"] is False
        first = Program.run(program, {"question": "What is the capital of France?"}, context=ctx)
        local = first.local_lm
        assert local is not None and local["file"].endswith(".gguf")
        assert local["load_s"] > 0 and local["n_parallel"] >= 1
        assert first.trace[0].local_lm == local and first.to_dict()["local_lm"] == local
        assert ctx.runs[-1]["local_lm"] == local
        second = Program.run(program, {"question": "What is the capital of France?"}, context=ctx)
        assert second.local_lm is None and "local_lm" not in second.to_dict()
        for context in (ctx, other):  # the server's model, whichever context asks
            info = context.lm_info()
            assert info["kind"] == "local" and info["loaded"] is True
            assert info["load_s"] == local["load_s"] and info["file"] == local["file"]
        shell.user_ns["emb"] = other
        run(shell, "%dspex context use emb")
        text = repr(run(shell, "%dspex lm"))
        assert f"embedded model {local['file']}, loaded in {local['load_s']:.2f} s" in text
        from dspex_jupyter.jupyter.display import RunResultView

        assert "loaded the embedded model" in repr(RunResultView(first, "fact"))
        assert "loaded the embedded model" not in repr(RunResultView(second, "fact"))
    finally:
        ctx.stop()
        other.stop()
        shell.user_ns.pop("emb", None)
