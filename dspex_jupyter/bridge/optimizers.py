"""The DSPy optimizers ``Program.compile`` offers, and the checks of their options.

Each name maps to DSPy's own class. Options are passed through to the class's
constructor or its ``compile`` (whichever accepts them); a name neither accepts
is a ``ValidationError`` naming the valid options, raised before anything runs.
DSPy is imported lazily: the kernel checks options with it before a compile,
the worker builds the optimizer with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

__all__ = ["OPTIMIZERS", "optimizer_class", "split_options"]

#: optimizer name -> DSPy class name
OPTIMIZERS = {
    "bootstrap_fewshot": "BootstrapFewShot",
    "bootstrap_random_search": "BootstrapFewShotWithRandomSearch",
    "mipro_v2": "MIPROv2",
    "copro": "COPRO",
    "gepa": "GEPA",
}
#: set by compile itself, never by the caller
_RESERVED = {"self", "metric", "student", "trainset", "valset", "teacher", "_kwargs"}


def optimizer_class(name: Any) -> Any:
    """DSPy's class for ``name``; ``ValidationError`` listing the names if unknown."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValidationError(
            f"unknown optimizer {name!r}; choose one of {', '.join(sorted(OPTIMIZERS))}"
        )
    import dspy

    return getattr(dspy, OPTIMIZERS[name])


def _params(fn: Any) -> set[str]:
    return {
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in _RESERVED
    }


def split_options(name: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(constructor options, compile options)``; ``ValidationError`` for an unknown one."""
    cls = optimizer_class(name)
    init, comp = _params(cls.__init__), _params(cls.compile)
    if not isinstance(options, Mapping):
        raise ValidationError(f"optimizer options must be a mapping, got {options!r}")
    unknown = sorted(set(options) - init - comp)
    if unknown:
        raise ValidationError(
            f"{OPTIMIZERS[name]} has no option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(sorted(init | comp))}"
        )
    return (
        {k: v for k, v in options.items() if k in init},
        {k: v for k, v in options.items() if k in comp and k not in init},
    )
