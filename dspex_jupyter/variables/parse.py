"""Text typed by a person (a magic, a text box, the panel) into a typed value.

Only here is text converted on purpose: ``"0.9"`` reads as a float,
``"true"``/``"false"`` as bools, JSON for embeddings and tensors. Validators
(``variables/types.py``) never convert text implicitly.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ValidationError

__all__ = ["parse"]

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse(type_name: str, text: str) -> Any:
    """Convert text typed by a person (a magic, a text box) into a value of ``type_name``.

    The result still has to pass the variable's validator; this only chooses
    the Python type the text stands for.
    """
    stripped = text.strip()
    try:
        if type_name == "float":
            return float(stripped)
        if type_name == "int":
            return int(stripped)
        if type_name == "bool":
            lowered = stripped.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(f"{text!r} is not a boolean (use true/false)")
        if type_name in ("embedding", "tensor"):
            return json.loads(stripped)
        if type_name == "choice":
            # A choice may be a number or a bool; keep text that is not valid JSON as text.
            try:
                decoded = json.loads(stripped)
            except ValueError:
                return _unquote(stripped)
            return decoded if isinstance(decoded, (int, float, bool, str)) else stripped
        return _unquote(stripped)
    except ValueError as exc:
        raise ValidationError(f"cannot read {text!r} as {type_name}: {exc}") from None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
