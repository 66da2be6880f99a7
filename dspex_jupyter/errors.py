"""The typed errors of dspex-jupyter.

Every error a user can provoke is a subclass of :class:`DSPexError`, and most
also subclass the builtin exception a Python user would reach for first
(``ValueError``, ``KeyError``, ``PermissionError``...), so ``except ValueError``
keeps working for code that does not know about this package.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from traitlets import TraitError

__all__ = [
    "DSPexError",
    "ValidationError",
    "VariableNotFound",
    "VariableExists",
    "VersionConflict",
    "NotSupportedByBackend",
    "BridgeUnavailable",
    "SessionNotFound",
    "CycleError",
    "LockedError",
    "AccessDenied",
    "ContextClosed",
    "ProgramError",
    "ModuleExecutionError",
    "LocalLMUnavailable",
]


class DSPexError(Exception):
    """Base class of every error raised by dspex-jupyter."""


class ValidationError(DSPexError, ValueError, TraitError):
    """A value, a type, a constraint or a definition was rejected; nothing changed.

    Also a ``traitlets.TraitError``: ``ctx.traits`` validates with it, and
    traitlets users catch what they expect.
    """


class VariableNotFound(DSPexError, KeyError):
    """The named variable does not exist in this context or session."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        hint = difflib.get_close_matches(name, list(known), n=1)
        message = f"no variable named {name!r}"
        if hint:
            message += f" (did you mean {hint[0]!r}?)"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class VariableExists(DSPexError, ValueError):
    """A variable of that name already exists with a different definition."""


class VersionConflict(DSPexError):
    """A compare-and-set write expected a version that is no longer current."""

    def __init__(self, name: str, expected: int, actual: int) -> None:
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(
            f"variable {name!r} is at version {actual}, not the expected version {expected}"
        )


class NotSupportedByBackend(DSPexError, NotImplementedError):
    """The active state backend does not offer this operation (e.g. locks on LocalState)."""

    def __init__(self, operation: str, backend: str, hint: str | None = None) -> None:
        self.operation, self.backend = operation, backend
        message = f"{operation!r} is not supported by the {backend!r} backend"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class BridgeUnavailable(DSPexError, ConnectionError):
    """The bridge server could not be started, reached, or kept."""


class SessionNotFound(DSPexError, KeyError):
    """The bridge server has no session of that id (never created, cleaned up or expired)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "session not found"


class CycleError(ValidationError):
    """Adding a dependency would create a cycle; ``cycle`` names it in order."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " -> ".join(self.cycle))


class LockedError(DSPexError):
    """The variable is leased by another optimizer; ``holder`` says by whom."""

    def __init__(self, message: str, holder: str | None = None) -> None:
        self.holder = holder
        super().__init__(message)


class AccessDenied(DSPexError, PermissionError):
    """The caller lacks the right for this operation, or failed to authenticate."""


class ContextClosed(DSPexError, RuntimeError):
    """The context was stopped; create a new one with ``Context.start()``."""


class ProgramError(DSPexError, ValueError):
    """A program spec is malformed (unknown module, bad binding, bad input)."""


class ModuleExecutionError(DSPexError, RuntimeError):
    """A module failed while running (LM error, crashed worker, tool failure)."""


class LocalLMUnavailable(ModuleExecutionError):
    """No LM is configured and the embedded local model cannot be used (not installed,
    or its model file is missing or corrupt). The message names both ways out."""
