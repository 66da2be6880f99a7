"""Parse DSPy string signatures (``"question, context: list[str] -> answer"``) without DSPy.

The kernel must check a spec's data flow (which fields each module reads and
writes) without importing DSPy (3 s). String signatures are simple enough to
parse here; the bridge worker parses them again with DSPy itself, which stays
the authority on types.
"""

from __future__ import annotations

import keyword
from typing import NamedTuple

from ..errors import ProgramError

__all__ = ["Signature", "parse_signature"]


class Signature(NamedTuple):
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets (types like ``dict[str, int]`` contain commas)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _names(side: str, signature: str, what: str) -> tuple[str, ...]:
    names = []
    for field in _split_top_level(side):
        name = field.split(":", 1)[0].strip()
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ProgramError(
                f"signature {signature!r}: {what} field {name!r} is not an identifier"
            )
        if name in names:
            raise ProgramError(f"signature {signature!r}: {what} field {name!r} appears twice")
        names.append(name)
    return tuple(names)


def parse_signature(signature: object) -> Signature:
    """The input and output field names of a string signature; ``ProgramError`` if malformed."""
    if not isinstance(signature, str):
        raise ProgramError(
            "a signature must be a string such as 'question -> answer' "
            f"(specs are pure data), got {type(signature).__name__}"
        )
    if signature.count("->") != 1:
        raise ProgramError(f"signature {signature!r} must have exactly one '->'")
    left, right = signature.split("->")
    inputs = _names(left, signature, "input")
    outputs = _names(right, signature, "output")
    if not outputs:
        raise ProgramError(f"signature {signature!r} has no output field")
    both = set(inputs) & set(outputs)
    if both:
        raise ProgramError(f"signature {signature!r}: {sorted(both)} both input and output")
    return Signature(inputs, outputs)


# ---------------------------------------------------------------- class-based DSPy signatures

_SIMPLE_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}
_DEFAULT_INSTRUCTIONS = "Given the fields"  # what DSPy writes when a class has no docstring


class TypedSignature(NamedTuple):
    """A class-based ``dspy.Signature`` as data: no code has to run where it is used."""

    text: str  # "text: str, n: int -> label: Literal['pos', 'neg']", DSPy parses it again
    instructions: str | None
    descriptions: dict[str, str]


def is_signature_class(obj: object) -> bool:
    """A ``dspy.Signature`` subclass, recognised without importing DSPy."""
    return (
        isinstance(obj, type)
        and isinstance(getattr(obj, "input_fields", None), dict)
        and isinstance(getattr(obj, "output_fields", None), dict)
        and any(klass.__name__ == "Signature" for klass in obj.__mro__)
    )


def type_text(annotation: object, where: str) -> str:
    """The DSPy string-signature spelling of a field type; ``ProgramError`` if it has none.

    Only types DSPy rebuilds from text without running code: str, int, float, bool,
    ``Literal[...]`` of str/int/bool values, ``list[T]``, ``dict[str, T]``, ``Optional[T]``.
    """
    import types
    import typing

    if annotation in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal and all(
        isinstance(a, (str, int, bool)) and "->" not in str(a) for a in args
    ):
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is list and len(args) == 1:
        return f"list[{type_text(args[0], where)}]"
    if origin is dict and len(args) == 2 and args[0] is str:
        return f"dict[str, {type_text(args[1], where)}]"
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"Optional[{type_text(inner, where)}]"
    raise ProgramError(
        f"{where} has the type {annotation!r}, which a bridged signature cannot carry as "
        "data; use str, int, float, bool, Literal[...], list[...], dict[str, ...] or "
        "Optional[...] (or a dspex_jupyter.modules.Custom module for anything else)"
    )


def typed_signature(cls: type) -> TypedSignature:
    """Convert a class-based signature to data: field names, types, descriptions, instructions.

    Why data and not a pickle: a signature is a declaration, so the worker rebuilds it
    with DSPy from text and no notebook code runs; it works on a shared server without
    ``--allow-code``, and the spec stays readable.
    """
    name = cls.__name__
    sides: list[str] = []
    descriptions: dict[str, str] = {}
    for fields in (cls.input_fields, cls.output_fields):  # type: ignore[attr-defined]
        parts = []
        for field, info in fields.items():
            where = f"signature {name}: field {field!r}"
            parts.append(f"{field}: {type_text(info.annotation, where)}")
            desc = (getattr(info, "json_schema_extra", None) or {}).get("desc")
            if isinstance(desc, str) and desc and desc != f"${{{field}}}":
                descriptions[field] = desc
        sides.append(", ".join(parts))
    instructions = getattr(cls, "instructions", None)
    if not isinstance(instructions, str) or instructions.startswith(_DEFAULT_INSTRUCTIONS):
        instructions = None
    text = " -> ".join(sides)
    parse_signature(text)  # the names check out as a string signature would
    return TypedSignature(text, instructions, descriptions)
