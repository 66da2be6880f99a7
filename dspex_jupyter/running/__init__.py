"""Running programs in a context: ``run_program`` and what a run returns.

``Program`` (the DSL's namespace, ``dspex_jupyter.dsl``) fronts this layer
and the evaluation/tuning layer above it.
"""

from __future__ import annotations

from .result import RunResult, TraceEntry
from .runner import run_program

__all__ = ["RunResult", "TraceEntry", "run_program"]
