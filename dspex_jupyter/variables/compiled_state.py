"""A compiled DSPy state as the value of a ``module`` variable (``Program.compile``).

``Program.compile`` stores each compiled module's ``dump_state()`` (demos,
instructions, signature) as a versioned ``module`` variable, so history,
rollback and shared sessions work for it as for any value. The value is a
plain JSON object marked ``"kind": "dspex.compiled_state"``; the ``module``
type's validator (``variables/types.py``) accepts it through
:func:`check_compiled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

__all__ = ["COMPILED_STATE", "check_compiled", "compiled_state", "is_compiled_state"]

#: The marker of a compiled DSPy state held by a ``module`` variable (``Program.compile``).
COMPILED_STATE = "dspex.compiled_state"


def compiled_state(module_type: str, state: Mapping[str, Any], optimizer: str | None) -> dict:
    """A ``module`` variable's value holding a module's DSPy ``dump_state()``.

    ``optimizer`` is ``None`` for the uncompiled state (a compiled variable's
    first version, so rolling back to it undoes the compile).
    """
    return {
        "kind": COMPILED_STATE,
        "format": 1,
        "module_type": module_type,
        "optimizer": optimizer,
        "state": dict(state),
    }


def is_compiled_state(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("kind") == COMPILED_STATE


def check_compiled(value: Mapping[str, Any]) -> dict:
    unknown = set(value) - {"kind", "format", "module_type", "optimizer", "state"}
    if unknown or value.get("format") != 1:
        raise ValidationError(
            f"a compiled state has the keys kind, format (1), module_type, optimizer, state; "
            f"got {sorted(value)} format {value.get('format')!r}"
        )
    if not isinstance(value.get("module_type"), str) or not isinstance(value.get("state"), Mapping):
        raise ValidationError("a compiled state needs a module_type (str) and a state (object)")
    optimizer = value.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, str):
        raise ValidationError(
            f"a compiled state's optimizer must be a str or null, got {optimizer!r}"
        )
    return dict(value)
