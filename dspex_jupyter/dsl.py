"""``Program``: the namespace of the DSL (``Program.new``, ``Program.run``, ``Program.evaluate``, ...).

It sits above both the running layer and ``tuning/`` (evaluation and the
tuner), which it fronts, and installs itself as the runner behind
``spec.run(...)`` / ``spec.evaluate(...)`` / ``spec.compile(...)`` (the program layer below cannot
import the context).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .program import ProgramDefinition, ProgramSpec
from .program.spec import use_runner
from .running import RunResult, run_program
from .tuning.evaluate import evaluate_program

__all__ = ["Program"]


class Program:
    """Namespace of the DSL: ``Program.new()``, ``Program.run``, ``Program.from_dict``,
    ``Program.Definition``."""

    Definition = ProgramDefinition
    Spec = ProgramSpec

    def __init__(self) -> None:
        raise TypeError("use Program.new() to start a program spec")

    @staticmethod
    def new(name: str | None = None) -> ProgramSpec:
        """An empty spec; add variables with ``.defvariable`` and modules with ``.chain``."""
        return ProgramSpec(name=name)

    @staticmethod
    def run(spec: Any, inputs: Mapping[str, Any], context: Any = None, **options: Any) -> RunResult:
        """Run ``spec`` (a spec, or a ``Program.Definition``) on ``inputs`` in ``context``.

        ``context`` defaults to :func:`dspex_jupyter.default_context`. See
        :func:`dspex_jupyter.running.runner.run_program`.
        """
        return run_program(spec, inputs, context=context, **options)

    @staticmethod
    def evaluate(
        spec: Any,
        devset: Any,
        metric: Any,
        *,
        context: Any = None,
        num_threads: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        display_progress: bool = True,
        max_errors: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Score ``spec`` on ``devset`` with ``metric``; an ``Evaluation``.

        See :func:`dspex_jupyter.tuning.evaluate.evaluate_program`.
        """
        return evaluate_program(
            spec,
            devset,
            metric,
            context=context,
            num_threads=num_threads,
            overrides=overrides,
            display_progress=display_progress,
            max_errors=max_errors,
            timeout_s=timeout_s,
        )

    @staticmethod
    def compile(
        spec: Any,
        trainset: Any,
        metric: Any,
        *,
        optimizer: str = "bootstrap_fewshot",
        valset: Any = None,
        context: Any = None,
        display_progress: bool = True,
        **options: Any,
    ) -> Any:
        """Compile ``spec`` with a DSPy optimizer in the bridge; a ``Compiled``.

        See :func:`dspex_jupyter.tuning.compile.compile_program`.
        """
        from .tuning.compile import compile_program

        return compile_program(
            spec,
            trainset,
            metric,
            optimizer=optimizer,
            valset=valset,
            context=context,
            display_progress=display_progress,
            **options,
        )

    @staticmethod
    def tune(spec: Any, devset: Any, metric: Any, **options: Any) -> Any:
        """``Tuner(spec, devset, metric, **options).run()``: a ``TuningResult``."""
        from .tuning.tuner import Tuner

        return Tuner(spec, devset, metric, **options).run()

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ProgramSpec:
        """Rebuild a spec from ``spec.to_dict()``."""
        return ProgramSpec.from_dict(data)


use_runner(Program)
