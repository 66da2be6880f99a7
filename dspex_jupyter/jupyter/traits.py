"""``ctx.traits``: a context's variables as traitlets, so ``observe`` works on them.

One :class:`VariableTraits` object per context holds one trait per variable.
It is a *view* of the context, never a second source of truth:

* Assigning a trait performs exactly one validated ``ctx.set(..., source="traits")``
  inside the trait's validation step. If the context refuses (wrong type,
  broken constraint, a lock held by an optimizer...), the typed error reaches
  the caller and the trait keeps its value, because traitlets stores a value
  only after validation returned.
* Changes made anywhere else (code, other threads, optimizers, other processes
  on a shared bridged session) arrive through *one* context watcher
  (``names=None``) and are applied by its dispatcher thread, the single
  applier. It keeps the last version applied per variable and drops anything
  not newer, so a trait never moves backwards and an update that came from
  the backend never writes back (no feedback loop).
* Variables that appear get a trait; variables that are deleted lose theirs.

Only the public ``Context`` API is used, so the view works unchanged on the
local and the bridged backend, and survives the upgrade between them (watch
handles move with the backend).

Observers of a trait run on the thread that caused the change: the caller's
thread for an assignment, the watcher's dispatcher thread for a change that
came from the context.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from ..errors import VariableNotFound
from ..variables.record import Variable, WatchEvent

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["VariableTraits", "traits_for", "trait_for_variable"]

log = logging.getLogger("dspex_jupyter.jupyter")

_RESERVED = frozenset(dir(traitlets.HasTraits))


class _VariableTrait:
    """Mixin for the per-type trait classes: validation is the context's ``set``.

    The base class (``Float``, ``Int``, ...) is kept for introspection (its
    ``min``/``max``/``values`` describe the variable), but its own coercion is
    bypassed: the context's validator is the only one, so a trait accepts
    exactly what ``Variables.set`` accepts, with the same typed errors.
    """

    def validate(self, obj: VariableTraits, value: Any) -> Any:
        return obj._dspex_write(self.name, value)  # type: ignore[attr-defined]

    def set(self, obj: traitlets.HasTraits, value: Any) -> None:
        # One lock around write + store + notify, shared with the applier, so an
        # older value can never be stored after a newer one was applied.
        with obj._dspex_lock:  # type: ignore[attr-defined]
            super().set(obj, value)  # type: ignore[misc]


class FloatVariable(_VariableTrait, traitlets.Float):
    """A ``float`` variable."""


class IntVariable(_VariableTrait, traitlets.Int):
    """An ``int`` variable."""


class UnicodeVariable(_VariableTrait, traitlets.Unicode):
    """A ``str`` variable, or a ``module`` variable without choices."""


class BoolVariable(_VariableTrait, traitlets.Bool):
    """A ``bool`` variable."""


class EnumVariable(_VariableTrait, traitlets.Enum):
    """A ``choice`` variable, or a ``str``/``module`` variable limited by choices."""


class TupleVariable(_VariableTrait, traitlets.Tuple):
    """An ``embedding`` or ``tensor`` variable (stored as nested tuples of floats)."""


def trait_for_variable(record: Variable) -> traitlets.TraitType:
    """The trait describing ``record``'s type and constraints, defaulting to its value."""
    c: Mapping[str, Any] = record.constraints
    help_text = f"dspex variable {record.name!r} ({record.type})"
    if record.type == "float":
        return FloatVariable(record.value, min=c.get("min"), max=c.get("max"), help=help_text)
    if record.type == "int":
        return IntVariable(record.value, min=c.get("min"), max=c.get("max"), help=help_text)
    if record.type == "bool":
        return BoolVariable(record.value, help=help_text)
    if record.type in ("choice", "str", "module") and c.get("choices"):
        return EnumVariable(list(c["choices"]), default_value=record.value, help=help_text)
    if record.type in ("str", "module"):
        return UnicodeVariable(record.value, help=help_text)
    return TupleVariable(default_value=record.value, help=help_text)


