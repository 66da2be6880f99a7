"""What a run returns: ``RunResult`` and one ``TraceEntry`` per module."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast

from ..program.module import json_safe

__all__ = ["RunResult", "TraceEntry"]


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

    def __repr__(self) -> str:
        steps = " -> ".join(f"{e.name}" for e in self.trace)
        return (
            f"<RunResult {self.status} {self.latency_ms:.1f} ms [{steps}] "
            f"outputs={sorted(self.outputs)}>"
        )
