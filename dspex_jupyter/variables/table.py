"""A table of versioned variables: the write semantics every backend shares.

``LocalState`` wraps it in a lock; the bridge server's stores wrap it in a lock
and a durable log. Keeping the rules here (validation, versions, compare-and-set,
all-or-nothing batches, export/import) is what makes "one behaviour, two
backends" true by construction rather than by testing alone.

The table does no locking of its own: callers serialize writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ValidationError, VariableExists, VariableNotFound, VersionConflict
from .record import Variable, WatchEvent, freeze
from .types import (
    Validator,
    check_constraints,
    check_metadata,
    check_name,
    compile_validator,
    normalize_type,
)

__all__ = ["VariableTable", "SNAPSHOT_FORMAT", "define", "variable_from_dict"]

SNAPSHOT_FORMAT = "dspex-state/1"


def define(
    name: str,
    type_: str | type,
    initial: Any,
    *,
    constraints: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    source: str = "api",
    version: int = 1,
    timestamp: float | None = None,
) -> tuple[Variable, Validator]:
    """Check a whole definition and return its first record and its validator."""
    check_name(name)
    type_name = normalize_type(type_)
    clean = check_constraints(type_name, constraints)
    validator = compile_validator(type_name, clean)
    try:
        value = validator(initial)
    except ValidationError as exc:
        raise ValidationError(f"{name}: initial value rejected: {exc}") from None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError(f"{name}: version must be a positive int, got {version!r}")
    record = Variable(
        name,
        type_name,
        value,
        freeze(clean),
        version,
        freeze(check_metadata(metadata)),
        str(source),
        time.time() if timestamp is None else float(timestamp),
    )
    return record, validator


def variable_from_dict(data: Mapping[str, Any]) -> tuple[Variable, Validator]:
    """Rebuild (and fully re-validate) a record from :meth:`Variable.to_dict` output."""
    if not isinstance(data, Mapping) or "name" not in data or "type" not in data:
        raise ValidationError(f"not a variable record: {data!r}")
    return define(
        data["name"],
        data["type"],
        data.get("value"),
        constraints=data.get("constraints"),
        metadata=data.get("metadata"),
        source=data.get("source", "import"),
        version=data.get("version", 1),
        timestamp=data.get("timestamp"),
    )


class VariableTable:
    """Name -> current :class:`Variable`, plus each variable's compiled validator."""

    __slots__ = ("variables", "_validators")

    def __init__(self) -> None:
        self.variables: dict[str, Variable] = {}
        self._validators: dict[str, Validator] = {}

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            raise VariableNotFound(name, self.variables) from None

    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __len__(self) -> int:
        return len(self.variables)

    def records(self) -> list[Variable]:
        return sorted(self.variables.values(), key=lambda v: v.name)

    # ------------------------------------------------------------------ writes

    def register(self, record: Variable, validator: Validator) -> WatchEvent:
        """Insert a record produced by :func:`define`. Existing names are refused."""
        if record.name in self.variables:
            existing = self.variables[record.name]
            raise VariableExists(
                f"variable {record.name!r} already exists as {existing.type} "
                f"with constraints {dict(existing.constraints)!r}; delete it first"
            )
        self.variables[record.name] = record
        self._validators[record.name] = validator
        return WatchEvent.change(record, "registered")

    def prepare_set(
        self,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
        timestamp: float | None = None,
    ) -> Variable:
        """The record a set would produce, fully validated, without applying it."""
        current = self.variables.get(name)
        if current is None:
            raise VariableNotFound(name, self.variables)
        if expected_version is not None and expected_version != current.version:
            raise VersionConflict(name, expected_version, current.version)
        try:
            clean = self._validators[name](value)
        except ValidationError as exc:
            raise ValidationError(f"{name}: {exc}") from None
        merged = current.metadata
        if metadata:
            merged = freeze({**current.metadata, **check_metadata(metadata)})
        return Variable(
            name,
            current.type,
            clean,
            current.constraints,
            current.version + 1,
            merged,
            source,
            time.time() if timestamp is None else timestamp,
        )

    def apply(self, record: Variable) -> WatchEvent:
        """Make a prepared record current and describe the change."""
        old = self.variables[record.name]
        self.variables[record.name] = record
        return WatchEvent.change(record, "set", old.value)

    def set(self, name: str, value: Any, **options: Any) -> tuple[Variable, WatchEvent]:
        record = self.prepare_set(name, value, **options)
        return record, self.apply(record)

    def update_many(
        self,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> tuple[dict[str, Variable], list[WatchEvent]]:
        """All or nothing: every update is validated before any is applied."""
        if not isinstance(updates, Mapping):
            raise ValidationError(f"update_many expects a mapping name -> value, got {updates!r}")
        expected_versions = expected_versions or {}
        now = time.time()
        prepared = [
            self.prepare_set(
                name,
                value,
                metadata=metadata,
                expected_version=expected_versions.get(name),
                source=source,
                timestamp=now,
            )
            for name, value in updates.items()
        ]
        events = [self.apply(record) for record in prepared]
        return {record.name: record for record in prepared}, events

    def delete(self, name: str, source: str = "api") -> WatchEvent:
        old = self.get(name)
        del self.variables[name]
        del self._validators[name]
        return WatchEvent.deleted(old, source, time.time())

    # ------------------------------------------------------------------ snapshots

    def export(self) -> dict[str, Any]:
        """A JSON-safe snapshot that :meth:`import_` restores exactly, versions included."""
        return {"format": SNAPSHOT_FORMAT, "variables": [v.to_dict() for v in self.records()]}

    def import_(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> list[WatchEvent]:
        """Restore a snapshot atomically. Versions are kept, except that a replaced
        variable never goes back in version (its version becomes at least current + 1)."""
        entries = parse_snapshot(snapshot)
        if not replace:
            clashes = [record.name for record, _ in entries if record.name in self.variables]
            if clashes:
                raise VariableExists(
                    f"cannot import: variable(s) {', '.join(clashes)} already exist "
                    "(pass replace=True to overwrite)"
                )
        events = []
        for record, validator in entries:
            current = self.variables.get(record.name)
            if source is not None:
                record = record._replace(source=source)
            if current is not None and record.version <= current.version:
                record = record._replace(version=current.version + 1)
            self.variables[record.name] = record
            self._validators[record.name] = validator
            events.append(
                WatchEvent.change(record, "registered")
                if current is None
                else WatchEvent.change(record, "set", current.value)
            )
        return events


def parse_snapshot(snapshot: Mapping[str, Any]) -> list[tuple[Variable, Validator]]:
    """Validate a whole snapshot up front so that importing it is all or nothing."""
    if not isinstance(snapshot, Mapping) or snapshot.get("format") != SNAPSHOT_FORMAT:
        raise ValidationError(f"not a {SNAPSHOT_FORMAT} snapshot")
    raw: Iterable[Any] = snapshot.get("variables") or []
    entries = [variable_from_dict(item) for item in raw]
    names = [record.name for record, _ in entries]
    if len(set(names)) != len(names):
        raise ValidationError("snapshot names a variable more than once")
    return entries
