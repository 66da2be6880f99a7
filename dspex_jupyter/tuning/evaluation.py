"""``Evaluation``: what ``Program.evaluate`` returns (a score, one row per example, usage)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Evaluation", "EvalRow", "Comparison"]

_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "calls")


@dataclass(frozen=True)
class EvalRow:
    """One example's run. ``status``: ``ok``, ``error`` (the run or the metric failed),
    ``timeout`` (still running after ``timeout_s``), ``cancelled`` (interrupted)."""

    index: int
    inputs: dict[str, Any]
    expected: dict[str, Any]
    outputs: dict[str, Any]
    score: float
    status: str = "ok"
    error: str | None = None
    latency_ms: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status != "ok"


@dataclass(frozen=True)
class Comparison:
    """Per-example ``wins`` / ``losses`` / ``ties`` (indices) of one evaluation over another."""

    wins: tuple[int, ...]
    losses: tuple[int, ...]
    ties: tuple[int, ...]
    delta: float

    def __repr__(self) -> str:
        return (
            f"<Comparison {len(self.wins)} wins, {len(self.losses)} losses, "
            f"{len(self.ties)} ties, score {self.delta:+.3f}>"
        )


@dataclass(frozen=True)
class Evaluation:
    """The result of ``Program.evaluate``.

    ``score`` is the mean metric over every example of the devset, failed and
    timed-out rows counting 0 (as ``dspy.Evaluate`` does), so a run that breaks
    half the examples cannot look good. ``stopped`` says why a run ended early
    (``"max_errors"``, ``"interrupted"``) or is ``None``.
    """

    program: str | None
    metric: str
    rows: tuple[EvalRow, ...]
    total: int
    overrides: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None
    wall_ms: float = 0.0

    @property
    def n(self) -> int:
        """Rows evaluated (fewer than ``total`` when the run stopped early)."""
        return len(self.rows)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.rows) / self.total if self.total else 0.0

    @property
    def errors(self) -> list[EvalRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def timed_out(self) -> list[EvalRow]:
        return [r for r in self.rows if r.status == "timeout"]

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

    @property
    def usage(self) -> dict[str, Any]:
        """LM tokens and calls summed over the rows; ``cost`` too when the LM reported one."""
        total: dict[str, Any] = dict.fromkeys(_USAGE_KEYS, 0)
        cost = None
        for row in self.rows:
            for key in _USAGE_KEYS:
                total[key] += int(row.usage.get(key) or 0)
            if isinstance(row.usage.get("cost"), (int, float)):
                cost = (cost or 0.0) + float(row.usage["cost"])
        if cost is not None:
            total["cost"] = cost
        return total

    def to_pandas(self) -> Any:
        """One DataFrame row per example: inputs, expected and outputs flattened by field."""
        import pandas

        records = []
        for row in self.rows:
            record: dict[str, Any] = {"index": row.index}
            record.update({f"input.{k}": v for k, v in row.inputs.items()})
            record.update({f"expected.{k}": v for k, v in row.expected.items()})
            record.update({f"output.{k}": v for k, v in row.outputs.items()})
            record.update(
                score=row.score,
                status=row.status,
                error=row.error,
                latency_ms=row.latency_ms,
                prompt_tokens=int(row.usage.get("prompt_tokens") or 0),
                completion_tokens=int(row.usage.get("completion_tokens") or 0),
                versions={k: v.get("version") for k, v in row.variables.items()},
                overrides=dict(row.overrides),
            )
            records.append(record)
        return pandas.DataFrame.from_records(records)

    def compare(self, other: Evaluation) -> Comparison:
        """Which examples this evaluation scores higher (wins) or lower than ``other``."""
        theirs = {r.index: r.score for r in other.rows}
        wins: list[int] = []
        losses: list[int] = []
        ties: list[int] = []
        for row in self.rows:
            if row.index not in theirs:
                continue
            diff = row.score - theirs[row.index]
            (wins if diff > 0 else losses if diff < 0 else ties).append(row.index)
        return Comparison(tuple(wins), tuple(losses), tuple(ties), self.score - other.score)

    def summary(self) -> str:
        text = f"{self.metric} {self.score:.3f} on {self.n}/{self.total}"
        if self.errors:
            text += f", {len(self.errors)} errors"
        if self.timed_out:
            text += f", {len(self.timed_out)} timed out"
        if self.stopped:
            text += f" (stopped: {self.stopped})"
        return text

    def __repr__(self) -> str:
        return f"<Evaluation {self.program or 'program'}: {self.summary()}>"

    def _repr_html_(self, limit: int = 50) -> str:
        """Score summary on top, then the rows; failing rows are tinted and first."""
        esc = html.escape
        usage = self.usage
        cost = f" &middot; ${usage['cost']:.4f}" if "cost" in usage else ""
        head = (
            f"<div><b>{esc(self.program or 'program')}</b> &middot; {esc(self.summary())}"
            f" &middot; {usage['prompt_tokens']}+{usage['completion_tokens']} tokens"
            f"{cost}"
            f" &middot; {self.wall_ms / 1000:.2f} s</div>"
        )
        ordered = sorted(self.rows, key=lambda r: (not r.failed, r.index))[:limit]
        cells = ["index", "inputs", "expected", "outputs", "score", "status", "ms"]
        lines = ["<tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>"]
        for row in ordered:
            style = ' style="background:#fde2e2"' if row.failed else ""
            values: Sequence[Any] = (
                row.index,
                _short(row.inputs),
                _short(row.expected),
                _short(row.outputs) if not row.error else row.error,
                f"{row.score:.2f}",
                row.status,
                f"{row.latency_ms:.0f}",
            )
            lines.append(
                f"<tr{style}>" + "".join(f"<td>{esc(str(v))}</td>" for v in values) + "</tr>"
            )
        more = len(self.rows) - len(ordered)
        tail = f"<div>... {more} more rows (use .to_pandas())</div>" if more > 0 else ""
        return f'{head}<table class="dspex-eval">{"".join(lines)}</table>{tail}'


def _short(mapping: dict[str, Any], width: int = 80) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in mapping.items())
    return text if len(text) <= width else text[: width - 1] + "…"
