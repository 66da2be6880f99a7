"""Bridged modules (DSPy's ``Predict``, ``ChainOfThought``, ``ReAct``, and ``Custom`` for a
notebook's own ``dspy.Module``), run out of process.

The public home of the bridged module classes; they are defined, with what
each bindable parameter means, in :mod:`dspex_jupyter.program.bridged` and
:mod:`dspex_jupyter.program.custom`.
"""

from .program.bridged import LM_PARAMS, ChainOfThought, Predict, ReAct, tool_path
from .program.custom import Custom

__all__ = ["Predict", "ChainOfThought", "ReAct", "Custom", "LM_PARAMS", "tool_path"]
