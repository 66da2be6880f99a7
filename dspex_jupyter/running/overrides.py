"""Per-run variable values (``overrides=``): used by one run, never written to the variable.

An evaluation or a tuning trial must be able to try ``temperature=0.2`` while
the shared variable (and every widget showing it) keeps its value, and while
other runs use other values at the same time. So an override travels with the
run: native modules read it instead of the record's value, and bridged modules
send it with ``ExecuteModule`` (``overrides_json``), where the server validates
it again and uses it in place of the session's value. The trace records it
(``{"override": True}``) next to the version of the variable the run saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError, VariableNotFound
from ..variables.record import to_json_value
from ..variables.types import compile_validator

__all__ = ["check_overrides", "program_variables"]


def program_variables(spec: Any, ctx: Any) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """``{name: (type, constraints)}`` of every variable ``spec`` declares or binds."""
    found: dict[str, tuple[str, Mapping[str, Any]]] = {
        d.name: (d.type, d.constraints) for d in spec.variables
    }
    for module in spec.modules:
        for variable in module.bindings.values():
            if variable not in found:
                try:
                    record = ctx.variable(variable)
                except KeyError:
                    continue
                found[variable] = (record.type, record.constraints)
    return found


def check_overrides(spec: Any, overrides: Any, ctx: Any) -> dict[str, Any]:
    """The validated overrides (canonical values), or a typed error before anything runs.

    A name the program neither declares nor binds raises ``VariableNotFound``
    (an override that nothing reads is a typo); a value its type or
    constraints refuse raises ``ValidationError`` naming the variable.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping) or not all(isinstance(k, str) for k in overrides):
        raise ValidationError(f"overrides must map variable names to values, got {overrides!r}")
    known = program_variables(spec, ctx)
    clean: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise VariableNotFound(name, known)
        type_name, constraints = known[name]
        try:
            clean[name] = compile_validator(type_name, constraints)(value)
        except ValidationError as exc:
            raise ValidationError(f"override {name}: {exc}") from None
    return clean


def json_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe values (vectors as lists) for the wire and the trace."""
    return {k: to_json_value(v) for k, v in overrides.items()}
