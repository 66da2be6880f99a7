"""Constrained decoding for small local models: a JSON schema from a DSPy signature.

Why: a 135M-parameter model cannot follow DSPy's ChatAdapter field format
(it copies the ``{placeholders}``), and unconstrained it rarely even writes
valid JSON. So runs on the embedded model (:mod:`.local_lm`) use DSPy's
``JSONAdapter`` and ask llama.cpp to decode under a JSON schema built from
exactly the signature the adapter formats: one property per output field, in
the signature's order (so ChainOfThought's ``reasoning`` comes first), all
required, nothing else; ``Literal`` outputs restricted to their values; free
text capped in length, so an answer always closes its JSON before
``max_tokens``. llama.cpp turns the schema into a grammar itself.

Runs in the worker processes (it reads DSPy signatures); the adapter is
built lazily so importing this module does not import DSPy.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from typing import Any

from ..errors import ProgramError

__all__ = [
    "output_schema",
    "field_schema",
    "text_schema",
    "constrained_json_adapter",
    "TEXT_MAX",
    "REASONING_MAX",
]

#: Characters of free text an output may hold (reasoning gets more room).
TEXT_MAX = 300
REASONING_MAX = 600
_LIST_MAX = 8


def text_schema(max_length: int = TEXT_MAX) -> dict[str, Any]:
    """Free text: 1 to ``max_length`` characters.

    The cap makes every answer close its JSON before ``max_tokens``. (No
    ``pattern``: with one, llama.cpp 2026.10 silently decodes without the
    schema at all, extra keys included; measured.)
    """
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def field_schema(annotation: Any, *, max_length: int = TEXT_MAX) -> dict[str, Any]:
    """The JSON schema of one output value of type ``annotation``."""
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if annotation is str or annotation is Any:
        return text_schema(max_length)
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if not args or not all(isinstance(a, (str, int, float, bool)) for a in args):
            raise ProgramError(f"cannot build a grammar for {annotation!r}: values must be scalars")
        return {"enum": list(args)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [field_schema(a, max_length=max_length) for a in args]}
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set):
        item = field_schema(args[0] if args else str, max_length=max_length)
        return {"type": "array", "items": item, "maxItems": _LIST_MAX}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    try:
        import pydantic

        return pydantic.TypeAdapter(annotation).json_schema()
    except Exception as exc:
        raise ProgramError(
            f"cannot build a grammar for output type {annotation!r}: {type(exc).__name__}: {exc}"
        ) from None


def output_schema(signature: Any) -> dict[str, Any]:
    """The JSON schema of a DSPy signature's outputs: exactly its output fields, in order."""
    properties: dict[str, Any] = {}
    for name, info in signature.output_fields.items():
        limit = REASONING_MAX if name == "reasoning" else TEXT_MAX
        properties[name] = field_schema(info.annotation, max_length=limit)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


@functools.lru_cache(maxsize=1)
def constrained_json_adapter() -> Any:
    """A shared ``dspy.JSONAdapter`` that sends each call's output schema to llama.cpp.

    DSPy asks unknown ``openai/<name>`` models only for ``json_object`` mode;
    this adapter sends the signature's schema instead (llama.cpp's
    ``response_format: json_schema``), per call, so every predictor of a
    program (ReAct's steps included) is constrained by its own signature.
    """
    import dspy

    class ConstrainedJSONAdapter(dspy.JSONAdapter):
        def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any):
            lm_kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": signature.__name__ or "outputs",
                    "schema": output_schema(signature),
                    "strict": True,
                },
            }

    return ConstrainedJSONAdapter()
