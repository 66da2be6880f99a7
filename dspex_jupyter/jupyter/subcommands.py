"""How a ``%dspex`` subcommand declares and parses its arguments, and shows its errors.

Shared by :mod:`.magics` and :mod:`.magics_measure` (each subcommand is a
``_cmd_NAME`` method of the magics class).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import kwds, magic_arguments

from .syntax import MagicSyntaxError

__all__ = ["subcommand", "parse_args", "clean_error"]


def subcommand(
    name: str, *, options: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a ``%dspex NAME ...`` subcommand; its ``@argument`` lines follow.

    The arguments are parsed by IPython's ``magic_arguments`` (argparse) from the
    tokens :func:`~dspex_jupyter.jupyter.syntax.tokenize` made, so quoting stays
    the magics' own. Without ``options`` there are no ``-`` options, so a value
    such as ``-0.5`` or ``-x`` is always a positional value; with ``options``
    the subcommand takes ``--flag VALUE`` options, spelled out in full (no
    abbreviations, so a typo is an error rather than a guess).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = magic_arguments(name=name)(kwds(prefix_chars="-" if options else "\0")(func))
        func.parser.formatter_class = argparse.HelpFormatter  # type: ignore[attr-defined]
        func.parser.allow_abbrev = False  # type: ignore[attr-defined]
        return func

    return decorate


def parse_args(func: Any, tokens: list[str]) -> argparse.Namespace:
    """Parse ``tokens`` with ``func``'s magic_arguments parser; bad usage -> MagicSyntaxError."""
    parser = func.parser
    try:
        return parser.parse_args(tokens)
    except UsageError as exc:
        usage = " ".join(parser.format_usage().removeprefix("usage: ").split())
        raise MagicSyntaxError(f"%dspex {parser.prog}: {exc}", expected=f"%dspex {usage}") from None


def clean_error(exc: BaseException) -> BaseException:
    """Make IPython show ``exc`` as one line (``Type: message``) instead of a traceback.

    IPython renders an exception through its ``_render_traceback_`` when it has
    one; setting it on the instance keeps the exception's type for code that
    catches it (``except ValidationError``) and for ``nbclient``.
    """
    message = f"{type(exc).__name__}: {exc}"
    exc._render_traceback_ = lambda: [message]  # type: ignore[attr-defined]
    return exc
