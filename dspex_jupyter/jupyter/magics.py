"""The ``%dspex`` line magic and the ``%%dspex`` cell magic.

Thin on purpose: each subcommand parses its text, calls the public API
(``Context`` / ``Variables`` / ``Program``) and returns something that
displays well. Errors keep their type (``ValidationError``,
``VariableNotFound``, ``MagicSyntaxError``...) but are shown as one clear line
instead of a traceback through the magic machinery; bad syntax is rejected
before anything is changed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..context import Context, default_context
from ..errors import DSPexError
from ..variables.types import TYPE_NAMES, normalize_type, parse
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

Cell magic:

  %%dspex program NAME                define a program from the cell and store its spec
                                      in the user variable NAME; the cell syntax:

{cell}
Values may use IPython's $var / {{expr}} expansion on the magic line.
"""


def _help() -> str:
    from .cellprogram import SYNTAX_HELP

    cell = "\n".join("      " + line if line else "" for line in SYNTAX_HELP.splitlines())
    return HELP.format(types=", ".join(TYPE_NAMES), cell=cell)


def _clean_error(exc: BaseException) -> BaseException:
    """Make IPython show ``exc`` as one line (``Type: message``) instead of a traceback.

    IPython renders an exception through its ``_render_traceback_`` when it has
    one; setting it on the instance keeps the exception's type for code that
    catches it (``except ValidationError``) and for ``nbclient``.
    """
    message = f"{type(exc).__name__}: {exc}"
    exc._render_traceback_ = lambda: [message]  # type: ignore[attr-defined]
    return exc


