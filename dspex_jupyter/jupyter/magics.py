"""The ``%dspex`` line magic and the ``%%dspex`` cell magic.

Thin on purpose: each subcommand parses its text, calls the public API
(``Context`` / ``Variables`` / ``Program``) and returns something that
displays well. Errors keep their type (``ValidationError``,
``VariableNotFound``, ``MagicSyntaxError``...) but are shown as one clear line
instead of a traceback through the magic machinery; bad syntax is rejected
before anything is changed.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument

from ..context import Context, default_context
from ..errors import DSPexError
from ..variables.parse import parse
from ..variables.types import TYPE_NAMES, normalize_type
from .magics_measure import MeasureMagics, user_program
from .subcommands import clean_error, parse_args, subcommand
from .syntax import (
    MagicSyntaxError,
    parse_constraint,
    parse_input_value,
    split_key_value,
    tokenize,
    unquote,
)

__all__ = ["DSPexMagics", "HELP"]

HELP = """\
%dspex — variables, contexts and programs of dspex-jupyter.

Line magic (%dspex SUBCOMMAND ...):

  %dspex                              this help
  %dspex context [info]               the current context: backend, session, variables
  %dspex context new [NAME] [OPT=VALUE ...]
                                      start a new context and make it current; options as
                                      for Context.start: backend=bridged, bridge=HOST:PORT,
                                      token=..., session_id=..., and LM options as
                                      lm.model=..., lm.api_base=... (keep API keys in
                                      DSPEX_LM_API_KEY, not in the notebook); returns
                                      the Context
  %dspex context use VAR              make the Context in user variable VAR current
  %dspex context bridge               upgrade the current context to the bridged backend
  %dspex context stop                 stop the current context (the magics then use the
                                      kernel's default context)
  %dspex vars                         the variables as widgets (sliders, dropdowns, ...)
  %dspex get NAME                     the value of NAME
  %dspex set NAME VALUE               set NAME; VALUE is read for NAME's type
                                      (0.9, 3, true, gpt-4, "two words", [0.1, 0.2])
  %dspex def NAME TYPE INITIAL [KEY=VALUE ...]
                                      define a variable; TYPE is one of {types};
                                      constraints as min=0 max=2, choices=a,b or
                                      choices=["a","b"], pattern=..., ...
  %dspex delete NAME                  delete a variable
  %dspex watch [NAME ...]             show changes live (all variables if no name);
                                      returns a log with .lines and .stop()
  %dspex unwatch                      stop every watch started by %dspex watch
  %dspex history NAME [LIMIT]         past versions of NAME (bridged backend)
  %dspex run PROGRAM [KEY=VALUE ...]  run the program in user variable PROGRAM (a spec,
                                      a Program.Definition or its class) with these
                                      inputs; "quoted" values are text, JSON values
                                      (3, true, [1,2]) are data, anything else is text
  %dspex eval PROGRAM DATA --metric NAME [--threads N]
                                      score PROGRAM on DATA: a devset in a user variable
                                      (a list of dicts or dspy.Examples, a DataFrame) or a
                                      .jsonl/.csv path; NAME is exact_match, contains, f1
                                      or a metric(example, outputs) function in a user
                                      variable; N examples in flight; returns the Evaluation
  %dspex tune PROGRAM DATA --metric NAME [--trials N] [--sampler tpe|random|grid]
              [--storage URL] [--study NAME] [--seed N] [--threads N]
                                      tune the variables PROGRAM binds with Optuna (N
                                      trials, default 20; a grid needs float variables
                                      with a step); --storage (sqlite:///tune.db,
                                      postgresql://...) and --study let several kernels
                                      share one study; the variables end at the best
                                      values; returns the TuningResult
  %dspex lm                           which LM bridged modules run on: the configured
                                      provider, or the embedded model (its file, load
                                      time, parallel slots)

Cell magic:

  %%dspex program NAME                define a program from the cell and store its spec
                                      in the user variable NAME; the cell syntax:

{cell}
Values may use IPython's $var / {{expr}} expansion on the magic line.
"""


def _help() -> str:
    from .cellprogram import SYNTAX_HELP

    cell = "\n".join("      " + line if line else "" for line in _plain(SYNTAX_HELP).splitlines())
    return HELP.format(types=", ".join(TYPE_NAMES), cell=cell)


def _plain(text: str) -> str:
    """reST markup (``code``, :mod:`x`, a trailing ``::``) as plain text, for ``%dspex?``."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.M)


@magics_class
class DSPexMagics(MeasureMagics, Magics):
    """The ``%dspex`` magics. One instance per shell; it remembers the current context."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._context: Context | None = None
        self._watches: list[Any] = []

    @property
    def _namespace(self) -> dict[str, Any]:
        """The user's namespace, where ``%dspex load`` puts specs and ``run`` finds them."""
        if self.shell is None:
            raise RuntimeError("the %dspex magics need an IPython shell")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    # ------------------------------------------------------------------ the magic

    @line_cell_magic
    def dspex(self, line: str = "", cell: str | None = None) -> Any:
        try:
            if cell is not None:
                return self._cell(line, cell)
            return self._line(line)
        except DSPexError as exc:
            raise clean_error(exc) from None

    # The docstring is the help IPython shows for ``%dspex?``.
    dspex.__doc__ = _help()

    @property
    def context(self) -> Context:
        """The context the magics act on: the last ``context new``/``use``, else the default."""
        if self._context is not None and not self._context.closed:
            return self._context
        return default_context()

    # ------------------------------------------------------------------ dispatch

    def _line(self, line: str) -> Any:
        tokens = tokenize(line)
        if not tokens:
            print(_help())
            return None
        command, args = tokens[0], tokens[1:]
        handler: Callable[[argparse.Namespace], Any] | None = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise MagicSyntaxError(
                f"unknown subcommand {command!r}",
                expected="one of " + ", ".join(self._subcommands()) + " (see %dspex?)",
            )
        return handler(parse_args(handler, args))

    def _subcommands(self) -> list[str]:
        return [name[5:] for name, _ in inspect.getmembers(self) if name.startswith("_cmd_")]

    def _cell(self, line: str, cell: str) -> Any:
        tokens = tokenize(line)
        if len(tokens) != 2 or tokens[0] != "program" or not tokens[1].isidentifier():
            raise MagicSyntaxError(
                f"cannot read %%dspex {line.strip()!r}",
                expected="%%dspex program NAME (NAME a Python identifier)",
            )
        from .cellprogram import parse_program_cell

        spec = parse_program_cell(cell, name=tokens[1])
        self._namespace[tokens[1]] = spec
        data = spec.to_dict()
        chain = " -> ".join(m.get("name") or m.get("type", "?") for m in data.get("modules", []))
        count = len(data.get("variables", []))
        print(f"{tokens[1]}: {count} variable{'s' if count != 1 else ''}; {chain}")
        return None

    # ------------------------------------------------------------------ context

    @subcommand("context")
    @argument("action", nargs="?", default="info", metavar="ACTION")
    @argument("rest", nargs="*", metavar="ARG")
    def _cmd_context(self, args: argparse.Namespace) -> Any:
        from .display import ContextInfo

        action, rest = args.action, args.rest
        if action in ("info", "bridge", "stop") and rest:
            raise MagicSyntaxError(
                f"%dspex context {action} takes no arguments, got {len(rest)}",
                expected=f"%dspex context {action}",
            )
        if action == "info":
            return ContextInfo(self.context)
        if action == "new":
            self._context = Context.start(**_context_options(rest))
            return self._context
        if action == "use":
            if len(rest) != 1:
                raise MagicSyntaxError(
                    f"%dspex context use takes 1 argument, got {len(rest)}",
                    expected="%dspex context use VAR",
                )
            found = self._namespace.get(rest[0])
            if not isinstance(found, Context):
                raise MagicSyntaxError(
                    f"{rest[0]!r} is not a Context in the user namespace",
                    expected="the name of a variable holding a dspex_jupyter.Context",
                )
            self._context = found
            return ContextInfo(found)
        if action == "bridge":
            self.context.ensure_bridged()
            return ContextInfo(self.context)
        if action == "stop":
            ctx = self.context
            ctx.stop()
            if ctx is self._context:
                self._context = None
            print(f"stopped {ctx.name}; the magics now use the default context")
            return None
        raise MagicSyntaxError(
            f"unknown context action {action!r}", expected="info, new, use, bridge or stop"
        )

    # ------------------------------------------------------------------ variables

    @subcommand("vars")
    def _cmd_vars(self, args: argparse.Namespace) -> Any:
        return self.context.widgets()

    @subcommand("get")
    @argument("name", metavar="NAME")
    def _cmd_get(self, args: argparse.Namespace) -> Any:
        return self.context.get(args.name)

    @subcommand("set")
    @argument("name", metavar="NAME")
    @argument("value", nargs="+", metavar="VALUE")
    def _cmd_set(self, args: argparse.Namespace) -> None:
        name, text = args.name, " ".join(args.value)
        ctx = self.context
        record = ctx.variable(name)  # VariableNotFound (with a hint) before parsing
        value = parse(record.type, text)
        new = ctx.set(name, value, source="magic")
        print(f"{name} = {new.value!r} (v{new.version})")

    @subcommand("def")
    @argument("name", metavar="NAME")
    @argument("type", metavar="TYPE")
    @argument("initial", metavar="INITIAL")
    @argument("constraints", nargs="*", metavar="KEY=VALUE")
    def _cmd_def(self, args: argparse.Namespace) -> None:
        try:
            type_name = normalize_type(args.type)
        except DSPexError:
            raise MagicSyntaxError(
                f"unknown type {args.type!r}", expected=f"one of {', '.join(TYPE_NAMES)}"
            ) from None
        constraints = {}
        for token in args.constraints:
            key, value = split_key_value(token, what="a constraint KEY=VALUE")
            constraints[key] = parse_constraint(key, value)
        initial = parse(type_name, args.initial)
        record = self.context.defvariable(
            args.name, type_name, initial=initial, constraints=constraints or None, source="magic"
        )
        print(f"{args.name}: {record.type} = {record.value!r} (v{record.version})")

    @subcommand("delete")
    @argument("name", metavar="NAME")
    def _cmd_delete(self, args: argparse.Namespace) -> None:
        self.context.delete(args.name, source="magic")
        print(f"deleted {args.name}")

    @subcommand("watch")
    @argument("names", nargs="*", metavar="NAME")
    def _cmd_watch(self, args: argparse.Namespace) -> Any:
        from .display import WatchLog

        log = WatchLog(self.context, list(args.names) or None)
        self._watches.append(log)
        return log

    @subcommand("unwatch")
    def _cmd_unwatch(self, args: argparse.Namespace) -> None:
        while self._watches:
            self._watches.pop().stop()

    @subcommand("history")
    @argument("name", metavar="NAME")
    @argument("limit", nargs="?", type=int, metavar="LIMIT")
    def _cmd_history(self, args: argparse.Namespace) -> Any:
        from .display import HistoryView

        return HistoryView(args.name, self.context.history(args.name, args.limit))

    # ------------------------------------------------------------------ programs

    @subcommand("run")
    @argument("program", metavar="PROGRAM")
    @argument("inputs", nargs="*", metavar="KEY=VALUE")
    def _cmd_run(self, args: argparse.Namespace) -> Any:
        name = args.program
        inputs = {}
        for token in args.inputs:
            key, value = split_key_value(token, what="an input KEY=VALUE")
            inputs[key] = parse_input_value(value)
        spec = user_program(self._namespace, name)
        from ..dsl import Program
        from .display import RunResultView

        result = Program.run(spec, inputs, context=self.context)
        return RunResultView(result, name)


_CONTEXT_OPTIONS = {"backend", "bridge", "token", "session_id", "store"}


def _context_options(tokens: list[str]) -> dict[str, Any]:
    """``[NAME] [OPT=VALUE ...] [lm.KEY=VALUE ...]`` as keyword arguments of ``Context.start``."""
    options: dict[str, Any] = {"name": None}
    lm: dict[str, Any] = {}
    for token in tokens:
        if token.startswith("lm.") and "=" in token:
            key, value = split_key_value(token[3:], what="an LM option lm.KEY=VALUE")
            lm[key] = parse_input_value(value)
        elif "=" in token:
            key, value = split_key_value(token, what="an option KEY=VALUE")
            if key not in _CONTEXT_OPTIONS:
                raise MagicSyntaxError(
                    f"unknown option(s) {key}",
                    expected="options among " + ", ".join(sorted(_CONTEXT_OPTIONS)),
                )
            options[key] = unquote(value)
        elif options["name"] is None:
            options["name"] = unquote(token)
        else:
            raise MagicSyntaxError(
                f"unexpected {token!r}",
                expected="%dspex context new [NAME] [backend=bridged] [bridge=ADDRESS] ...",
            )
    if lm:
        options["lm"] = lm
    return options
