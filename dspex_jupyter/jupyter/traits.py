"""``ctx.traits``: the one kernel-side mirror of a context's variables.

One :class:`VariableTraits` object per context holds one trait per variable,
and it is the only thing in the Jupyter layer that watches the context: the
widgets (``ctx.widgets()``) and the lab panel's channels derive from it.

* **One watch, one high-water mark.** Changes made anywhere (code, other
  threads, optimizers, other processes on a shared bridged session) arrive
  through one context watcher (``names=None``, ``signals=True``) and are
  applied by its dispatcher thread, the single applier. The mirror keeps the
  last record applied per variable (``_dspex_records``) and drops anything not
  newer, so nothing derived from it ever moves backwards.
* **Validation is pure.** A trait's ``validate`` runs the variable's own
  validator (the one ``Variables.set`` runs) and writes nothing; a refused
  value raises the same typed ``ValidationError`` and leaves trait and context
  unchanged. Only after validation does the assignment make exactly one
  ``ctx.set(..., source="traits")``; if the context still refuses (a lock held
  by an optimizer...), that typed error reaches the caller and nothing is stored.
* **Derived views** observe the mirror with ``observe(handler, names=All,
  type="dspex")``: one notification per applied change, carrying ``kind``
  (``registered``, ``set``, ``deleted``, ``locked``, ``unlocked``), the
  ``record`` (a :class:`~dspex_jupyter.variables.record.Variable`, or ``None``
  for a deletion), ``version`` and, for locks, ``holder``. Plain ``"change"``
  observers (the traitlets default) see only value changes, as usual. Views
  write through :meth:`VariableTraits._dspex_write` with their own ``source``.
* Everything is applied, stored and notified under one re-entrant lock
  (``_dspex_lock``), so an older value can never be stored after a newer one.

Only the public ``Context`` API is used, so the mirror works unchanged on the
local and the bridged backend, and survives the upgrade between them (watch
handles move with the backend). Observers run on the thread that caused the
change: the caller's for an assignment, the dispatcher's for the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import traitlets
from traitlets.utils.bunch import Bunch

from ..errors import ValidationError, VariableNotFound
from ..variables.record import Variable, WatchEvent
from ..variables.types import compile_validator

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["VariableTraits", "traits_for", "trait_for_variable", "NOTIFICATION"]

log = logging.getLogger("dspex_jupyter.jupyter")

#: The traitlets notification type the mirror emits for every applied change.
NOTIFICATION = "dspex"

_RESERVED = frozenset(dir(traitlets.HasTraits))


class _VariableTrait:
    """Mixin for the per-type trait classes: the variable's validator, then one ``set``.

    The base class (``Float``, ``Int``, ...) is kept for introspection (its
    ``min``/``max``/``values`` describe the variable), but its own coercion is
    replaced by the variable's validator, so a trait accepts exactly what
    ``Variables.set`` accepts, with the same typed errors.
    """

    def validate(self, obj: VariableTraits, value: Any) -> Any:
        return obj._dspex_validate(self.name, value)  # type: ignore[attr-defined]

    def set(self, obj: traitlets.HasTraits, value: Any) -> None:
        # Validate (pure), then write; _dspex_write stores and notifies. One lock
        # around all of it, shared with the applier.
        with obj._dspex_lock:  # type: ignore[attr-defined]
            clean = self._validate(obj, value)  # type: ignore[attr-defined]
            obj._dspex_write(self.name, clean, source="traits")  # type: ignore[attr-defined]


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
    which get no trait (a warning says so); derived views still show them.
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._dspex_context = context
        self._dspex_lock = threading.RLock()
        #: name -> the newest record applied: the one version high-water mark.
        self._dspex_records: dict[str, Variable] = {}
        self._dspex_validators: dict[str, Any] = {}
        self._dspex_closed = False
        with self._dspex_lock:
            for record in context.list():
                self._dspex_add(record)
        # include_initial covers variables registered between list() and watch();
        # the version check drops the initial events of those already added.
        self._dspex_subscription = context.watch(
            None, self._dspex_on_event, include_initial=True, signals=True
        )
        context.add_stop_callback(self._dspex_close)

    # ------------------------------------------------------------------ writes

    def _dspex_validate(self, name: str, value: Any) -> Any:
        """The canonical value ``Variables.set`` would store; raises its typed error. Pure."""
        try:
            return self._dspex_validators[name](value)
        except ValidationError as exc:
            raise ValidationError(f"{name}: {exc}") from None

    def _dspex_write(self, name: str, value: Any, source: str) -> Variable:
        """Exactly one validated ``ctx.set``; the new record is applied before returning."""
        with self._dspex_lock:
            record = self._dspex_context.set(name, value, source=source)
            if name in self._dspex_records:  # else its registration event brings it
                self._dspex_apply(record, "set")
            return record

    # ------------------------------------------------------------------ the applier

    def _dspex_on_event(self, event: WatchEvent) -> None:
        if self._dspex_closed or event.kind == "dependency_changed":
            return
        with self._dspex_lock:
            known = self._dspex_records.get(event.name)
            if event.kind in ("locked", "unlocked"):
                if known is not None:
                    holder = event.metadata.get("holder") if event.kind == "locked" else None
                    self._dspex_emit(event.kind, event.name, known, event.version, holder=holder)
            elif event.kind == "deleted":
                if known is not None:
                    self._dspex_remove(event.name)
                    self._dspex_emit("deleted", event.name, None, event.version)
            elif event.kind == "registered" or known is None:
                try:
                    record = self._dspex_context.variable(event.name)
                except VariableNotFound:  # deleted meanwhile: its event follows
                    return
                if known is not None and known.same_definition(record.type, record.constraints):
                    self._dspex_apply(record, "set")
                else:  # new, or redefined (type or constraints changed): a fresh trait
                    self._dspex_remove(record.name)
                    self._dspex_add(record)
                    self._dspex_emit("registered", record.name, record, record.version)
            elif event.version > known.version:
                record = known._replace(
                    value=event.new_value,
                    version=event.version,
                    source=event.source,
                    timestamp=event.timestamp,
                    metadata=event.metadata or known.metadata,
                )
                self._dspex_apply(record, "set")

    def _dspex_apply(self, record: Variable, kind: str) -> None:
        """Make ``record`` current unless it is not newer; store and notify as traitlets does."""
        name = record.name
        known = self._dspex_records.get(name)
        if known is not None and record.version <= known.version:
            return  # stale, or our own write coming back
        self._dspex_records[name] = record
        if self.has_trait(name):
            # Stored without validation (the value is already the context's). No
            # "applying" flag: an observer that assigns a trait makes a real write.
            old = self._trait_values.get(name)
            self._trait_values[name] = record.value
            try:
                silent = bool(old == record.value)
            except Exception:
                silent = False
            if not silent:
                self._notify_trait(name, old, record.value)
        self._dspex_emit(kind, name, record, record.version)

    def _dspex_emit(
        self, kind: str, name: str, record: Variable | None, version: int, holder: Any = None
    ) -> None:
        change = Bunch(name=name, type=NOTIFICATION, owner=self, kind=kind, record=record)
        change.update(version=version, holder=holder)
        self.notify_change(change)

    def _dspex_add(self, record: Variable) -> None:
        self._dspex_records[record.name] = record
        self._dspex_validators[record.name] = compile_validator(record.type, record.constraints)
        if record.name in _RESERVED or record.name.startswith("_dspex_"):
            log.warning(
                "variable %r gets no trait on ctx.traits: the name is reserved by HasTraits",
                record.name,
            )
            return
        trait = trait_for_variable(record)
        self._dspex_rebuild({**self.traits(), record.name: trait})
        trait.instance_init(self)
        self._trait_values[record.name] = record.value

    def _dspex_remove(self, name: str) -> None:
        self._dspex_records.pop(name, None)
        self._dspex_validators.pop(name, None)
        if self.has_trait(name):
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


def traits_for(context: Context) -> VariableTraits:
    """The context's :class:`VariableTraits`, created on first use and cached."""
    return context.extension("jupyter.traits", VariableTraits, stale=lambda v: v._dspex_closed)
