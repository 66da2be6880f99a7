"""Bridged modules (DSPy's ``Predict``, ``ChainOfThought``, ``ReAct``), run out of process.

The public home of the bridged module classes; they are defined, with what
each bindable parameter means, in :mod:`dspex_jupyter.program.bridged`.
"""

from .program.bridged import LM_PARAMS, ChainOfThought, Predict, ReAct, tool_path

__all__ = ["Predict", "ChainOfThought", "ReAct", "LM_PARAMS", "tool_path"]
