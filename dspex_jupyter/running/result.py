"""What a run returns: ``RunResult`` and one ``TraceEntry`` per module.

Also the one compact LM-usage formatter (:func:`usage_line`, :func:`usage_detail`)
that the panel, the magics and every display use, so a run's usage reads the
same everywhere: ``146 tok · 2 calls``, with zero and null counters left out.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast

from ..program.module import json_safe

__all__ = ["RunResult", "TraceEntry", "usage_line", "usage_detail"]

_COUNTERS = (
    ("prompt_tokens", "prompt"),
    ("completion_tokens", "completion"),
    ("total_tokens", "total"),
    ("calls", "calls"),
)


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _total(usage: Mapping[str, Any]) -> int:
    total = _count(usage.get("total_tokens"))
    return total or _count(usage.get("prompt_tokens")) + _count(usage.get("completion_tokens"))


def usage_line(usage: Mapping[str, Any] | None) -> str:
    """``"146 tok"`` (``"146 tok · 2 calls"`` past one call); ``""`` when no LM was used."""
    if not usage:
        return ""
    tokens, calls = _total(usage), _count(usage.get("calls"))
    if not tokens and not calls:
        return ""
    line = f"{tokens} tok"
    return line + (f" · {calls} calls" if calls > 1 else "")


def usage_detail(usage: Mapping[str, Any] | None) -> str:
    """Every non-zero counter, one per line (the tooltip behind :func:`usage_line`):
    prompt/completion/total tokens, calls, then per model when there are several."""
    if not usage:
        return ""
    lines = [
        f"{label}: {_count(usage.get(key))}" for key, label in _COUNTERS if _count(usage.get(key))
    ]
    by_model = usage.get("by_model")
    if isinstance(by_model, Mapping):
        for model, counts in by_model.items():
            line = usage_line(counts) if isinstance(counts, Mapping) else ""
            if line:
                lines.append(f"{model}: {line}")
    return "\n".join(lines)


def _esc(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "\u2026")


def _rows(values: Mapping[str, Any]) -> str:
    return "".join(
        f"<tr><th style='text-align:left;padding:1px 8px 1px 0'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{_esc(v)}</td></tr>"
        for k, v in values.items()
    )


@dataclass(frozen=True)
class TraceEntry(Mapping[str, Any]):
    """What one module did in one run. Attribute access, or ``entry["outputs"]``.

    ``variables`` maps each bound variable to ``{"param", "version", "value"}``:
    the version of the variable this module read (when it started executing).
    ``usage`` is the LM usage of a bridged module (``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``calls``), ``None`` for native
    ones. ``lm`` is the LM a bridged module used (``model``, ``temperature``,
    ``max_tokens``, ``model_source``), never its API key. ``local_lm`` is set on
    the one module run that loaded the embedded model (``file``, ``load_s``,
    ``n_parallel``), so its load time is reported once; ``None`` elsewhere.
    """

    index: int
    name: str
    type: str
    kind: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    bindings: dict[str, str]
    variables: dict[str, dict[str, Any]]
    latency_ms: float
    usage: dict[str, Any] | None = None
    lm: dict[str, Any] | None = None
    status: str = "ok"
    error: str | None = None
    local_lm: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @property
    def versions(self) -> dict[str, int]:
        """``{variable: version}`` read by this module."""
        return {name: used["version"] for name, used in self.variables.items()}

    def to_dict(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json_safe({n: getattr(self, n) for n in self._names()}))

    def __repr__(self) -> str:
        used = ", ".join(f"{k}@v{v['version']}" for k, v in self.variables.items())
        return (
            f"<{self.kind} {self.name} {self.status} {self.latency_ms:.1f} ms"
            f"{' vars ' + used if used else ''} -> {sorted(self.outputs)}>"
        )


@dataclass(frozen=True)
class RunResult:
    """The result of ``Program.run``: ``outputs`` (everything the modules produced,
    later modules overriding earlier ones), ``values`` (inputs and outputs), and
    ``trace`` (one :class:`TraceEntry` per module, in order)."""

    run_id: str
    program: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    trace: tuple[TraceEntry, ...]
    latency_ms: float
    backend: str
    started_at: float
    status: str = "ok"
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """``result["answer"]`` is ``result.outputs["answer"]``."""
        return self.outputs[key]

    @property
    def local_lm(self) -> dict[str, Any] | None:
        """What loading the embedded model took (``file``, ``load_s``, ``n_parallel``), if
        this run loaded it; ``None`` for every other run."""
        return next((e.local_lm for e in self.trace if e.local_lm), None)

    @property
    def usage(self) -> dict[str, int]:
        """LM usage summed over the run's bridged modules."""
        total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
        for entry in self.trace:
            for key in total:
                total[key] += int((entry.usage or {}).get(key) or 0)
        return total

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe summary given to ``Context.record_run`` (no API keys in it)."""
        return cast(
            "dict[str, Any]",
            json_safe(
                {
                    "run_id": self.run_id,
                    "program": self.program,
                    "status": self.status,
                    "error": self.error,
                    "backend": self.backend,
                    "started_at": self.started_at,
                    "latency_ms": self.latency_ms,
                    "inputs": self.inputs,
                    "outputs": self.outputs,
                    "usage": self.usage,
                    "trace": [e.to_dict() for e in self.trace],
                    **({"local_lm": self.local_lm} if self.local_lm else {}),
                }
            ),
        )

    def summary_line(self) -> str:
        """``status · latency · backend · usage``: the one-line header of every display."""
        parts = [self.status, f"{self.latency_ms:.1f} ms", self.backend, usage_line(self.usage)]
        return " · ".join(p for p in parts if p)

    def _repr_html_(self) -> str:
        """The outputs first, then the trace (collapsed): one row per module."""
        title = html.escape(self.program or "run")
        error = f"<div style='color:#b00020'>error: {_esc(self.error)}</div>" if self.error else ""
        trace = "".join(
            f"<tr><td>{html.escape(e.name)}</td><td>{html.escape(e.kind)}</td>"
            f"<td>{e.latency_ms:.1f} ms</td>"
            f"<td title='{html.escape(usage_detail(e.usage))}'>{html.escape(usage_line(e.usage))}</td>"
            f"<td>{html.escape(', '.join(f'{k}@v{v}' for k, v in e.versions.items()))}</td>"
            f"<td>{_esc(e.outputs)}</td></tr>"
            for e in self.trace
        )
        head = "".join(
            f"<th style='text-align:left'>{h}</th>"
            for h in ("module", "kind", "latency", "LM", "variables", "outputs")
        )
        n = len(self.trace)
        return (
            f"<div class='dspex-run-result'><b>{title}</b> · "
            f"<span title='{html.escape(usage_detail(self.usage))}'>"
            f"{html.escape(self.summary_line())}</span>{error}"
            f"<table>{_rows(self.outputs)}</table>"
            f"<details><summary>trace ({n} module{'s' if n != 1 else ''})</summary>"
            f"<table><tr>{head}</tr>{trace}</table></details></div>"
        )

    def __repr__(self) -> str:
        steps = " -> ".join(f"{e.name}" for e in self.trace)
        return (
            f"<RunResult {self.status} {self.latency_ms:.1f} ms [{steps}] "
            f"outputs={sorted(self.outputs)}>"
        )
