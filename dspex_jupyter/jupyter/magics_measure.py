"""``%dspex eval``, ``%dspex tune`` and ``%dspex lm``: measuring programs from one line.

PROGRAM and DATA name user variables (DATA may also be a ``.jsonl``/``.csv``
path); ``--metric`` is a built-in metric name or a user variable holding a
``metric(example, outputs)`` function. Every argument is checked before
anything runs: a bad one is a ``MagicSyntaxError`` (or the ``ValidationError``
of ``Program.evaluate`` / ``Tuner``) and changes nothing. The subcommands
return the ``Evaluation`` / ``TuningResult`` itself, which displays as an
HTML table, so ``ev = _`` keeps it for code.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument

from .subcommands import subcommand
from .syntax import MagicSyntaxError, unquote

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["MeasureMagics", "user_program"]

_SAMPLERS = ("tpe", "random", "grid")


def user_program(namespace: dict[str, Any], name: str) -> Any:
    """The program in user variable ``name``: a spec, a ``Program.Definition`` or its class."""
    if name not in namespace:
        raise MagicSyntaxError(
            f"no program named {name!r} in the user namespace",
            expected="a variable holding a program spec (e.g. from %%dspex program NAME)",
        )
    value = namespace[name]
    if hasattr(value, "to_dict") or callable(getattr(value, "build", None)):
        return value
    raise MagicSyntaxError(
        f"{name!r} is a {type(value).__name__}, not a program",
        expected="a program spec, a Program.Definition or its class",
    )


def _devset(namespace: dict[str, Any], token: str) -> Any:
    """A user variable's value, else a path (``load_dataset`` reads and checks it)."""
    text = unquote(token)
    if text.isidentifier() and text in namespace:
        return namespace[text]
    if os.path.exists(text) or text.lower().endswith((".jsonl", ".csv")):
        return text
    raise MagicSyntaxError(
        f"no devset named {text!r} in the user namespace, and no file {text!r}",
        expected="a variable holding a devset (a list of dicts or dspy.Examples, a "
        "DataFrame) or a .jsonl/.csv path",
    )


def _metric(namespace: dict[str, Any], token: str, field: str | None) -> Any:
    from ..tuning.metrics import BUILTINS, resolve_metric

    name = unquote(token)
    if name in BUILTINS:
        return resolve_metric(name, field)
    value = namespace.get(name) if name.isidentifier() else None
    if callable(value):
        if field is not None:
            raise MagicSyntaxError(
                f"--field applies to the built-in metrics, not to {name!r}",
                expected="--field with exact_match, contains or f1",
            )
        return value
    raise MagicSyntaxError(
        f"unknown metric {name!r}",
        expected=f"one of {', '.join(sorted(BUILTINS))}, or the name of a user variable "
        "holding a metric(example, outputs) function",
    )


def _storage(url: str | None) -> str | None:
    """Check an Optuna RDB storage URL before the tuner creates anything with it."""
    if url is None:
        return None
    url = unquote(url)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise MagicSyntaxError(
            f"--storage {url!r} is not a usable database URL ({exc})",
            expected="an Optuna storage URL such as sqlite:///tune.db or postgresql://...",
        ) from None
    return url


class MeasureMagics:
    """The measuring subcommands of :class:`~.magics.DSPexMagics` (a mixin)."""

    if TYPE_CHECKING:

        @property
        def _namespace(self) -> dict[str, Any]: ...

        @property
        def context(self) -> Context: ...

    def _measured(self, args: argparse.Namespace) -> tuple[Any, Any, Any]:
        namespace = self._namespace
        program = user_program(namespace, unquote(args.program))
        return (
            program,
            _devset(namespace, args.data),
            _metric(namespace, args.metric, args.field and unquote(args.field)),
        )

    @subcommand("eval", options=True)
    @argument("program", metavar="PROGRAM")
    @argument("data", metavar="DATA")
    @argument("--metric", required=True, metavar="NAME")
    @argument("--field", metavar="FIELD", help="the output a built-in metric compares")
    @argument("--threads", type=int, metavar="N", help="examples in flight")
    def _cmd_eval(self, args: argparse.Namespace) -> Any:
        from ..dsl import Program

        program, devset, metric = self._measured(args)
        return Program.evaluate(
            program, devset, metric, context=self.context, num_threads=args.threads
        )

    @subcommand("tune", options=True)
    @argument("program", metavar="PROGRAM")
    @argument("data", metavar="DATA")
    @argument("--metric", required=True, metavar="NAME")
    @argument("--field", metavar="FIELD", help="the output a built-in metric compares")
    @argument("--trials", type=int, default=20, metavar="N")
    @argument("--sampler", choices=_SAMPLERS, default="tpe")
    @argument("--storage", metavar="URL")
    @argument("--study", metavar="NAME")
    @argument("--seed", type=int, metavar="N")
    @argument("--threads", type=int, metavar="N", help="examples in flight")
    def _cmd_tune(self, args: argparse.Namespace) -> Any:
        from ..tuning.tuner import Tuner

        program, devset, metric = self._measured(args)
        tuner = Tuner(
            program,
            devset,
            metric,
            context=self.context,
            sampler=args.sampler,
            n_trials=args.trials,
            storage=_storage(args.storage),
            study_name=args.study and unquote(args.study),
            seed=args.seed,
            num_threads=args.threads,
        )
        return tuner.run()

    @subcommand("lm")
    def _cmd_lm(self, args: argparse.Namespace) -> Any:
        from .display import LMInfo

        return LMInfo(self.context.lm_info())
