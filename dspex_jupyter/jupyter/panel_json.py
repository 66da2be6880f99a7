"""What the panel's channel sends about one context: variables, runs, a running tuning.

Pure functions of the kernel's state, so a snapshot and a delta say the same
thing. The message shapes are defined in ``docs/panel-protocol.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from ..program.module import json_safe
from ..running.result import usage_detail, usage_line

__all__ = ["variable_json", "run_json", "tuning_json", "TUNER_SOURCE"]

#: the ``source`` of the Tuner's writes (``tuning/tuner.py``), and its lease holders' prefix
TUNER_SOURCE = "tuner"


def variable_json(record: Any, locks: Mapping[str, str]) -> dict:
    return {
        "name": record.name,
        "type": record.type,
        "value": json_safe(record.value),
        "constraints": json_safe(dict(record.constraints)),
        "version": int(record.version),
        "metadata": json_safe(dict(record.metadata)),
        "source": str(record.source),
        "timestamp": float(record.timestamp),
        "lock": locks.get(record.name),
    }


def _with_usage(item: Mapping[str, Any]) -> dict[str, Any]:
    """``item`` plus ``usage_text`` (``"146 tok"``) and ``usage_detail`` (the tooltip),
    from the one formatter every display uses; nothing added when no LM was used."""
    out = dict(item)
    usage = item.get("usage") if isinstance(item.get("usage"), Mapping) else None
    text = usage_line(usage)
    if text:
        out["usage_text"], out["usage_detail"] = text, usage_detail(usage)
    return out


def run_json(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run summary (``RunResult.to_dict()`` or any JSON-safe mapping) for the panel."""
    run = _with_usage(summary)
    trace = run.get("trace")
    if isinstance(trace, list):
        run["trace"] = [_with_usage(e) if isinstance(e, Mapping) else e for e in trace]
    return cast("dict[str, Any]", json_safe(run))


def tuning_json(records: Iterable[Any], locks: Mapping[str, str]) -> dict[str, Any] | None:
    """The tuning this context shows, derived from what the Tuner already publishes.

    The Tuner (floor 6, which must not know the panel) writes each trial's values
    with ``source="tuner"`` and ``{"trial": n, "best_score": best so far}``, holds a lease named
    ``tuner:<study>`` on a bridged context, and writes the best values last with
    ``{"study", "trial", "score"}``. So: a ``tuner:`` lease or a trial write without
    a ``study`` is a running tuning; a write with ``study`` is a finished one.
    """
    tuned = [r for r in records if str(r.source) == TUNER_SOURCE]
    holders = sorted({h for h in locks.values() if str(h).startswith(TUNER_SOURCE + ":")})
    if not tuned and not holders:
        return None
    latest = max(tuned, key=lambda r: (float(r.timestamp), int(r.version)), default=None)
    meta = dict(latest.metadata) if latest is not None else {}
    finished = "study" in meta and not holders
    study = meta.get("study") or (holders[0].split(":", 1)[1] if holders else None)
    score = meta.get("score") if finished else meta.get("best_score")
    trial = meta.get("trial")
    return {
        "state": "done" if finished else "running",
        "study": None if study is None else str(study),
        "trial": trial if isinstance(trial, int) and not isinstance(trial, bool) else None,
        "best_score": float(score) if isinstance(score, (int, float)) else None,
        "variables": sorted(r.name for r in tuned),
    }
