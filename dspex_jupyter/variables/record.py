"""The immutable records that travel between backends, watchers and the wire."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["Variable", "WatchEvent", "to_json_value", "freeze", "SIGNAL_KINDS"]

EMPTY: Mapping[str, Any] = MappingProxyType({})

#: Watch event kinds that tell about a variable without changing its value or
#: version (bridged backend only; delivered to ``watch(..., signals=True)``):
#: ``dependency_changed`` (metadata ``{"dependencies": [names]}``), ``locked`` and
#: ``unlocked`` (metadata ``{"holder", "lease_id", "reason"}``).
SIGNAL_KINDS = frozenset({"dependency_changed", "locked", "unlocked"})


def freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only view of a private copy, so records can be shared across threads."""
    return MappingProxyType(dict(mapping)) if mapping else EMPTY


def to_json_value(value: Any) -> Any:
    """Canonical values use tuples for vectors; JSON and protobuf want lists."""
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    return value


class Variable(NamedTuple):
    """One version of a variable. A write never mutates a record; it makes a new one.

    A ``NamedTuple`` rather than a frozen dataclass: it is created on every
    write, and tuple construction is several times cheaper.
    """

    name: str
    type: str
    value: Any
    constraints: Mapping[str, Any]
    version: int
    metadata: Mapping[str, Any]
    source: str
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (vectors become lists); :meth:`from_dict` inverts it."""
        return {
            "name": self.name,
            "type": self.type,
            "value": to_json_value(self.value),
            "constraints": dict(self.constraints),
            "version": self.version,
            "metadata": dict(self.metadata),
            "source": self.source,
            "timestamp": self.timestamp,
        }

    def same_definition(self, type_: str, constraints: Mapping[str, Any]) -> bool:
        return self.type == type_ and dict(self.constraints) == dict(constraints)

    def __repr__(self) -> str:
        return f"<Variable {self.name}: {self.type} = {self.value!r} (v{self.version})>"


class WatchEvent(NamedTuple):
    """What a watcher receives. ``kind`` is one of ``initial``, ``registered``,
    ``set`` or ``deleted``; for ``deleted`` the ``new_value`` is ``None``. Watchers
    that ask for ``signals=True`` also get the :data:`SIGNAL_KINDS`, which carry
    the variable's current value (as old and new) and version."""

    name: str
    old_value: Any
    new_value: Any
    version: int
    source: str
    timestamp: float
    kind: str = "set"
    metadata: Mapping[str, Any] = EMPTY

    @classmethod
    def change(cls, record: Variable, kind: str, old_value: Any = None) -> WatchEvent:
        """The event for ``record`` becoming current (``initial``, ``registered``,
        ``set``): name, version, source, time and metadata all come from the record."""
        return cls(
            record.name,
            old_value,
            record.value,
            record.version,
            record.source,
            record.timestamp,
            kind,
            record.metadata,
        )

    @classmethod
    def deleted(cls, record: Variable, source: str, timestamp: float) -> WatchEvent:
        """The event for deleting ``record``: a deletion is one more version."""
        return cls(
            record.name,
            record.value,
            None,
            record.version + 1,
            source,
            timestamp,
            "deleted",
            record.metadata,
        )

    @classmethod
    def signal(
        cls,
        record: Variable,
        kind: str,
        source: str,
        timestamp: float,
        metadata: Mapping[str, Any],
    ) -> WatchEvent:
        """A :data:`SIGNAL_KINDS` event: it tells about ``record`` without changing it,
        so old and new value are both its current value."""
        return cls(
            record.name,
            record.value,
            record.value,
            record.version,
            source,
            timestamp,
            kind,
            metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old_value": to_json_value(self.old_value),
            "new_value": to_json_value(self.new_value),
            "version": self.version,
            "source": self.source,
            "timestamp": self.timestamp,
            "kind": self.kind,
            "metadata": dict(self.metadata),
        }
