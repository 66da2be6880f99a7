"""Variable types and constraints: the one implementation every backend shares.

A type turns a constraint mapping into a *validator* once, at definition time,
so that a write pays for one closure call and nothing else. Validators accept a
value, return its canonical form, or raise :class:`ValidationError` naming
what was wrong. They never mutate their input.

Coercion rules (strict by design, so a value means the same on every backend
and over the wire):

============  ==============================================================
``float``     ``int`` and ``float`` (and numpy reals) become ``float``;
              ``bool`` is rejected; NaN and infinities are rejected;
              strings are rejected (use :func:`parse` for text).
``int``       integers (and numpy integers) only; ``bool`` and ``float``
              (even ``3.0``) are rejected.
``str``       ``str`` only; nothing is converted to text implicitly.
``bool``      ``bool`` (and numpy bools) only; ``0``/``1`` are rejected.
``choice``    a value equal to one of ``choices`` *and of the same type*
              (so ``1`` does not match ``True``).
``module``    a module name (``str``, e.g. ``"ChainOfThought"``), optionally
              limited by ``choices``; or a compiled DSPy state from
              ``Program.compile`` (an object marked ``"kind":
              "dspex.compiled_state"``, see ``variables/compiled_state.py``).
``embedding`` a flat sequence of real numbers, stored as a tuple of floats.
``tensor``    a rectangular nested sequence of real numbers (or anything with
              ``tolist()``, e.g. a numpy array), stored as nested tuples.
============  ==============================================================

Text is converted only on purpose, through :func:`~dspex_jupyter.variables.parse.parse` (the magics and text
widgets use it): ``"0.9"`` parses as a float, ``"true"``/``"false"`` as bools,
and JSON for embeddings and tensors.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from .compiled_state import check_compiled, is_compiled_state

__all__ = [
    "TYPE_NAMES",
    "Validator",
    "normalize_type",
    "check_constraints",
    "compile_validator",
    "check_name",
    "check_metadata",
]

Validator = Callable[[Any], Any]

TYPE_NAMES: tuple[str, ...] = (
    "float",
    "int",
    "str",
    "bool",
    "choice",
    "module",
    "embedding",
    "tensor",
)

_ALLOWED_CONSTRAINTS: dict[str, frozenset[str]] = {
    "float": frozenset({"min", "max"}),
    "int": frozenset({"min", "max"}),
    "str": frozenset({"min_length", "max_length", "pattern", "choices"}),
    "bool": frozenset(),
    "choice": frozenset({"choices"}),
    "module": frozenset({"choices"}),
    "embedding": frozenset({"dimensions", "min", "max"}),
    "tensor": frozenset({"shape", "min", "max"}),
}

_PYTHON_TYPES = {float: "float", int: "int", str: "str", bool: "bool"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")


def normalize_type(type_: str | type) -> str:
    """Return the canonical type name; Python's ``float``/``int``/``str``/``bool`` are accepted."""
    if isinstance(type_, type) and type_ in _PYTHON_TYPES:
        return _PYTHON_TYPES[type_]
    if isinstance(type_, str) and type_ in _ALLOWED_CONSTRAINTS:
        return type_
    raise ValidationError(
        f"unknown variable type {type_!r}; expected one of {', '.join(TYPE_NAMES)}"
    )