class VariableTraits(traitlets.HasTraits):
    """One trait per variable of a context; see the module docstring.

    Use it like any ``HasTraits``: ``view.temperature``, ``view.temperature = 0.9``,
    ``view.observe(handler, names="temperature")``, ``view.trait_names()``.
    Its own helpers start with ``_dspex_`` so that they cannot collide with
    variable names. A variable whose name collides with a ``HasTraits``
    attribute (e.g. ``observe``) or is not a Python identifier is still
    reachable with ``getattr(view, name)``, except for those reserved names,
    which get no trait (a warning says so).
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._dspex_context = context
        self._dspex_lock = threading.RLock()
        self._dspex_versions: dict[str, int] = {}
        self._dspex_closed = False
        self._dspex_skipped: set[str] = set()
        with self._dspex_lock:
            for record in context.list():
                self._dspex_add(record)
        # include_initial covers variables registered between list() and watch();
        # the version check drops the initial events of those already added.
        self._dspex_subscription = context.watch(None, self._dspex_on_event, include_initial=True)
        context.add_stop_callback(self._dspex_close)

    # ------------------------------------------------------------------ writes from the user

    def _dspex_write(self, name: str, value: Any) -> Any:
        """Validation step of every trait assignment: exactly one validated ``set``."""
        record = self._dspex_context.set(name, value, source="traits")
        self._dspex_seen(name, record.version)
        return record.value

    def _dspex_seen(self, name: str, version: int) -> bool:
        """Record ``version`` of ``name``; False if it is not newer than what we have."""
        if version <= self._dspex_versions.get(name, 0):
            return False
        self._dspex_versions[name] = version
        return True

    # ------------------------------------------------------------------ the applier

    def _dspex_on_event(self, event: WatchEvent) -> None:
        if self._dspex_closed:
            return
        with self._dspex_lock:
            if event.kind == "deleted":
                self._dspex_remove(event.name)
            elif event.kind == "registered" or not self.has_trait(event.name):
                if event.name in self._dspex_skipped:
                    return
                try:
                    record = self._dspex_context.variable(event.name)
                except VariableNotFound:  # deleted meanwhile: its event follows
                    return
                trait = self.traits().get(record.name)
                if trait is not None and _same_definition(trait, record):
                    self._dspex_apply(record.name, record.value, record.version)
                else:  # new, or redefined (type or constraints changed): a fresh trait
                    self._dspex_remove(record.name)
                    self._dspex_add(record)
            else:
                self._dspex_apply(event.name, event.new_value, event.version)

    def _dspex_apply(self, name: str, value: Any, version: int) -> None:
        if not self._dspex_seen(name, version):
            return  # stale, or our own write coming back
        # Store without validation (the value is already the context's) and notify
        # observers exactly as ``TraitType.set`` does. No "applying" flag is
        # needed, so an observer that assigns a trait still makes a real write.
        old = self._trait_values.get(name)
        self._trait_values[name] = value
        try:
            silent = bool(old == value)
        except Exception:
            silent = False
        if not silent:
            self._notify_trait(name, old, value)

    def _dspex_add(self, record: Variable) -> None:
        if record.name in _RESERVED or record.name.startswith("_dspex_"):
            self._dspex_skipped.add(record.name)
            log.warning(
                "variable %r gets no trait on ctx.traits: the name is reserved by HasTraits",
                record.name,
            )
            return
        trait = trait_for_variable(record)
        trait.metadata["dspex_definition"] = (record.type, dict(record.constraints))
        traits = {**self.traits(), record.name: trait}
        self._dspex_rebuild(traits)
        trait.instance_init(self)
        self._trait_values[record.name] = record.value
        self._dspex_versions[record.name] = record.version

    def _dspex_remove(self, name: str) -> None:
        self._dspex_versions.pop(name, None)
        self._dspex_skipped.discard(name)
        if not self.has_trait(name):
            return
        self._dspex_rebuild({n: t for n, t in self.traits().items() if n != name})
        self._trait_values.pop(name, None)

    def _dspex_rebuild(self, traits: dict[str, traitlets.TraitType]) -> None:
        """Swap in a flat subclass holding exactly ``traits``.

        ``HasTraits.add_traits`` stacks one subclass per call and cannot remove
        a trait; a flat rebuild keeps attribute lookup short and supports both.
        Observers live on the instance, so they survive the swap.
        """
        attrs: dict[str, Any] = {
            "__module__": VariableTraits.__module__,
            "__qualname__": VariableTraits.__qualname__,
        }
        attrs.update(traits)
        self.__class__ = type(VariableTraits.__name__, (VariableTraits,), attrs)

    # ------------------------------------------------------------------ lifecycle

    def _dspex_sync(self, timeout: float = 5.0) -> bool:
        """Wait until every change offered so far has been applied; True if it was."""
        return self._dspex_subscription.flush(timeout)

    def _dspex_close(self) -> None:
        if not self._dspex_closed:
            self._dspex_closed = True
            try:
                self._dspex_context.unwatch(self._dspex_subscription)
            except Exception:  # the context may already be stopped
                self._dspex_subscription.close()

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={self._trait_values.get(n)!r}" for n in sorted(self.traits()))
        return f"<VariableTraits of {self._dspex_context.name}: {values}>"


def _same_definition(trait: traitlets.TraitType, record: Variable) -> bool:
    return trait.metadata.get("dspex_definition") == (record.type, dict(record.constraints))


def traits_for(context: Context) -> VariableTraits:
    """The context's :class:`VariableTraits`, created on first use and cached."""
    return context.extension("jupyter.traits", VariableTraits, stale=lambda v: v._dspex_closed)
