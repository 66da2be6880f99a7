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