def check_name(name: Any) -> str:
    """Variable names are identifiers (dots and dashes allowed), at most 128 characters."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValidationError(
            f"invalid variable name {name!r}: use letters, digits, '_', '.', '-' "
            "(not starting with a digit), at most 128 characters"
        )
    return name


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata is a JSON-safe mapping with string keys (it travels over the wire)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ValidationError(f"metadata must be a mapping with string keys, got {metadata!r}")
    try:
        return json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON-serializable: {exc}") from None


# --------------------------------------------------------------------------- helpers


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_np_bool(value)
    )


def _is_np_bool(value: Any) -> bool:
    return type(value).__name__ == "bool_"


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _finite_float(value: Any, what: str) -> float:
    if type(value) is float:
        result = value
    elif _is_real(value):
        result = float(value)
    else:
        raise ValidationError(f"expected {what}, got {_describe(value)}")
    if not math.isfinite(result):
        raise ValidationError(f"expected a finite number, got {result!r}")
    return result


def _bound(constraints: Mapping[str, Any], key: str) -> float | None:
    value = constraints.get(key)
    if value is None:
        return None
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValidationError(f"constraint {key!r} must be a finite number, got {value!r}")
    return value


def _range_checker(constraints: Mapping[str, Any]) -> Callable[[float], None]:
    lo, hi = _bound(constraints, "min"), _bound(constraints, "max")
    if lo is not None and hi is not None and lo > hi:
        raise ValidationError(f"constraint min ({lo}) is greater than max ({hi})")

    def check(number: float) -> None:
        if lo is not None and number < lo:
            raise ValidationError(f"{number!r} is below min {lo!r}")
        if hi is not None and number > hi:
            raise ValidationError(f"{number!r} is above max {hi!r}")

    return check


def _length(constraints: Mapping[str, Any], key: str) -> int | None:
    value = constraints.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"constraint {key!r} must be a non-negative int, got {value!r}")
    return value


def _choices(constraints: Mapping[str, Any], required: bool) -> tuple[Any, ...] | None:
    choices = constraints.get("choices")
    if choices is None:
        if required:
            raise ValidationError("a 'choice' variable needs constraints={'choices': [...]}")
        return None
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
        raise ValidationError(f"constraint 'choices' must be a non-empty list, got {choices!r}")
    for choice in choices:
        if not isinstance(choice, (str, int, float, bool)) or (
            isinstance(choice, float) and not math.isfinite(choice)
        ):
            raise ValidationError(f"choices must be strings, numbers or bools, got {choice!r}")
    keys = [(type(c), c) for c in choices]
    if len(set(keys)) != len(keys):
        raise ValidationError(f"constraint 'choices' has duplicates: {list(choices)!r}")
    return tuple(choices)


def _choice_checker(choices: tuple[Any, ...]) -> Callable[[Any], None]:
    allowed = frozenset((type(c), c) for c in choices)

    def check(value: Any) -> None:
        try:
            ok = (type(value), value) in allowed
        except TypeError:  # unhashable
            ok = False
        if not ok:
            raise ValidationError(
                f"{value!r} is not one of the choices {', '.join(repr(c) for c in choices)}"
            )

    return check


def _as_nested(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


# --------------------------------------------------------------------------- compilers


def _compile_float(c: Mapping[str, Any]) -> Validator:
    in_range = _range_checker(c)

    def validate(value: Any) -> float:
        number = _finite_float(value, "a float")
        in_range(number)
        return number

    return validate


def _compile_int(c: Mapping[str, Any]) -> Validator:
    in_range = _range_checker(c)

    def validate(value: Any) -> int:
        if type(value) is not int:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ValidationError(f"expected an int, got {_describe(value)}")
            value = int(value)
        in_range(value)
        return value

    return validate


def _compile_str(c: Mapping[str, Any]) -> Validator:
    shortest, longest = _length(c, "min_length"), _length(c, "max_length")
    if shortest is not None and longest is not None and shortest > longest:
        raise ValidationError(f"min_length ({shortest}) is greater than max_length ({longest})")
    pattern_text = c.get("pattern")
    pattern = None
    if pattern_text is not None:
        if not isinstance(pattern_text, str):
            raise ValidationError(f"constraint 'pattern' must be a string, got {pattern_text!r}")
        try:
            pattern = re.compile(pattern_text)
        except re.error as exc:
            raise ValidationError(f"constraint 'pattern' is not a valid regex: {exc}") from None
    choices = _choices(c, required=False)
    if choices is not None and not all(isinstance(x, str) for x in choices):
        raise ValidationError("choices of a 'str' variable must be strings")
    in_choices = _choice_checker(choices) if choices else None

    def validate(value: Any) -> str:
        if type(value) is not str:
            raise ValidationError(f"expected a str, got {_describe(value)}")
        if shortest is not None and len(value) < shortest:
            raise ValidationError(f"{value!r} is shorter than min_length {shortest}")
        if longest is not None and len(value) > longest:
            raise ValidationError(
                f"string of length {len(value)} is longer than max_length {longest}"
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise ValidationError(f"{value!r} does not match pattern {pattern_text!r}")
        if in_choices is not None:
            in_choices(value)
        return value

    return validate


def _compile_bool(c: Mapping[str, Any]) -> Validator:
    def validate(value: Any) -> bool:
        if type(value) is bool:
            return value
        if _is_np_bool(value):
            return bool(value)
        raise ValidationError(f"expected a bool, got {_describe(value)}")

    return validate


def _compile_choice(c: Mapping[str, Any]) -> Validator:
    check = _choice_checker(_choices(c, required=True))  # type: ignore[arg-type]

    def validate(value: Any) -> Any:
        check(value)
        return value

    return validate


def _compile_module(c: Mapping[str, Any]) -> Validator:
    choices = _choices(c, required=False)
    if choices is not None and not all(isinstance(x, str) for x in choices):
        raise ValidationError("choices of a 'module' variable must be module names (strings)")
    in_choices = _choice_checker(choices) if choices else None

    def validate(value: Any) -> Any:
        if is_compiled_state(value):
            return check_compiled(value)
        if type(value) is not str or not value:
            raise ValidationError(
                "expected a module name (a non-empty str) or a compiled state "
                f"(Program.compile), got {_describe(value)}"
            )
        if in_choices is not None:
            in_choices(value)
        return value

    return validate


def _compile_embedding(c: Mapping[str, Any]) -> Validator:
    dimensions = _length(c, "dimensions")
    in_range = _range_checker(c)

    def validate(value: Any) -> tuple[float, ...]:
        value = _as_nested(value)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ValidationError(f"expected a sequence of numbers, got {_describe(value)}")
        vector = tuple(_finite_float(x, "a number in the embedding") for x in value)
        if dimensions is not None and len(vector) != dimensions:
            raise ValidationError(f"expected {dimensions} dimensions, got {len(vector)}")
        for x in vector:
            in_range(x)
        return vector

    return validate


def _compile_tensor(c: Mapping[str, Any]) -> Validator:
    shape = c.get("shape")
    if shape is not None:
        if (
            isinstance(shape, (str, bytes))
            or not isinstance(shape, Sequence)
            or not all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                for d in shape
            )
        ):
            raise ValidationError(
                f"constraint 'shape' must be a list of non-negative ints or None, got {shape!r}"
            )
    in_range = _range_checker(c)

    def convert(value: Any, depth: int, dims: list[int], leaf: list[int]) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            number = _finite_float(value, "a number in the tensor")
            in_range(number)
            if not leaf:
                leaf.append(depth)
            elif leaf[0] != depth:
                raise ValidationError("tensor is not rectangular (numbers at different depths)")
            return number
        if leaf and depth >= leaf[0]:
            raise ValidationError("tensor is not rectangular (a list where a number belongs)")
        if depth == len(dims):
            dims.append(len(value))
        elif dims[depth] != len(value):
            raise ValidationError(
                f"tensor is not rectangular: length {len(value)} at depth {depth}, "
                f"expected {dims[depth]}"
            )
        return tuple(convert(item, depth + 1, dims, leaf) for item in value)

    def validate(value: Any) -> Any:
        dims: list[int] = []
        result = convert(_as_nested(value), 0, dims, [])
        if shape is not None and (
            len(shape) != len(dims)
            or any(s is not None and s != d for s, d in zip(shape, dims, strict=True))
        ):
            raise ValidationError(f"expected shape {list(shape)}, got {dims}")
        return result

    return validate


_COMPILERS: dict[str, Callable[[Mapping[str, Any]], Validator]] = {
    "float": _compile_float,
    "int": _compile_int,
    "str": _compile_str,
    "bool": _compile_bool,
    "choice": _compile_choice,
    "module": _compile_module,
    "embedding": _compile_embedding,
    "tensor": _compile_tensor,
}


def check_constraints(type_name: str, constraints: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a constraint mapping for a type; return a JSON-safe copy."""
    if constraints is None:
        constraints = {}
    if not isinstance(constraints, Mapping):
        raise ValidationError(f"constraints must be a mapping, got {constraints!r}")
    unknown = set(constraints) - _ALLOWED_CONSTRAINTS[type_name]
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED_CONSTRAINTS[type_name])) or "none"
        raise ValidationError(
            f"unknown constraint(s) {', '.join(sorted(map(str, unknown)))} for type "
            f"{type_name!r}; allowed: {allowed}"
        )
    clean = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in constraints.items()}
    _COMPILERS[type_name](clean)  # raises on inconsistent constraints
    return clean


def compile_validator(type_name: str, constraints: Mapping[str, Any]) -> Validator:
    """Build the validator for already-checked constraints (see :func:`check_constraints`)."""
    return _COMPILERS[type_name](constraints)
