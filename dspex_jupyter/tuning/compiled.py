"""``Compiled``: what ``Program.compile`` returns (scores before/after, what changed).

The states themselves live in the context as versioned ``module`` variables
(``<module name>.state``); this object holds copies of them, the variables'
versions, and the two evaluations, and renders what the optimizer changed:
the demos it added and the instructions it rewrote.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .evaluation import Evaluation

__all__ = ["Compiled", "StepChange", "predictors", "describe_state_html"]


def predictors(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{predictor path: its state}`` of one module's ``dump_state()`` (a ``Predict``'s
    state is itself a predictor; a ``ChainOfThought``'s holds ``predict``; ReAct two)."""
    if "signature" in state and "demos" in state:
        return {"": dict(state)}
    return {k: dict(v) for k, v in state.items() if isinstance(v, Mapping) and "demos" in v}


def _instructions(state: Mapping[str, Any]) -> str:
    signature = state.get("signature") or {}
    return str(signature.get("instructions", "")) if isinstance(signature, Mapping) else ""


@dataclass(frozen=True)
class StepChange:
    """What the optimizer changed in one module: demos and instructions per predictor."""

    module: str
    variable: str
    version: int
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def demos_added(self) -> int:
        count = lambda s: sum(len(p.get("demos") or []) for p in predictors(s).values())  # noqa: E731
        return count(self.after["state"]) - count(self.before["state"])

    @property
    def demos(self) -> list[dict[str, Any]]:
        return [d for p in predictors(self.after["state"]).values() for d in p.get("demos") or []]

    @property
    def instructions_changed(self) -> dict[str, tuple[str, str]]:
        """``{predictor: (old, new)}`` for each predictor whose instructions were rewritten."""
        old, new = predictors(self.before["state"]), predictors(self.after["state"])
        return {
            path: (_instructions(old.get(path, {})), _instructions(state))
            for path, state in new.items()
            if _instructions(old.get(path, {})) != _instructions(state)
        }


def describe_state_html(value: Mapping[str, Any], title: str = "") -> str:
    """A compiled state as HTML: per predictor, its instructions and demos."""
    parts = [f"<b>{html.escape(title)}</b> " if title else ""]
    parts.append(
        f"<small>{html.escape(str(value.get('module_type')))} compiled by "
        f"{html.escape(str(value.get('optimizer') or 'nothing (uncompiled)'))}</small>"
    )
    for path, state in predictors(value.get("state") or {}).items():
        demos = state.get("demos") or []
        parts.append(
            f"<div><i>{html.escape(path or 'predictor')}</i>: "
            f"{html.escape(_instructions(state))}<br>{len(demos)} demos"
        )
        if demos:
            keys = sorted({k for d in demos for k in d if not k.startswith("augmented")})
            head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(d.get(k, '')))[:200]}</td>" for k in keys)
                for d in demos
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        parts.append("</div>")
    return "".join(parts)


@dataclass(frozen=True)
class Compiled:
    """The result of ``Program.compile``: ``before``/``after`` on the valset, the changes."""

    program: str | None
    optimizer: str
    before: Evaluation
    after: Evaluation
    steps: tuple[StepChange, ...]
    metric_calls: int = 0
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)

    @property
    def delta(self) -> float:
        """``after.score - before.score`` (on the valset)."""
        return self.after.score - self.before.score

    @property
    def states(self) -> dict[str, dict[str, Any]]:
        """``{variable: compiled state}`` as stored in the context."""
        return {s.variable: s.after for s in self.steps}

    @property
    def variables(self) -> dict[str, int]:
        """``{variable: version}`` written by this compile (roll back to undo it)."""
        return {s.variable: s.version for s in self.steps}

    def __repr__(self) -> str:
        changes = ", ".join(
            f"{s.variable} v{s.version}: +{s.demos_added} demos, "
            f"{len(s.instructions_changed)} instructions rewritten"
            for s in self.steps
        )
        return (
            f"<Compiled {self.program or 'program'} with {self.optimizer}: score "
            f"{self.before.score:.3f} -> {self.after.score:.3f} ({self.delta:+.3f}); {changes}>"
        )

    def _repr_html_(self) -> str:
        rows = []
        for s in self.steps:
            rewritten = "".join(
                f"<li><i>{html.escape(path or 'predictor')}</i>: <s>{html.escape(old)}</s> "
                f"&rarr; {html.escape(new)}</li>"
                for path, (old, new) in s.instructions_changed.items()
            )
            rows.append(
                f"<h4>{html.escape(s.module)} &rarr; <code>{html.escape(s.variable)}</code> "
                f"v{s.version}</h4><p>{s.demos_added:+d} demos; instructions rewritten: "
                f"{len(s.instructions_changed)}</p>"
                + (f"<ul>{rewritten}</ul>" if rewritten else "")
                + describe_state_html(s.after)
            )
        return (
            f"<div><b>Compiled {html.escape(self.program or 'program')}</b> with "
            f"<code>{html.escape(self.optimizer)}</code>: score {self.before.score:.3f} "
            f"&rarr; {self.after.score:.3f} (<b>{self.delta:+.3f}</b>), "
            f"{self.metric_calls} metric calls in {self.seconds:.1f} s" + "".join(rows) + "</div>"
        )
