"""A shared server opened to a class, attacked as a hostile student would (issue 12).

No code by request: ``ExecuteModule`` needs the ``execute`` right; ReAct tools
are only names the server registered; a client cannot choose where the worker
sends LM requests. Real servers on real sockets, real DSPy workers, a real
local LM server; a tool that must not run leaves a marker file if it does.
"""

from __future__ import annotations

import os
import uuid

import pytest

from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import AccessDenied, ProgramError
from dspex_jupyter.modules import Predict, ReAct
from dspex_jupyter.testing import LMServer

from .conftest import new_state

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MARKER_TOOL = "tests.bridge._marker_tool:touch"
SEARCH = "dspex_jupyter.testing.tools:search_docs"


@pytest.fixture(scope="module")
def lm():
    with LMServer() as server:
        yield server


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    """A file the marker tool writes when imported or called, in any server started after."""
    path = tmp_path_factory.mktemp("marker") / "ran"
    old = os.environ.get("DSPEX_TEST_MARKER")
    os.environ["DSPEX_TEST_MARKER"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DSPEX_TEST_MARKER", None)
    else:
        os.environ["DSPEX_TEST_MARKER"] = old


@pytest.fixture(scope="module")
def shared(lm, marker):
    """A shared server (no client tools or LM) with one registered tool and its own LM."""
    proc = ServerProcess(
        "memory",
        private=False,
        extra_args=[
            "--tool",
            f"lookup={SEARCH}",
            "--lm-model",
            "gpt-4",
            "--lm-api-base",
            lm.url,
        ],
    )
    yield proc
    proc.stop()


@pytest.fixture
def open_as(shared):
    made: list[BridgedState] = []

    def make(session_id: str, principal: str | None = None, *, join: bool = True):
        return new_state(
            made, shared.address, shared.token, session_id, join=join, principal=principal
        )

    yield make
    for state in made:
        state.close()


def _run(state: BridgedState, module, lm_config=None, **inputs):
    spec = module.to_dict()
    return state.execute_module(
        spec, inputs or {"question": "What is DSPex?"}, spec["bindings"], lm_config or {}
    )


def test_execute_needs_the_execute_right_even_with_no_bindings(open_as):
    sid = uuid.uuid4().hex
    alice = open_as(sid, "alice", join=False)
    alice.register("temperature", "float", 0.5)
    alice.register("secret", "str", "the answer key")
    alice.grant("bob", ["read"], None)
    bob = open_as(sid, "bob")
    with pytest.raises(AccessDenied, match="execute"):
        _run(bob, Predict("question -> answer"))
    alice.grant("bob", ["execute"], None)
    result = _run(bob, Predict("question -> answer"))
    assert result["outputs"]["answer"] == "Test answer for: What is DSPex?"

    # "execute" is not enough for a bound variable bob may not read
    alice.revoke("bob", ["read"], None)
    alice.grant("bob", ["read"], "temperature")
    leak = Predict("question -> answer").bind_to_variable("secret", as_="instructions")
    with pytest.raises(AccessDenied, match="read"):
        _run(bob, leak)
    ok = Predict("question -> answer").bind_to_variable("temperature")
    assert _run(bob, ok)["variables"]["temperature"]["version"] == 1


def test_a_registered_tool_runs_by_its_name(open_as, lm):
    state = open_as(uuid.uuid4().hex, join=False)
    result = _run(state, ReAct("question -> answer", tools=["lookup"], max_iters=3))
    assert "DSPex runs DSPy programs" in str(result["outputs"]["trajectory"])


@pytest.mark.parametrize(
    "tools",
    [
        [MARKER_TOOL],  # any dotted path
        ["lookup", MARKER_TOOL],  # one bad tool fails the whole request
        ["tests.bridge._marker_tool.touch"],
        ["no_such_tool"],  # an unregistered name
    ],
)
def test_a_tool_the_server_did_not_register_never_reaches_a_worker(open_as, marker, tools):
    state = open_as(uuid.uuid4().hex, join=False)
    with pytest.raises((AccessDenied, ProgramError)):
        _run(state, ReAct("question -> answer", tools=tools, max_iters=3))
    assert not marker.exists()


def test_the_marker_is_real_a_private_server_imports_its_owners_tool(lm, marker):
    """The same request on a private server (the owner declares tools) does run the tool."""
    with ServerProcess("memory") as private:
        client = BridgeClient(private.address, private.token)
        state = BridgedState(client, uuid.uuid4().hex)
        try:
            lm_config = {"model": "gpt-4", "api_base": lm.url, "api_key": "k"}
            _run(state, ReAct("question -> answer", tools=[MARKER_TOOL], max_iters=3), lm_config)
        finally:
            state.close()
    assert "imported in pid" in marker.read_text()
    marker.unlink()


def test_os_getenv_as_a_tool_cannot_read_the_server_token(open_as, shared):
    state = open_as(uuid.uuid4().hex, join=False)
    with pytest.raises(AccessDenied) as info:
        _run(state, ReAct("question -> answer", tools=["os:getenv"], max_iters=3))
    assert shared.token not in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        {"model": "gpt-4", "api_base": "http://169.254.169.254/latest/meta-data"},
        {"api_key": "mine"},
    ],
)
def test_a_client_lm_endpoint_is_refused_and_the_servers_own_is_used(open_as, lm, config):
    state = open_as(uuid.uuid4().hex, join=False)
    seen = len(lm.requests)
    with pytest.raises(AccessDenied, match="allow-client-lm"):
        _run(state, Predict("question -> answer"), config)
    assert len(lm.requests) == seen
    result = _run(state, Predict("question -> answer"), {"temperature": 0.3})
    assert result["lm"]["api_base"].startswith(lm.url.rsplit("/", 1)[0])
    assert lm.requests[-1]["temperature"] == 0.3


def test_a_tool_registered_by_entry_point_runs_by_its_name(tmp_path, lm, monkeypatch):
    """The ``dspex_jupyter.tools`` entry-point group, from a real installed distribution."""
    info = tmp_path / "class_tools-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: class-tools\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[dspex_jupyter.tools]\ndocs = {SEARCH}\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    with ServerProcess(
        "memory", private=False, extra_args=["--lm-model", "gpt-4", "--lm-api-base", lm.url]
    ) as srv:
        client = BridgeClient(srv.address, srv.token)
        state = BridgedState(client, uuid.uuid4().hex)
        try:
            result = _run(state, ReAct("question -> answer", tools=["docs"], max_iters=3))
            assert "DSPex runs DSPy programs" in str(result["outputs"]["trajectory"])
            with pytest.raises(ProgramError, match="docs"):  # the error lists what is registered
                _run(state, ReAct("question -> answer", tools=["lookup"], max_iters=3))
        finally:
            state.close()
