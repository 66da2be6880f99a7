"""Metrics: kernel callables ``metric(example, outputs) -> float | bool``, and built-ins.

Metrics run in the kernel, on plain dicts, so a metric is any Python function
(no pickling, no DSPy needed). The built-ins compare one output field with the
expected value of the same name:

* ``"exact_match"``: equal after normalization: both sides are turned into
  text, case-folded (``str.casefold``), stripped, and runs of whitespace become
  one space. Nothing else (punctuation, articles) is removed.
* ``"contains"``: the normalized expected text occurs in the normalized output.
* ``"f1"``: token F1 (SQuAD style) over the lowercase word tokens (``\\w+``).

``field=`` names the field; the default is the dataset's single expected field.
The functions live in :mod:`dspex_jupyter.scoring`, where a bridge worker
compiling a program scores with the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ValidationError
from ..scoring import BUILTINS, normalize

__all__ = ["Metric", "exact_match", "contains", "f1", "resolve_metric", "normalize", "BUILTINS"]


class Metric:
    """A scoring function with a name; call it as ``metric(example, outputs) -> float``.

    Built-ins bind their ``field`` when the dataset is known (:meth:`bind`).
    """

    def __init__(self, name: str, fn: Callable[..., Any], field: str | None) -> None:
        self.name = name
        self.field = field
        self._fn = fn
        self._builtin = name in BUILTINS and fn is BUILTINS[name]

    @property
    def builtin(self) -> bool:
        """Whether this is a built-in metric (a compiling bridge worker can score with it)."""
        return self._builtin

    def bind(self, expected_keys: Sequence[str]) -> Metric:
        """A built-in with its field chosen and checked; ``ValidationError`` if it cannot be."""
        if not self._builtin:
            return self
        field = self.field
        if field is None:
            if len(expected_keys) != 1:
                raise ValidationError(
                    f"metric {self.name!r} needs field= when the dataset has "
                    f"{len(expected_keys)} expected fields {list(expected_keys)}"
                )
            field = expected_keys[0]
        elif field not in expected_keys:
            raise ValidationError(
                f"metric {self.name!r}: field {field!r} is not an expected field of the "
                f"dataset {list(expected_keys)}"
            )
        return Metric(self.name, self._fn, field)

    def __call__(self, example: dict[str, Any], outputs: dict[str, Any]) -> float:
        if self._builtin:
            if self.field is None:
                raise ValidationError(f"metric {self.name!r} has no field; call bind() first")
            if self.field not in outputs:
                raise ValidationError(f"the program produced no {self.field!r} output")
            raw: Any = self._fn(example[self.field], outputs[self.field])
        else:
            raw = self._fn(example, outputs)
        return _score(raw, self.name)

    def __repr__(self) -> str:
        return f"<Metric {self.name}{' field=' + self.field if self.field else ''}>"


def _score(raw: Any, name: str) -> float:
    if isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, (int, float)) or not math.isfinite(raw) or not 0 <= raw <= 1:
        raise ValidationError(f"metric {name!r} returned {raw!r}; a metric returns a bool or 0..1")
    return float(raw)


def exact_match(field: str | None = None) -> Metric:
    """The built-in exact match on ``field`` (see the module docstring for normalization)."""
    return Metric("exact_match", BUILTINS["exact_match"], field)


def contains(field: str | None = None) -> Metric:
    """The expected text occurs in the output ``field`` (normalized)."""
    return Metric("contains", BUILTINS["contains"], field)


def f1(field: str | None = None) -> Metric:
    """Token F1 between the expected and produced ``field``."""
    return Metric("f1", BUILTINS["f1"], field)


def resolve_metric(metric: Any, field: str | None = None) -> Metric:
    """A :class:`Metric` from a built-in name, a ``Metric`` or a kernel callable."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        if metric not in BUILTINS:
            raise ValidationError(
                f"unknown metric {metric!r}; built-ins are {sorted(BUILTINS)}, or pass a "
                "callable metric(example, outputs) -> float | bool"
            )
        return Metric(metric, BUILTINS[metric], field)
    if callable(metric):
        name = getattr(metric, "__name__", type(metric).__name__)
        return Metric(name, metric, None)
    raise ValidationError(f"a metric is a built-in name or a callable, got {metric!r}")
