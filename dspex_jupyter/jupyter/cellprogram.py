"""The declarative program syntax of ``%%dspex program NAME`` cells.

One statement per line; blank lines and ``#`` comments (outside quotes) are ignored::

    var NAME TYPE INITIAL [CONSTRAINT=VALUE ...]
    module KIND ["ARG" ...] [OPTION=VALUE ...] [BINDING ...]
    native KIND ["ARG" ...] [OPTION=VALUE ...] [BINDING ...]

``var``
    ``Program.defvariable(NAME, TYPE, initial=INITIAL, constraints={...})``.
    INITIAL is read for TYPE like ``%dspex set`` reads values (``0.7``,
    ``true``, ``gpt-4``, ``"two words"``, ``[0.1, 0.2]``). Constraints are
    JSON values (``min=0``, ``max=2``, ``choices=["a","b"]``) or, for
    choices, a comma list (``choices=gpt-4,claude-3``).
``module``
    a bridged module from :mod:`dspex_jupyter.modules` (``Predict``,
    ``ChainOfThought``, ``ReAct``), e.g. ``module ChainOfThought "question -> answer"``.
``native``
    a native module from :mod:`dspex_jupyter.native` (e.g. ``QueryClassifier``).

For ``module`` and ``native``: quoted tokens are positional constructor
arguments (the signature), ``OPTION=VALUE`` are keyword arguments (JSON or
text, e.g. ``instructions="Be brief"`` or ``name=classify``), and every other
token is a binding: ``VAR`` binds variable ``VAR`` to the parameter of the
same name, ``VAR->PARAM`` binds it to ``PARAM``
(``.bind_to_variable(VAR, as_=PARAM)``). The modules form the chain in the
order written. So::

    var temperature float 0.7 min=0 max=2
    var model choice gpt-4 choices=gpt-4,claude-3
    native QueryClassifier model->llm_model
    module ChainOfThought "question -> answer" temperature

is the same spec as::

    (Program.new()
        .defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
        .defvariable("model", "choice", initial="gpt-4",
                     constraints={"choices": ["gpt-4", "claude-3"]})
        .chain([QueryClassifier().bind_to_variable("model", as_="llm_model"),
                ChainOfThought("question -> answer").bind_to_variable("temperature")]))

Any error names the line and what was expected; nothing is defined then.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import DSPexError
from ..variables.parse import parse
from ..variables.types import TYPE_NAMES, normalize_type
from .syntax import (
    MagicSyntaxError,
    parse_constraint,
    parse_input_value,
    split_key_value,
    tokenize,
    unquote,
)

__all__ = ["parse_program_cell", "SYNTAX_HELP"]

SYNTAX_HELP = __doc__ or ""

_STATEMENTS = "'var', 'module' or 'native'"
_BINDING = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)(?:->([A-Za-z_][A-Za-z0-9_]*))?")
_KINDS = {
    "module": ("dspex_jupyter.modules", "bridged"),
    "native": ("dspex_jupyter.native", "native"),
}


def parse_program_cell(text: str, name: str | None = None) -> Any:
    """Build the program spec a cell describes, through the Program DSL's public API.

    ``name`` names the spec (``Program.new(name)``); ``%%dspex program NAME`` passes NAME.
    """
    from ..dsl import Program

    variables: list[tuple[int, str, str, Any, dict[str, Any]]] = []
    modules: list[Any] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        tokens = tokenize(line, line=number)
        if not tokens:
            continue
        statement, args = tokens[0], tokens[1:]
        if statement == "var":
            variables.append((number, *_parse_var(args, number)))
        elif statement in _KINDS:
            modules.append(_parse_module(statement, args, number))
        else:
            raise MagicSyntaxError(
                f"unknown statement {statement!r}", line=number, expected=_STATEMENTS
            )
    if not modules:
        raise MagicSyntaxError(
            "the program has no modules",
            expected="at least one 'module KIND ...' or 'native KIND ...' line",
        )
    program = Program.new(name)
    for number, var_name, type_name, initial, constraints in variables:
        try:
            program = program.defvariable(
                var_name, type_name, initial=initial, constraints=constraints or None
            )
        except DSPexError as exc:
            raise MagicSyntaxError(f"variable {var_name!r}: {exc}", line=number) from None
    try:
        return program.chain(modules)
    except DSPexError as exc:
        raise MagicSyntaxError(f"the program is not valid: {exc}") from None


def _strip_comment(line: str) -> str:
    """Drop a ``#`` comment that is not inside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def _parse_var(args: list[str], number: int) -> tuple[str, str, Any, dict[str, Any]]:
    if len(args) < 3:
        raise MagicSyntaxError(
            f"'var' needs a name, a type and an initial value, got {len(args)} token(s)",
            line=number,
            expected="var NAME TYPE INITIAL [KEY=VALUE ...]",
        )
    name, type_text, initial_text, rest = args[0], args[1], args[2], args[3:]
    try:
        type_name = normalize_type(type_text)
    except DSPexError:
        raise MagicSyntaxError(
            f"unknown type {type_text!r}", line=number, expected=f"one of {', '.join(TYPE_NAMES)}"
        ) from None
    try:
        initial = parse(type_name, initial_text)
    except DSPexError as exc:
        raise MagicSyntaxError(str(exc), line=number, expected=f"an initial {type_name}") from None
    constraints = {}
    for token in rest:
        key, value = split_key_value(token, line=number, what="a constraint KEY=VALUE")
        constraints[key] = parse_constraint(key, value, line=number)
    return name, type_name, initial, constraints


def _parse_module(statement: str, args: list[str], number: int) -> Any:
    module_path, kind = _KINDS[statement]
    if not args:
        raise MagicSyntaxError(
            f"'{statement}' needs a module type", line=number, expected=f"{statement} KIND ..."
        )
    kind_name = args[0]
    namespace = importlib.import_module(module_path)
    cls = getattr(namespace, kind_name, None)
    if not isinstance(cls, type) or getattr(cls, "kind", None) != kind:
        known = sorted(
            n
            for n, v in vars(namespace).items()
            if isinstance(v, type) and getattr(v, "kind", None) == kind and not n.startswith("_")
        )
        raise MagicSyntaxError(
            f"unknown {kind} module {kind_name!r}",
            line=number,
            expected=f"one of {', '.join(known)}",
        )
    positional: list[Any] = []
    options: dict[str, Any] = {}
    bindings: list[tuple[str, str | None]] = []
    for token in args[1:]:
        if token[:1] in "\"'":
            if options or bindings:
                raise MagicSyntaxError(
                    f"positional argument {token} after options or bindings",
                    line=number,
                    expected="quoted arguments right after the module type",
                )
            positional.append(unquote(token))
        elif "=" in token and "->" not in token:
            key, value = split_key_value(token, line=number, what="an option KEY=VALUE")
            options[key] = parse_input_value(value)
        else:
            match = _BINDING.fullmatch(token)
            if match is None:
                raise MagicSyntaxError(
                    f"cannot read {token!r}",
                    line=number,
                    expected='a "quoted argument", an option KEY=VALUE, or a binding VAR or VAR->PARAM',
                )
            bindings.append((match.group(1), match.group(2)))
    try:
        module = cls(*positional, **options)
        for variable, param in bindings:
            module = module.bind_to_variable(variable, as_=param)
    except (DSPexError, TypeError) as exc:
        raise MagicSyntaxError(f"{kind_name}: {exc}", line=number) from None
    return module
