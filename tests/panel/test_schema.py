"""The panel protocol is defined once (docs/panel-protocol.schema.json); both
sides must agree with it: the Python kernel side (constants here, messages in
test_channel.py, validated by the client) and the TypeScript types in
labextension/src/protocol.ts (parsed here)."""

from __future__ import annotations

import re

import jsonschema
import pytest

from dspex_jupyter.jupyter import panel

from .kernel_client import ROOT, SCHEMA

PROTOCOL_TS = (ROOT / "labextension" / "src" / "protocol.ts").read_text()
DOC = (ROOT / "docs" / "panel-protocol.md").read_text()


def ts_interfaces() -> dict[str, dict[str, tuple[bool, str]]]:
    """interface name -> field -> (optional, declared type) from protocol.ts."""
    found = {}
    for name, body in re.findall(r"export interface (\w+) \{\n(.*?)\n\}", PROTOCOL_TS, re.S):
        fields = {}
        for line in body.splitlines():
            match = re.fullmatch(r"\s*(\w+)(\??): (.+);", line)
            assert match, f"protocol.ts: cannot read field line {line!r} in {name}"
            fields[match[1]] = (match[2] == "?", match[3])
        found[name] = fields
    return found


def ts_union(name: str) -> list[str]:
    match = re.search(rf"export type {name} =\n((?:\s*\| \w+\n?)+);", PROTOCOL_TS + "\n")
    if match is None:  # the last line ends with ';'
        match = re.search(rf"export type {name} =((?:\s*\|\s*\w+)+);", PROTOCOL_TS)
    assert match, f"union {name} not found in protocol.ts"
    return re.findall(r"\|\s*(\w+)", match[1])


def schema_objects() -> dict[str, dict]:
    return {
        k: v for k, v in SCHEMA["$defs"].items() if v.get("type") == "object" and "properties" in v
    }


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_constants_agree() -> None:
    assert SCHEMA["x-target"] == panel.TARGET
    assert SCHEMA["x-protocol-version"] == panel.PROTOCOL
    assert re.search(rf"COMM_TARGET = '{re.escape(panel.TARGET)}';", PROTOCOL_TS)
    assert re.search(rf"PROTOCOL_VERSION = {panel.PROTOCOL};", PROTOCOL_TS)


def test_message_unions_agree() -> None:
    for union in ("KernelMessage", "PanelMessage"):
        refs = [item["$ref"].rsplit("/", 1)[1] for item in SCHEMA["$defs"][union]["oneOf"]]
        assert ts_union(union) == refs, union


@pytest.mark.parametrize("definition", sorted(schema_objects()))
def test_typescript_interface_matches_schema(definition: str) -> None:
    interfaces = ts_interfaces()
    assert definition in interfaces, f"protocol.ts lacks interface {definition}"
    schema = SCHEMA["$defs"][definition]
    fields = interfaces[definition]
    assert set(fields) == set(schema["properties"]), definition
    required = set(schema.get("required", []))
    for field, (optional, ts_type) in fields.items():
        assert optional == (field not in required), f"{definition}.{field} optionality"
        prop = schema["properties"][field]
        if "const" in prop:
            assert ts_type == f"'{prop['const']}'", f"{definition}.{field}"
        if "enum" in prop and field != "backend":
            assert ts_type == " | ".join(f"'{v}'" for v in prop["enum"]), f"{definition}.{field}"
        nullable = isinstance(prop.get("type"), list) and "null" in prop["type"]
        nullable = nullable or any(alt.get("type") == "null" for alt in prop.get("anyOf", []))
        assert nullable == ts_type.endswith("| null"), f"{definition}.{field} nullability"


def test_every_message_type_is_documented() -> None:
    for schema in schema_objects().values():
        const = schema["properties"].get("type", {}).get("const")
        if const:
            assert f"`{const}`" in DOC, f"docs/panel-protocol.md does not describe {const!r}"


def test_python_sends_only_schema_types() -> None:
    """Every ``"type": "..."`` literal the kernel side sends is a KernelMessage type."""
    source = (ROOT / "dspex_jupyter" / "jupyter" / "panel.py").read_text()
    sent = set(re.findall(r'"type": "(\w+)"', source))
    kernel_types = {
        SCHEMA["$defs"][item["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
        for item in SCHEMA["$defs"]["KernelMessage"]["oneOf"]
    }
    assert sent and sent <= kernel_types, sent - kernel_types
