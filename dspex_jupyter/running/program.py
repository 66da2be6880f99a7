"""``Program``: the namespace of the DSL (``Program.new``, ``Program.run``, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..program import ProgramDefinition, ProgramSpec
from .result import RunResult
from .runner import run_program

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
    def from_dict(data: Mapping[str, Any]) -> ProgramSpec:
        """Rebuild a spec from ``spec.to_dict()``."""
        return ProgramSpec.from_dict(data)
