"""Notebook-defined code on a shared server, attacked (issue 14).

Pickled code runs whatever its author wrote, so a shared ``--users`` server refuses
it unless started with ``--allow-code``, and even then only for a principal with the
``execute`` right. Every payload here leaves a marker file if any of its code runs:
in the constructor, in ``forward``, in a tool, or at unpickling time (``__reduce__``).
A class-based signature is data, not code, so it runs on the refusing server too.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from typing import Literal

import dspy
import pytest

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.code import pack_code
from dspex_jupyter.bridge.convert import dumps
from dspex_jupyter.bridge.server.policy import ExecutionPolicy
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import AccessDenied
from dspex_jupyter.modules import Custom, Predict, ReAct
from dspex_jupyter.testing import LMServer

from .conftest import new_state
from .test_security_principals import add_user

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _mark(path: str, what: str) -> str:
    with open(path, "a") as f:
        f.write(what + "\n")
    return "marked"


class Evil(dspy.Module):
    """Marks when built and when run."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        _mark(marker, "built")
        self.marker = marker

    def forward(self, question: str) -> dspy.Prediction:
        return dspy.Prediction(answer=_mark(self.marker, f"ran on {question}"))


class OnLoad:
    """Marks when *unpickled*: loading alone would run it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_mark, (self.marker, "unpickled"))


def marking_tool(marker: str):
    def touch(query: str) -> str:
        """Look something up."""
        return _mark(marker, f"tool called with {query}")

    return touch


class Classify(dspy.Signature):
    """Classify the question."""

    question: str = dspy.InputField(desc="what the student asked")
    topic: Literal["math", "history"] = dspy.OutputField()
    confidence: float = dspy.OutputField()


@pytest.fixture(scope="module")
def lm():
    with LMServer() as server:
        yield server


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.json"
    return path, {
        "teacher": add_user(path, "teacher", admin=True),
        "alice": add_user(path, "alice"),
    }


def _shared(users, lm, *flags: str) -> ServerProcess:
    path, _ = users
    return ServerProcess(
        "memory",
        private=False,
        extra_args=["--users", str(path), "--lm-model", "gpt-4", "--lm-api-base", lm.url, *flags],
    )


@pytest.fixture(scope="module")
def refusing(users, lm):
    proc = _shared(users, lm)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def allowing(users, lm):
    proc = _shared(users, lm, "--allow-code")
    yield proc
    proc.stop()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "ran"


@pytest.fixture
def class_session(users):
    """(teacher state, alice state) on a fresh session of the given server; alice may run."""
    _, tokens = users
    made: list = []

    def open_on(server: ServerProcess, alice_rights=("read", "execute")):
        sid = uuid.uuid4().hex
        teacher = new_state(made, server.address, tokens["teacher"], sid)
        teacher.grant("alice", list(alice_rights), None)
        alice = new_state(made, server.address, tokens["alice"], sid, join=True)
        return teacher, alice

    yield open_on
    for state in made:
        state.close()


def _run(state, module, **inputs):
    spec = module.to_dict()
    return state.execute_module(spec, inputs or {"question": "q"}, spec["bindings"], {})


PAYLOADS = {
    "custom module": lambda m: Custom(Evil, str(m)),
    "code that runs when unpickled": lambda m: Custom(Evil, OnLoad(str(m))),
    "notebook tool": lambda m: ReAct("question -> answer", tools=[marking_tool(str(m))]),
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_shared_server_without_allow_code_refuses_code_and_it_never_runs(
    refusing, class_session, marker, payload
):
    _, alice = class_session(refusing)
    with pytest.raises(AccessDenied, match="--allow-code"):
        _run(alice, PAYLOADS[payload](marker))
    assert not marker.exists()


def test_code_smuggled_past_the_client_is_refused_too(refusing, class_session, marker):
    """A hand-made request: a pickled metric as a bare CodeObject, or a pickle inline in
    the spec's JSON (never lifted into CodeObjects) of an innocent-looking Predict."""
    _, alice = class_session(refusing)
    payload = pack_code(OnLoad(str(marker)), what="metric my_metric")
    spec = Predict("question -> answer").to_dict()
    bare = pb.ExecuteModuleRequest(
        session_id=alice.session_id,
        module_spec_json=dumps(spec),
        inputs_json=dumps({"question": "q"}),
        code=[pb.CodeObject(what="metric my_metric", pickle=payload)],
    )
    with pytest.raises(AccessDenied, match="metric my_metric.*--allow-code"):
        alice.client.call("ExecuteModule", bare)
    inline = Custom(Evil, OnLoad(str(marker))).to_dict()  # the pickle stays in the JSON
    inline["options"]["code"]["$code"] = "module Innocent"
    request = pb.ExecuteModuleRequest(
        session_id=alice.session_id,
        module_spec_json=dumps(inline),
        inputs_json=dumps({"question": "q"}),
    )
    with pytest.raises(AccessDenied, match="module Innocent.*--allow-code"):
        alice.client.call("ExecuteModule", request)
    assert not marker.exists()


def test_a_typed_signature_is_data_so_a_refusing_server_runs_it(refusing, class_session):
    _, alice = class_session(refusing)
    module = Predict(Classify)
    assert "$code" not in str(module.to_dict())
    result = _run(alice, module, question="When did Rome fall?")
    assert result["outputs"] == {"topic": "math", "confidence": 0.5}


def test_with_allow_code_a_principal_without_execute_is_still_refused(
    allowing, class_session, marker
):
    teacher, alice = class_session(allowing, alice_rights=("read",))
    with pytest.raises(AccessDenied, match="execute"):
        _run(alice, Custom(Evil, str(marker)))
    assert not marker.exists()
    # the marker is real: with the right, the same request builds and runs the module
    teacher.grant("alice", ["execute"], None)
    result = _run(alice, Custom(Evil, str(marker)), question="q1")
    assert result["outputs"] == {"answer": "marked"}
    assert pathlib.Path(marker).read_text().splitlines() == ["built", "ran on q1"]


def test_check_code_names_the_object_and_the_flag():
    with pytest.raises(AccessDenied, match=r"\(tool lookup\).*--allow-code"):
        ExecutionPolicy().check_code("tool lookup")
    ExecutionPolicy(allow_code=True).check_code("tool lookup")  # allowed: no error
