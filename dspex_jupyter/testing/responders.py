"""Scripted answers for :class:`~.lm_server.LMServer` (``LMServer(responder=...)``).

:func:`demo_gated` makes few-shot demos matter, so a compile can be seen to
work: a prompt that carries demos (DSPy puts each one as a user/assistant
message pair before the real question) gets the right answer, one without
gets a wrong one. Only the standard library is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .lm_server import _inputs, answer_messages

__all__ = ["demo_gated", "carries_demos"]


def carries_demos(messages: list[dict[str, Any]]) -> bool:
    """Whether an assistant message comes before the last user message (a demo)."""
    roles = [m.get("role") for m in messages]
    last_user = max((i for i, r in enumerate(roles) if r == "user"), default=-1)
    return "assistant" in roles[:last_user]


def demo_gated(
    answers: Mapping[str, str], field: str, *, wrong: str = "unsure"
) -> Callable[[list[dict[str, Any]]], tuple[str, dict[str, Any]]]:
    """A responder: ``field`` is ``answers[first input]`` with demos, ``wrong`` without."""

    def respond(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        text, values = answer_messages(messages)
        if field not in values:
            return text, values
        inputs = _inputs(messages)
        key = next((v for k, v in inputs.items() if k != "trajectory"), "")
        values[field] = answers.get(key, wrong) if carries_demos(messages) else wrong
        parts = [f"[[ ## {k} ## ]]\n{v}" for k, v in values.items()]
        return "\n\n".join([*parts, "[[ ## completed ## ]]"]), values

    return respond
