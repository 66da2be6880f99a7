"""Scripted programs for the tuning tests: quality depends on a bound variable.

``answer`` (a native function) is right only when ``temperature <= 0.3``;
:func:`responder` (for the LM server) is right only when the prompt carries the
``PRECISE`` instruction. Both know the answers of :data:`CAPITALS`.
"""

from __future__ import annotations

import threading
from typing import Any

from dspex_jupyter.testing.lm_server import _inputs, answer_messages

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Peru": "Lima",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Chile": "Santiago",
}
DEVSET = [{"country": c, "capital": a} for c, a in CAPITALS.items()]
PRECISE = "Name the capital city, one word."
VAGUE = "Say something about the country."

#: Test hooks: a country whose run blocks until the event is set / raises.
blocked: dict[str, threading.Event] = {}
on_start: dict[str, Any] = {}


def answer(country: str, temperature: float) -> dict[str, str]:
    hook = on_start.get(country)
    if hook is not None:
        hook()
    gate = blocked.get(country)
    if gate is not None:
        gate.wait(60)
    if country == "Atlantis":
        raise RuntimeError("no such country")
    return {"capital": CAPITALS[country] if temperature <= 0.3 else "unsure"}


def responder(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Answer the capital when the system prompt has the PRECISE instruction."""
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    text, values = answer_messages(messages)
    country = _inputs(messages).get("country", "")
    if country == "Nowhere":
        return "no fields here at all", {}
    if "capital" in values:
        good = PRECISE in system and country in CAPITALS
        values["capital"] = CAPITALS[country] if good else "unsure"
        parts = [f"[[ ## {k} ## ]]\n{v}" for k, v in values.items()]
        return "\n\n".join([*parts, "[[ ## completed ## ]]"]), values
    return text, values
