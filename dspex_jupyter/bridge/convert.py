"""Records <-> protobuf messages. Values, constraints and metadata travel as JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..variables.record import EMPTY, Variable, WatchEvent, freeze, to_json_value
from ._proto import dspex_bridge_pb2 as pb

__all__ = ["dumps", "loads", "record_to_pb", "record_from_pb", "event_to_pb", "event_from_pb"]


def _default(obj: Any) -> Any:
    """numpy scalars and arrays (and anything else with ``tolist``) become plain JSON."""
    tolist = getattr(obj, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(obj).__name__} is not JSON-serializable")
    return tolist()


_encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_default)


def dumps(value: Any) -> str:
    """JSON text of a canonical value; non-JSON values are a ValidationError."""
    try:
        return _encoder.encode(to_json_value(value))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"value is not JSON-serializable: {exc}") from None


def dumps_map(mapping: Mapping[str, Any] | None) -> str:
    return "" if not mapping else dumps(dict(mapping))


def loads(text: str, what: str = "value") -> Any:
    """Decode JSON text from the wire; malformed text is a ValidationError."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None


def loads_map(text: str, what: str) -> dict[str, Any] | None:
    if not text:
        return None
    value = loads(text, what)
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def _vectorize(value: Any) -> Any:
    """JSON lists back to the canonical tuples (embeddings, tensors)."""
    if isinstance(value, list):
        return tuple(_vectorize(v) for v in value)
    return value


def canonical(type_name: str, value: Any) -> Any:
    return _vectorize(value) if type_name in ("embedding", "tensor") else value


def record_to_pb(record: Variable) -> pb.VariableRecord:
    constraints = record.constraints
    return pb.VariableRecord(
        name=record.name,
        type=record.type,
        value_json=dumps(record.value),
        constraints_json=_constraints_json(constraints) if constraints else "",
        version=record.version,
        metadata_json=dumps_map(record.metadata),
        source=record.source,
        timestamp=record.timestamp,
    )


_constraints_text: dict[int, tuple[Any, str]] = {}


def _constraints_json(constraints: Any) -> str:
    """Constraints are shared by every record of a variable: encode each mapping once."""
    key = id(constraints)
    hit = _constraints_text.get(key)
    if hit is not None and hit[0] is constraints:
        return hit[1]
    if len(_constraints_text) > 4096:
        _constraints_text.clear()
    text = dumps(dict(constraints))
    _constraints_text[key] = (constraints, text)
    return text


_frozen: dict[str, Any] = {}


def _frozen_map(text: str) -> Any:
    """Decode a constraints/metadata object once: records of one variable share it."""
    if not text:
        return EMPTY
    found = _frozen.get(text)
    if found is None:
        if len(_frozen) > 4096:
            _frozen.clear()
        found = _frozen[text] = freeze(json.loads(text))
    return found


def record_from_pb(msg: pb.VariableRecord) -> Variable:
    type_name = msg.type
    value = json.loads(msg.value_json)
    if type_name == "embedding" or type_name == "tensor":
        value = _vectorize(value)
    return Variable(
        msg.name,
        type_name,
        value,
        _frozen_map(msg.constraints_json),
        msg.version,
        _frozen_map(msg.metadata_json),
        msg.source,
        msg.timestamp,
    )


def event_to_pb(
    seq: int, event: WatchEvent, record: Variable | None, record_pb: pb.VariableRecord | None = None
) -> pb.Event:
    if record is not None:
        if record_pb is None:
            record_pb = record_to_pb(record)
        return pb.Event(
            seq=seq,
            name=event.name,
            kind=event.kind,
            old_value_json=dumps(event.old_value),
            new_value_json=record_pb.value_json,
            version=event.version,
            source=event.source,
            timestamp=event.timestamp,
            metadata_json=record_pb.metadata_json,
            record=record_pb,
        )
    msg = pb.Event(
        seq=seq,
        name=event.name,
        kind=event.kind,
        old_value_json=dumps(event.old_value),
        new_value_json=dumps(event.new_value),
        version=event.version,
        source=event.source,
        timestamp=event.timestamp,
        metadata_json=dumps_map(event.metadata),
    )
    if record is not None:
        msg.record.CopyFrom(record_to_pb(record))
    return msg


def event_from_pb(msg: pb.Event, type_name: str | None) -> WatchEvent:
    """The WatchEvent of a wire event; ``type_name`` restores tuples for vectors."""
    if msg.HasField("record"):
        type_name = msg.record.type
    old = json.loads(msg.old_value_json) if msg.old_value_json else None
    new = json.loads(msg.new_value_json) if msg.new_value_json else None
    if type_name is not None:
        old, new = canonical(type_name, old), canonical(type_name, new)
    return WatchEvent(
        msg.name,
        old,
        new,
        msg.version,
        msg.source,
        msg.timestamp,
        msg.kind,
        freeze(json.loads(msg.metadata_json) if msg.metadata_json else None),
    )
