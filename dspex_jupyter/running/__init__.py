"""Running programs in a context: ``Program.run`` and what a run returns.

Importing this package installs ``Program`` as the runner behind
``spec.run(...)`` (the program layer below cannot import the context).
"""

from __future__ import annotations

from ..program.spec import use_runner
from .program import Program
from .result import RunResult, TraceEntry
from .runner import run_program

__all__ = ["Program", "RunResult", "TraceEntry", "run_program"]

use_runner(Program)
