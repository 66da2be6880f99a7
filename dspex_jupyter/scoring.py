"""The built-in metric functions, pure and dependency-free (floor 1).

Both the kernel (``tuning/metrics.py`` re-exports these) and a bridge worker
compiling a program (``bridge/compile_worker.py``) score with them, so a metric
named ``"exact_match"`` means the same thing on both sides:

* ``"exact_match"``: equal after :func:`normalize` (text, case-folded,
  stripped, whitespace runs collapsed).
* ``"contains"``: the normalized expected text occurs in the normalized output.
* ``"f1"``: token F1 (SQuAD style) over the lowercase word tokens (``\\w+``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["BUILTINS", "normalize", "exact", "contains", "f1"]

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(value: Any) -> str:
    """Text for comparison: ``str(value)``, case-folded, stripped, whitespace collapsed."""
    return " ".join(str(value).casefold().split())


def exact(expected: Any, output: Any) -> float:
    return float(normalize(expected) == normalize(output))


def contains(expected: Any, output: Any) -> float:
    return float(normalize(expected) in normalize(output))


def f1(expected: Any, output: Any) -> float:
    gold = _WORD.findall(str(expected).casefold())
    pred = _WORD.findall(str(output).casefold())
    if not gold or not pred:
        return float(gold == pred)
    common = sum((Counter(gold) & Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


BUILTINS: dict[str, Callable[[Any, Any], float]] = {
    "exact_match": exact,
    "contains": contains,
    "f1": f1,
}
