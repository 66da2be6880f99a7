"""The panel protocol is defined once, in docs/panel-protocol.schema.json.

The TypeScript types are generated from it at build time (json-schema-to-typescript,
``jlpm run build:protocol``; the strict ``tsc`` build then checks the panel's code
against them). Here the Python side is held to the same schema: a channel driven
in-process over a recording comm, with real contexts, must send only messages
the schema accepts, and the schema must refuse malformed ones (so the check can
fail). The real-kernel tests in test_channel.py validate every message too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from dspex_jupyter import Context
from dspex_jupyter.jupyter import panel, sync

from .kernel_client import KERNEL_MESSAGE, PANEL_MESSAGE, ROOT, SCHEMA

PROTOCOL_TS = (ROOT / "labextension" / "src" / "protocol.ts").read_text()
DOC = (ROOT / "docs" / "panel-protocol.md").read_text()
PACKAGE = json.loads((ROOT / "package.json").read_text())


def message_types(union: str) -> set[str]:
    return {
        SCHEMA["$defs"][item["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
        for item in SCHEMA["$defs"][union]["oneOf"]
    }


class RecordingComm:
    """What ``comm.create_comm`` gives the kernel side: ``send``, ``on_msg``, ``on_close``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.handler: Any = None

    def send(self, data: dict[str, Any]) -> None:
        wire = json.loads(json.dumps(data, allow_nan=False))  # what the comm carries
        KERNEL_MESSAGE.validate(wire)  # every kernel message, as it is sent
        self.sent.append(wire)

    def on_msg(self, handler: Any) -> None:
        self.handler = handler

    def on_close(self, handler: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def request(self, data: dict[str, Any]) -> None:
        PANEL_MESSAGE.validate(data)  # every request, as the panel sends it
        self.handler({"content": {"data": data}})


class Shell:
    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_constants_agree() -> None:
    assert SCHEMA["x-target"] == panel.TARGET
    assert SCHEMA["x-protocol-version"] == panel.PROTOCOL
    assert f"COMM_TARGET = '{panel.TARGET}';" in PROTOCOL_TS
    assert f"PROTOCOL_VERSION = {panel.PROTOCOL};" in PROTOCOL_TS


def test_typescript_types_are_generated_from_the_schema() -> None:
    script = PACKAGE["scripts"]["build:protocol"]
    assert script.startswith("json2ts -i docs/panel-protocol.schema.json ")
    assert "json-schema-to-typescript" in PACKAGE["devDependencies"]
    output = re.search(r"-o (\S+)", script)
    assert output and output[1] == "labextension/src/generated/protocol.ts"
    assert not re.search(r"export (interface|type) ", PROTOCOL_TS)  # no hand-written copy
    for name in ("link.ts", "panel.ts"):
        source = (ROOT / "labextension" / "src" / name).read_text()
        assert "from './generated/protocol'" in source, name


def test_every_message_type_is_documented() -> None:
    for const in message_types("KernelMessage") | message_types("PanelMessage"):
        assert f"`{const}`" in DOC, f"docs/panel-protocol.md does not describe {const!r}"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "variable_deleted", "seq": 1, "context": "c", "name": "x"},  # no version
        {"type": "variable_deleted", "seq": 0, "context": "c", "name": "x", "version": 2},
        {"type": "snapshot", "seq": 1, "protocol": 1, "contexts": [], "extra": True},
        {"type": "bogus", "seq": 1},
        {"type": "error", "seq": 1, "message": 3},
    ],
)
def test_the_schema_refuses_malformed_kernel_messages(message: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        KERNEL_MESSAGE.validate(message)


def test_the_schema_refuses_malformed_requests() -> None:
    with pytest.raises(jsonschema.ValidationError):
        PANEL_MESSAGE.validate({"type": "edit", "request_id": "r", "context": "c", "name": "x"})
    with pytest.raises(jsonschema.ValidationError):
        PANEL_MESSAGE.validate({"type": "open", "protocol": "1"})


def test_every_message_the_kernel_sends_matches_the_schema() -> None:
    """Drive one channel through every message type; RecordingComm validates each."""
    hub, comm = panel.PanelHub(Shell()), RecordingComm()
    ctx = Context.start(name="schema")
    try:
        ctx.defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
        ctx.defvariable("vec", "embedding", initial=[0.5, 0.25], metadata={"unit": "x"})
        hub.shell.user_ns["schema_ctx"] = ctx
        hub.open_channel(comm)
        (channel,) = hub.channels
        cid = panel.context_id(ctx)
        ctx.set("temperature", 1.25)
        ctx.defvariable("style", "str", initial="terse")
        assert sync(ctx)  # registered before it goes
        ctx.delete("style")
        ctx.record_run({"program": "qa", "latency_ms": float("nan"), "modules": [(1, 2)]})
        usage = {"prompt_tokens": 120, "completion_tokens": 26, "total_tokens": 146, "calls": 1}
        ctx.record_run({"program": "qa", "usage": usage, "trace": [{"usage": usage}, 3]})
        # what the Tuner writes for a trial (tuning/tuner.py): a tuning message
        ctx.update_many({"temperature": 0.5}, metadata={"trial": 0}, source="tuner")
        assert sync(ctx)
        comm.request(
            {"type": "edit", "request_id": "r1", "context": cid, "name": "vec", "text": "[1, 2]"}
        )
        comm.request(
            {"type": "edit", "request_id": "r2", "context": cid, "name": "temperature", "text": "9"}
        )
        comm.request(
            {"type": "edit", "request_id": "r3", "context": "nope", "name": "x", "text": "1"}
        )
        comm.request({"type": "request_snapshot", "reason": "test"})
        comm.handler({"content": {"data": {"type": "bogus"}}})
        hub.shell.user_ns["alias"] = ctx
        hub.post_run_cell()  # relabelled: a context message
        del hub.shell.user_ns["alias"], hub.shell.user_ns["schema_ctx"]
        hub.post_run_cell()  # no longer bound: context_removed
        channel.close()
    finally:
        ctx.stop()
    assert {m["type"] for m in comm.sent} == message_types("KernelMessage")
    assert [m["seq"] for m in comm.sent] == list(range(1, len(comm.sent) + 1))
    results = {m["request_id"]: m for m in comm.sent if m["type"] == "edit_result"}
    assert results["r1"]["ok"] and results["r1"]["variable"]["value"] == [1.0, 2.0]
    assert not results["r2"]["ok"] and results["r2"]["variable"]["value"] == 0.5
    assert not results["r3"]["ok"] and results["r3"]["variable"] is None
    runs = [m["run"] for m in comm.sent if m["type"] == "run"]
    assert "usage_text" not in runs[0]
    assert runs[1]["usage_text"] == "146 tok" and runs[1]["trace"][0]["usage_text"] == "146 tok"
    assert runs[1]["usage_detail"].splitlines()[0] == "prompt: 120"
    (tuning,) = [m["tuning"] for m in comm.sent if m["type"] == "tuning"]
    assert tuning == {
        "state": "running",
        "study": None,
        "trial": 0,
        "best_score": None,
        "variables": ["temperature"],
    }
