"""``ctx.widgets()``: one ipywidgets control per variable, synced both ways.

Control per variable type:

==========================  ===============================================
``float`` / ``int``         ``FloatSlider`` / ``IntSlider`` over ``[min, max]``
                            when both bounds exist, else ``FloatText`` /
                            ``IntText`` (a one-sided bound is still enforced
                            by the context, with snap-back)
``choice``                  ``Dropdown`` of the choices
``module``                  ``Dropdown`` with choices, else ``Text``
``str``                     ``Text`` (``Dropdown`` when it has choices)
``bool``                    ``Checkbox``
``embedding`` / ``tensor``  a read-only ``Textarea`` showing the JSON value
==========================  ===============================================

How the sync stays loop-free and consistent: the container derives from
``ctx.traits`` (:mod:`dspex_jupyter.jupyter.traits`), the one kernel-side
mirror, and runs no watch of its own.

* A widget edit (a message from the browser, which ipykernel 7 may deliver on
  a subshell thread while a cell runs) is one validated write through the
  mirror, ``ctx.set(..., source="widget")``. If it is refused, the control
  snaps back to the mirror's record and the reason appears in the container's
  own ``message`` area (an ``HTML`` widget), not only in a log.
* Every change the mirror applies (from this container, code, other threads
  or processes) reaches the container as one ``"dspex"`` notification, under
  the mirror's lock and in version order; the mirror has already dropped
  anything stale. While it moves a control, a thread-local flag naming that
  variable tells the control's observer that the change is not an edit (the
  flag names one variable, so a user's observer that edits another control
  meanwhile still makes a real write). ``hold_sync`` sends each move as one
  message to the browser.

Locks exist only on the bridged backend: ``ctx.locks()`` is asked when the
panel is built, when a change is applied (at most once a second) and when an
edit is refused with ``LockedError``; ``refresh()`` asks on demand. Between
those, the ``locked`` / ``unlocked`` signals, relayed by the mirror, move the controls as soon as an optimizer anywhere takes or leaves a lease,
without polling. A locked control is disabled and its row says who holds it.
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import traitlets

from ..errors import DSPexError, LockedError, NotSupportedByBackend
from ..variables.record import Variable, WatchEvent, to_json_value
from .traits import NOTIFICATION, traits_for

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["VariablesWidget", "widgets_for", "control_for_variable"]

log = logging.getLogger("dspex_jupyter.jupyter")

_LOCK_REFRESH_S = 1.0
_READ_ONLY = ("embedding", "tensor")


def control_for_variable(record: Variable) -> w.Widget:
    """A new control for ``record`` (labelled with its name, showing its value)."""
    c = record.constraints
    common: dict[str, Any] = {
        "description": record.name,
        "style": {"description_width": "initial"},
        "layout": w.Layout(width="420px"),
    }
    lo, hi = c.get("min"), c.get("max")
    if record.type == "float":
        if lo is not None and hi is not None:
            step = (hi - lo) / 100 if hi > lo else 0.01
            return w.FloatSlider(
                value=record.value,
                min=lo,
                max=hi,
                step=step,
                continuous_update=False,
                readout_format=".3g",
                **common,
            )
        return w.FloatText(value=record.value, **common)
    if record.type == "int":
        if lo is not None and hi is not None:
            return w.IntSlider(
                value=record.value, min=lo, max=hi, step=1, continuous_update=False, **common
            )
        return w.IntText(value=record.value, **common)
    if record.type == "bool":
        return w.Checkbox(value=record.value, indent=False, **common)
    if record.type in ("choice", "module", "str") and c.get("choices"):
        options = [(str(choice), choice) for choice in c["choices"]]
        return w.Dropdown(options=options, value=record.value, **common)
    if record.type in ("str", "module"):
        return w.Text(value=record.value, continuous_update=False, **common)
    return w.Textarea(value=_as_text(record.value), disabled=True, **common)


def _lock_html(holder: str) -> str:
    """A text badge, not a glyph: a lock emoji renders as an empty box where the font lacks it."""
    return f"<span style='{_LOCK_STYLE}'>locked</span> by {html.escape(holder)}"


_LOCK_STYLE = (
    "border:1px solid #b26a00;border-radius:3px;padding:0 4px;color:#b26a00;"
    "font-weight:600;font-size:85%;text-transform:uppercase"
)


def _as_text(value: Any) -> str:
    return json.dumps(to_json_value(value))


class VariablesWidget(w.VBox):
    """The variable panel of one context; see the module docstring.

    ``controls`` maps variable name -> control; ``versions`` maps name -> the
    ``HTML`` label showing its version; ``message`` is the area where refused
    edits are explained.
    """

    def __init__(self, context: Context) -> None:
        self._ctx = context
        self._view = traits_for(context)
        self.controls: dict[str, w.Widget] = {}
        self.versions: dict[str, w.HTML] = {}
        self.lock_labels: dict[str, w.HTML] = {}
        self._rows: dict[str, w.HBox] = {}
        self._types: dict[str, str] = {}
        self._locked: dict[str, str] = {}
        self._local = threading.local()
        self._closed = False
        self._locks_checked = 0.0
        self.header = w.HTML()
        self.message = w.HTML(value="")
        self._rows_box = w.VBox()
        super().__init__(children=[self.header, self._rows_box, self.message])
        with self._view._dspex_lock:
            for record in self._view._dspex_records.values():
                self._add(record)
            self._layout_rows()
            self._view.observe(self._on_change, names=traitlets.All, type=NOTIFICATION)
        context.add_stop_callback(self._on_stop)
        self.refresh()

    # ------------------------------------------------------------------ rows

    def _add(self, record: Variable) -> None:
        control = control_for_variable(record)
        control.observe(lambda change, name=record.name: self._on_edit(name, change), "value")
        version, lock_label = w.HTML(value=self._version_html(record)), w.HTML(value="")
        self.versions[record.name] = version
        self.lock_labels[record.name] = lock_label
        self._types[record.name] = record.type
        self._rows[record.name] = w.HBox([control, version, lock_label])
        self.controls[record.name] = control  # last: a row is whole once its control shows

    def _remove(self, name: str) -> None:
        for table in (self.controls, self.versions, self.lock_labels, self._types, self._locked):
            table.pop(name, None)
        row = self._rows.pop(name, None)
        if row is not None:
            row.close()

    def _layout_rows(self) -> None:
        self._rows_box.children = tuple(self._rows[name] for name in sorted(self._rows))
        self._update_header()

    def _update_header(self) -> None:
        ctx = self._ctx
        state = "stopped" if ctx.closed else ctx.backend
        self.header.value = (
            f"<b>dspex</b> context <code>{html.escape(ctx.name)}</code> · {state} · "
            f"{len(self._rows)} variable{'s' if len(self._rows) != 1 else ''}"
        )

    @staticmethod
    def _version_html(record: Variable) -> str:
        source = html.escape(str(record.source))
        return f"<small title='last written by {source}'>v{record.version}</small>"

    # ------------------------------------------------------------------ edits from the widget

    def _on_edit(self, name: str, change: dict[str, Any]) -> None:
        """A control's value changed. Unless the mirror moved it, that is one user edit."""
        if getattr(self._local, "applying", None) == name or self._closed:
            return  # the mirror (or a snap-back) moved this control: not an edit
        with self._view._dspex_lock:
            if self.controls.get(name) is not change["owner"]:
                return  # a control of a deleted or redefined variable
            try:
                self._view._dspex_write(name, change["new"], source="widget")
            except DSPexError as exc:
                self._refuse(name, exc)
                return
            self.message.value = ""

    def _refuse(self, name: str, exc: DSPexError) -> None:
        """Snap the control back to the real value and say why the edit was refused."""
        self.message.value = (
            f"<span style='color:#b00020'>&#9888; {html.escape(name)}: "
            f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
        )
        if isinstance(exc, LockedError):
            self.refresh(force=True)
        record = self._view._dspex_records.get(name)
        if record is None:
            self._remove(name)
            self._layout_rows()
        else:
            self._show(record)

    # ------------------------------------------------------------------ changes from the mirror

    def _on_change(self, change: Any) -> None:
        """One change the mirror applied (under its lock, in version order)."""
        if self._closed:
            return
        name, kind, record = change.name, change.kind, change.record
        if kind in ("locked", "unlocked"):
            if name in self.controls:
                self._apply_lock(name, change.holder)
                self._update_header()
            return
        if kind == "deleted":
            if name in self._rows:
                self._remove(name)
                self._layout_rows()
        elif kind == "registered" or name not in self._rows:
            self._remove(name)
            self._add(record)
            self._layout_rows()
        else:
            self._show(record)
        if time.monotonic() - self._locks_checked > _LOCK_REFRESH_S:
            self.refresh()

    def _on_event(self, event: WatchEvent) -> None:
        """Feed ``event`` to the mirror this container derives from (as its watch does)."""
        self._view._dspex_on_event(event)

    def _show(self, record: Variable) -> None:
        control = self.controls.get(record.name)
        if control is None:
            return
        shown = _as_text(record.value) if self._types[record.name] in _READ_ONLY else record.value
        # Name-specific and restored afterwards, so a user's observer that edits
        # *another* control while this one moves still makes a real write.
        previous = getattr(self._local, "applying", None)
        self._local.applying = record.name
        try:
            with control.hold_sync():
                control.value = shown
        finally:
            self._local.applying = previous
        self.versions[record.name].value = self._version_html(record)

    # ------------------------------------------------------------------ locks and lifecycle

    def refresh(self, force: bool = False) -> None:
        """Re-read the optimizer locks (bridged backend) and the header."""
        if self._closed:
            return
        self._locks_checked = time.monotonic()
        try:
            locks = dict(self._ctx.locks())
        except NotSupportedByBackend:
            locks = {}
        except DSPexError as exc:
            log.debug("could not read locks: %s", exc)
            return
        with self._view._dspex_lock:
            for name in self.controls:
                self._apply_lock(name, locks.get(name), force)
            self._update_header()

    def _apply_lock(self, name: str, holder: str | None, force: bool = False) -> None:
        """Disable ``name``'s control and say who holds it (``None``: free). Lock held."""
        if self._locked.get(name) == holder and not force:
            return
        if holder is None:
            self._locked.pop(name, None)
        else:
            self._locked[name] = holder
        self.controls[name].disabled = holder is not None or self._types[name] in _READ_ONLY
        self.lock_labels[name].value = "" if holder is None else _lock_html(str(holder))

    def _dspex_sync(self, timeout: float = 5.0) -> bool:
        """Wait until every change offered so far is on screen; True if it is."""
        return self._view._dspex_sync(timeout)

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every change offered so far is on screen; True if it is."""
        return self._dspex_sync(timeout)

    def _on_stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._view.unobserve(self._on_change, names=traitlets.All, type=NOTIFICATION)
        with self._view._dspex_lock:
            for control in self.controls.values():
                control.disabled = True
            self._update_header()

    @property
    def closed(self) -> bool:
        """True once the context was stopped (the controls are then disabled)."""
        return self._closed


def widgets_for(context: Context) -> VariablesWidget:
    """The context's :class:`VariablesWidget`, created on first use and cached.

    Displaying the same container several times shows several synced views.
    """
    return context.extension("jupyter.widgets", VariablesWidget, stale=lambda w: w.closed)
