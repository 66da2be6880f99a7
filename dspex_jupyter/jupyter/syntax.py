"""Text syntax shared by the ``%dspex`` magics and ``%%dspex program`` cells.

Kept free of IPython and ipywidgets so it can be tested and reused on its own.

Tokens are separated by whitespace, except inside quotes (``"a b"``,
``'a b'``) or brackets (``["a", "b"]``, ``{"k": 1}``). Tokens keep their
quotes, because quoting carries meaning: for a ``choice`` variable, ``"1"`` is
the string and ``1`` the number (see :func:`dspex_jupyter.variables.parse.parse`).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ValidationError

__all__ = [
    "MagicSyntaxError",
    "tokenize",
    "unquote",
    "split_key_value",
    "parse_constraint",
    "parse_input_value",
]

_OPEN = {"[": "]", "{": "}", "(": ")"}


class MagicSyntaxError(ValidationError):
    """Bad ``%dspex`` syntax or a bad ``%%dspex`` cell; nothing was changed.

    ``line`` is the 1-based line of the cell (``None`` for a line magic) and
    ``expected`` says what the parser expected there.
    """

    def __init__(self, message: str, *, line: int | None = None, expected: str | None = None):
        self.line = line
        self.expected = expected
        text = message
        if expected:
            text += f"; expected {expected}"
        if line is not None:
            text = f"line {line}: {text}"
        super().__init__(text)


def tokenize(text: str, *, line: int | None = None) -> list[str]:
    """Split ``text`` into tokens (see the module docstring); quotes are kept."""
    tokens: list[str] = []
    current: list[str] = []
    quote: str | None = None
    stack: list[str] = []
    for index, char in enumerate(text):
        if quote:
            current.append(char)
            if char == "\\" and index + 1 < len(text):
                continue
            if char == quote and not (len(current) > 1 and current[-2] == "\\"):
                quote = None
            continue
        if char in "\"'":
            quote = char
            current.append(char)
        elif char in _OPEN:
            stack.append(_OPEN[char])
            current.append(char)
        elif stack and char == stack[-1]:
            stack.pop()
            current.append(char)
        elif char.isspace() and not stack:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if quote:
        raise MagicSyntaxError(
            f"unterminated {quote} quote in {text.strip()!r}",
            line=line,
            expected=f"a closing {quote}",
        )
    if stack:
        raise MagicSyntaxError(
            f"unclosed bracket in {text.strip()!r}", line=line, expected=f"a closing {stack[-1]}"
        )
    if current:
        tokens.append("".join(current))
    return tokens


def unquote(token: str) -> str:
    """``"a b"`` -> ``a b``; anything else unchanged."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        body = token[1:-1]
        if token[0] == '"':
            try:
                return json.loads(token)
            except ValueError:
                return body
        return body
    return token


def split_key_value(
    token: str, *, line: int | None = None, what: str = "key=value"
) -> tuple[str, str]:
    """``key=value`` -> ``("key", "value")`` (the value keeps its quotes)."""
    key, sep, value = token.partition("=")
    if not sep or not key or not key.replace("_", "a").isalnum():
        raise MagicSyntaxError(f"cannot read {token!r}", line=line, expected=what)
    return key, value


def parse_constraint(key: str, text: str, *, line: int | None = None) -> Any:
    """A constraint value: JSON (``0``, ``2.5``, ``["a","b"]``), ``a,b,c`` for choices, else text.

    ``choices=gpt-4,claude-3`` is accepted as well as ``choices=["gpt-4","claude-3"]``;
    each comma-separated choice is JSON if it reads as JSON (so ``choices=1,2``
    are numbers) and text otherwise.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    if key == "choices":
        return [_json_or_text(part) for part in text.split(",") if part.strip() != ""]
    if key in ("min", "max", "min_length", "max_length", "dimensions"):
        raise MagicSyntaxError(f"{key}={text} is not a number", line=line, expected="a number")
    return unquote(text)


def _json_or_text(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return unquote(text)


def parse_input_value(text: str) -> Any:
    """A program input: quoted -> that text; JSON (numbers, lists, ...) -> the value; else text."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return unquote(text)
    try:
        return json.loads(text)
    except ValueError:
        return text
