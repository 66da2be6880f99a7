"""Measuring and tuning programs: datasets, metrics, ``Program.evaluate`` and the ``Tuner``.

Importing this package is cheap: pandas is imported by ``Evaluation.to_pandas``
and Optuna by the ``Tuner`` only when used.
"""

from __future__ import annotations

from typing import Any

from .datasets import Dataset, Example, load_dataset
from .evaluate import evaluate_program
from .evaluation import Comparison, EvalRow, Evaluation
from .metrics import Metric, contains, exact_match, f1

__all__ = [
    "Comparison",
    "Dataset",
    "EvalRow",
    "Evaluation",
    "Example",
    "Metric",
    "Tuner",
    "TuningResult",
    "contains",
    "evaluate_program",
    "exact_match",
    "f1",
    "load_dataset",
]


def __getattr__(name: str) -> Any:  # the Tuner module imports Optuna's types lazily too
    if name in ("Tuner", "TuningResult"):
        from . import tuner

        return getattr(tuner, name)
    raise AttributeError(name)
