"""Native modules (``QueryClassifier``, ``function``), run in the kernel without DSPy.

The public home of the native module classes; they are defined in
:mod:`dspex_jupyter.program.native`.
"""

from .program.native import CATEGORIES, Function, Native, QueryClassifier, classify, function

__all__ = ["QueryClassifier", "Function", "function", "Native", "CATEGORIES", "classify"]