@magics_class
class DSPexMagics(Magics):
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
            raise _clean_error(exc) from None

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
        handler: Callable[[list[str]], Any] | None = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise MagicSyntaxError(
                f"unknown subcommand {command!r}",
                expected="one of " + ", ".join(self._subcommands()) + " (see %dspex?)",
            )
        return handler(args)

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

    @staticmethod
    def _arity(command: str, args: list[str], low: int, high: int | None, usage: str) -> None:
        if len(args) < low or (high is not None and len(args) > high):
            raise MagicSyntaxError(
                f"%dspex {command} takes {_count(low, high)}, got {len(args)}",
                expected=f"%dspex {usage}",
            )

    # ------------------------------------------------------------------ context

    def _cmd_context(self, args: list[str]) -> Any:
        from .display import ContextInfo

        action = args[0] if args else "info"
        rest = args[1:]
        if action == "info":
            self._arity("context info", rest, 0, 0, "context info")
            return ContextInfo(self.context)
        if action == "new":
            name = None
            options: dict[str, Any] = {}
            lm: dict[str, Any] = {}
            for token in rest:
                if token.startswith("lm.") and "=" in token:
                    key, value = split_key_value(token[3:], what="an LM option lm.KEY=VALUE")
                    lm[key] = parse_input_value(value)
                elif "=" in token:
                    key, value = split_key_value(token, what="an option KEY=VALUE")
                    options[key] = unquote(value)
                elif name is None:
                    name = unquote(token)
                else:
                    raise MagicSyntaxError(
                        f"unexpected {token!r}",
                        expected="%dspex context new [NAME] [backend=bridged] [bridge=ADDRESS] ...",
                    )
            allowed = {"backend", "bridge", "token", "session_id", "store"}
            unknown = set(options) - allowed
            if unknown:
                raise MagicSyntaxError(
                    f"unknown option(s) {', '.join(sorted(unknown))}",
                    expected="options among " + ", ".join(sorted(allowed)),
                )
            if lm:
                options["lm"] = lm
            self._context = Context.start(name=name, **options)
            return self._context
        if action == "use":
            self._arity("context use", rest, 1, 1, "context use VAR")
            found = self._namespace.get(rest[0])
            if not isinstance(found, Context):
                raise MagicSyntaxError(
                    f"{rest[0]!r} is not a Context in the user namespace",
                    expected="the name of a variable holding a dspex_jupyter.Context",
                )
            self._context = found
            return ContextInfo(found)
        if action == "bridge":
            self._arity("context bridge", rest, 0, 0, "context bridge")
            self.context.ensure_bridged()
            return ContextInfo(self.context)
        if action == "stop":
            self._arity("context stop", rest, 0, 0, "context stop")
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

    def _cmd_vars(self, args: list[str]) -> Any:
        self._arity("vars", args, 0, 0, "vars")
        return self.context.widgets()

    def _cmd_get(self, args: list[str]) -> Any:
        self._arity("get", args, 1, 1, "get NAME")
        return self.context.get(args[0])

    def _cmd_set(self, args: list[str]) -> None:
        if len(args) < 2:
            raise MagicSyntaxError(
                f"%dspex set takes a name and a value, got {len(args)} token(s)",
                expected="%dspex set NAME VALUE",
            )
        name, text = args[0], " ".join(args[1:])
        ctx = self.context
        record = ctx.variable(name)  # VariableNotFound (with a hint) before parsing
        value = parse(record.type, text)
        new = ctx.set(name, value, source="magic")
        print(f"{name} = {new.value!r} (v{new.version})")

    def _cmd_def(self, args: list[str]) -> None:
        if len(args) < 3:
            raise MagicSyntaxError(
                f"%dspex def takes a name, a type and an initial value, got {len(args)} token(s)",
                expected="%dspex def NAME TYPE INITIAL [KEY=VALUE ...]",
            )
        name, type_text, initial_text = args[:3]
        try:
            type_name = normalize_type(type_text)
        except DSPexError:
            raise MagicSyntaxError(
                f"unknown type {type_text!r}", expected=f"one of {', '.join(TYPE_NAMES)}"
            ) from None
        constraints = {}
        for token in args[3:]:
            key, value = split_key_value(token, what="a constraint KEY=VALUE")
            constraints[key] = parse_constraint(key, value)
        initial = parse(type_name, initial_text)
        record = self.context.defvariable(
            name, type_name, initial=initial, constraints=constraints or None, source="magic"
        )
        print(f"{name}: {record.type} = {record.value!r} (v{record.version})")

    def _cmd_delete(self, args: list[str]) -> None:
        self._arity("delete", args, 1, 1, "delete NAME")
        self.context.delete(args[0], source="magic")
        print(f"deleted {args[0]}")

    def _cmd_watch(self, args: list[str]) -> Any:
        from .display import WatchLog

        log = WatchLog(self.context, list(args) or None)
        self._watches.append(log)
        return log

    def _cmd_unwatch(self, args: list[str]) -> None:
        self._arity("unwatch", args, 0, 0, "unwatch")
        while self._watches:
            self._watches.pop().stop()

    def _cmd_history(self, args: list[str]) -> Any:
        from .display import HistoryView

        self._arity("history", args, 1, 2, "history NAME [LIMIT]")
        limit = None
        if len(args) == 2:
            if not args[1].isdigit():
                raise MagicSyntaxError(f"LIMIT {args[1]!r} is not a number", expected="an int")
            limit = int(args[1])
        return HistoryView(args[0], self.context.history(args[0], limit))

    # ------------------------------------------------------------------ programs

    def _cmd_run(self, args: list[str]) -> Any:
        if not args:
            raise MagicSyntaxError(
                "%dspex run needs a program", expected="%dspex run PROGRAM [KEY=VALUE ...]"
            )
        name = args[0]
        inputs = {}
        for token in args[1:]:
            key, value = split_key_value(token, what="an input KEY=VALUE")
            inputs[key] = parse_input_value(value)
        if name not in self._namespace:
            raise MagicSyntaxError(
                f"no program named {name!r} in the user namespace",
                expected="a variable holding a program spec (e.g. from %%dspex program NAME)",
            )
        spec = _as_spec(self._namespace[name], name)
        from ..running import Program
        from .display import RunResultView

        result = Program.run(spec, inputs, context=self.context)
        return RunResultView(result, name)


def _as_spec(value: Any, name: str) -> Any:
    """Check that ``value`` is something ``Program.run`` accepts (a spec or a Definition)."""
    if hasattr(value, "to_dict") or callable(getattr(value, "build", None)):
        return value
    raise MagicSyntaxError(
        f"{name!r} is a {type(value).__name__}, not a program",
        expected="a program spec, a Program.Definition or its class",
    )


def _count(low: int, high: int | None) -> str:
    if high == low:
        return f"{low} argument{'s' if low != 1 else ''}" if low else "no arguments"
    if high is None:
        return f"at least {low} arguments"
    return f"{low} to {high} arguments"
