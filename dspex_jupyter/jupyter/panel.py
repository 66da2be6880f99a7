"""Kernel side of the JupyterLab "DSPex" panel: the ``dspex:panel`` comm target.

The protocol (a ``snapshot`` on open, then numbered deltas; ``edit`` and
``request_snapshot`` from the panel; how threads send) is documented in
``docs/panel-protocol.md`` and defined once, machine-readably, in
``docs/panel-protocol.schema.json``: the tests validate every message against
it, and the TypeScript types are generated from it at build time.

A channel runs no watch of its own: it derives from each context's
``ctx.traits`` mirror (:mod:`dspex_jupyter.jupyter.traits`), whose one watch and
one version high-water mark deliver every change once, newest last. A snapshot
is taken under the mirrors' locks while the channel subscribes, so nothing is
missed or sent twice. A mirror's lock is always taken before a channel's.

``%load_ext dspex_jupyter`` calls :func:`register`; the panel also runs
``register(get_ipython())`` silently when it connects, so it works in notebooks
that never loaded the extension. Registering twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from typing import Any, NamedTuple

import traitlets

from ..context import Context
from ..errors import DSPexError
from ..variables.parse import parse
from .panel_json import run_json, tuning_json, variable_json
from .traits import NOTIFICATION, VariableTraits, traits_for

__all__ = [
    "TARGET",
    "PROTOCOL",
    "MAX_RUNS",
    "register",
    "unregister",
    "PanelHub",
    "Channel",
    "variable_json",
]

log = logging.getLogger("dspex_jupyter.panel")

TARGET = "dspex:panel"
PROTOCOL = 1
MAX_RUNS = 20
_ID_KEY = "dspex.panel.id"


def context_id(ctx: Context) -> str:
    """A stable id for ``ctx`` within this kernel (stored in ``ctx.extensions``)."""
    cid = ctx.extensions.get(_ID_KEY)
    if cid is None:
        cid = ctx.extensions.setdefault(_ID_KEY, uuid.uuid4().hex[:12])
    return cid


def _locks(ctx: Context) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in ctx.locks().items()}
    except (DSPexError, NotImplementedError):
        return {}  # the local backend has no locks
    except Exception:
        log.debug("locks() failed for %r", ctx, exc_info=True)
        return {}


class PanelHub:
    """One per kernel: knows the contexts, owns the open channels, hooks the cells."""

    def __init__(self, shell: Any = None) -> None:
        self.shell = shell
        self.channels: list[Channel] = []
        self._lock = threading.Lock()

    def contexts(self) -> list[tuple[Context, list[str]]]:
        """The contexts to show: the default one (if created) first, then every
        ``Context`` bound to a name in the user namespace, with those names."""
        from .. import context as context_module

        found: dict[int, tuple[Context, list[str]]] = {}
        default = context_module._default  # read only: the panel never creates it
        if default is not None and not default.closed:
            found[id(default)] = (default, [])
        user_ns = getattr(self.shell, "user_ns", None) or {}
        for name, value in list(user_ns.items()):
            if isinstance(value, Context) and not name.startswith("_") and not value.closed:
                found.setdefault(id(value), (value, []))[1].append(name)
        return list(found.values())

    def open_channel(self, comm: Any, open_msg: Mapping[str, Any] | None = None) -> None:
        """The comm target: a frontend panel opened a channel."""
        channel = Channel(self, comm)
        with self._lock:
            self.channels.append(channel)
        channel.send_snapshot()

    def drop(self, channel: Channel) -> None:
        with self._lock:
            if channel in self.channels:
                self.channels.remove(channel)

    def post_run_cell(self, *args: Any) -> None:
        """After every cell: contexts may have appeared, gone, bridged or taken locks."""
        for channel in tuple(self.channels):
            try:
                channel.sync()
            except Exception:
                log.exception("dspex panel: refreshing a channel failed")

    def close(self) -> None:
        for channel in tuple(self.channels):
            channel.close()


class _Attached(NamedTuple):
    """What a channel holds for one context it shows."""

    ctx: Context
    view: VariableTraits
    on_change: Callable[[Any], None]
    on_run: Callable[[Mapping[str, Any]], None]


class Channel:
    """One open comm: its own sequence numbers, and an observer on each context's mirror."""

    def __init__(self, hub: PanelHub, comm: Any) -> None:
        self.hub = hub
        self.comm = comm
        self.seq = 0
        self.closed = False
        self._lock = threading.RLock()
        self._attached: dict[str, _Attached] = {}
        self._sent_info: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, dict[str, str]] = {}
        self._tuning: dict[str, Any] = {}
        comm.on_msg(self._on_msg)
        comm.on_close(lambda msg: self.close(send_close=False))

    def _send(self, message: dict[str, Any]) -> None:
        """Number and send one message. Callers hold ``self._lock``."""
        if self.closed:
            return
        self.seq += 1
        message["seq"] = self.seq
        try:
            self.comm.send(message)
        except Exception:
            log.exception("dspex panel: sending %s failed", message.get("type"))

    @contextmanager
    def _holding(self, views: Iterable[VariableTraits]) -> Iterator[None]:
        """The mirrors' locks (in a fixed order), then the channel's."""
        with ExitStack() as stack:
            for view in sorted(set(views), key=id):
                stack.enter_context(view._dspex_lock)
            stack.enter_context(self._lock)
            yield

    def _wanted(self) -> dict[str, tuple[Context, list[str], VariableTraits]]:
        wanted = {}
        for ctx, labels in self.hub.contexts():
            try:
                wanted[context_id(ctx)] = (ctx, labels, traits_for(ctx))
            except DSPexError:  # stopped while we looked
                continue
        return wanted

    def _info(self, cid: str, ctx: Context, labels: list[str]) -> dict[str, Any]:
        locks = _locks(ctx)
        self._locks[cid] = locks
        return {
            "id": cid,
            "name": ctx.name,
            "labels": sorted(labels),
            "backend": ctx.backend,
            "address": ctx.address,
            "session_id": ctx.session_id,
            "locks": locks,
        }

    def _context_json(
        self, cid: str, ctx: Context, labels: list[str], view: VariableTraits
    ) -> dict[str, Any]:
        """The full state of one context, from its mirror (whose lock the caller holds)."""
        info = self._sent_info[cid] = self._info(cid, ctx, labels)
        records = sorted(view._dspex_records.values(), key=lambda r: r.name)
        runs = [run_json(run) for run in list(ctx.runs)[-MAX_RUNS:]]
        variables = [variable_json(r, self._locks[cid]) for r in records]
        tuning = self._tuning[cid] = tuning_json(records, self._locks[cid])
        return {**info, "variables": variables, "runs": runs, "tuning": tuning}

    def _attach(self, cid: str, ctx: Context, view: VariableTraits) -> None:
        if cid in self._attached:
            return
        on_change, on_run = partial(self._on_change, cid), partial(self._on_run, cid)
        view.observe(on_change, names=traitlets.All, type=NOTIFICATION)
        ctx.add_run_listener(on_run)
        self._attached[cid] = _Attached(ctx, view, on_change, on_run)

    def _detach(self, cid: str) -> None:
        self._sent_info.pop(cid, None)
        self._locks.pop(cid, None)
        self._tuning.pop(cid, None)
        attached = self._attached.pop(cid, None)
        if attached is not None:
            attached.ctx.remove_run_listener(attached.on_run)
            attached.view.unobserve(attached.on_change, names=traitlets.All, type=NOTIFICATION)

    def send_snapshot(self) -> None:
        wanted = self._wanted()
        with self._holding(view for _, _, view in wanted.values()):
            for cid in [c for c in self._attached if c not in wanted]:
                self._detach(cid)
            contexts = []
            for cid, (ctx, labels, view) in wanted.items():
                try:
                    contexts.append(self._context_json(cid, ctx, labels, view))
                    self._attach(cid, ctx, view)
                except DSPexError:  # stopped while we looked
                    self._detach(cid)
            self._send({"type": "snapshot", "protocol": PROTOCOL, "contexts": contexts})

    def sync(self) -> None:
        """Send what changed in the set of contexts or in their info (not variables)."""
        if self.closed:
            return
        wanted = self._wanted()
        with self._holding(view for _, _, view in wanted.values()):
            for cid in [c for c in self._attached if c not in wanted]:
                self._detach(cid)
                self._send({"type": "context_removed", "context": cid})
            for cid, (ctx, labels, view) in wanted.items():
                try:
                    new = cid not in self._attached
                    if new or self._info(cid, ctx, labels) != self._sent_info.get(cid):
                        context = self._context_json(cid, ctx, labels, view)
                        self._attach(cid, ctx, view)
                        self._send({"type": "context", "context": context})
                except DSPexError:
                    self._detach(cid)
                    self._send({"type": "context_removed", "context": cid})

    def _on_change(self, cid: str, change: Any) -> None:
        """One change a mirror applied (under its lock, newest last, never twice)."""
        with self._lock:
            attached = self._attached.get(cid)
            if self.closed or attached is None:
                return
            if change.kind in ("locked", "unlocked"):
                # An optimizer took or left a lease (anywhere): resend the context's
                # info and variables with the new holders, without waiting for a cell.
                labels = self._sent_info[cid]["labels"]
                try:
                    context = self._context_json(cid, attached.ctx, labels, attached.view)
                except DSPexError:
                    return
                self._send({"type": "context", "context": context})
            elif change.kind == "deleted":
                message = {"context": cid, "name": change.name, "version": int(change.version)}
                self._send({"type": "variable_deleted", **message})
            else:
                variable = variable_json(change.record, self._locks.get(cid, {}))
                message = {"context": cid, "kind": change.kind, "variable": variable}
                self._send({"type": "variable", **message})
                self._send_tuning(cid, attached.view)

    def _send_tuning(self, cid: str, view: VariableTraits) -> None:
        """A ``tuning`` message when the context's tuning state changed (lock held)."""
        tuning = tuning_json(view._dspex_records.values(), self._locks.get(cid, {}))
        if tuning != self._tuning.get(cid):
            self._tuning[cid] = tuning
            self._send({"type": "tuning", "context": cid, "tuning": tuning})

    def _on_run(self, cid: str, summary: Mapping[str, Any]) -> None:
        with self._lock:
            if self.closed or cid not in self._attached:
                return
            self._send({"type": "run", "context": cid, "run": run_json(summary)})
        # a run may have bridged the context: refresh its info outside the hot path
        try:
            self.sync()
        except Exception:
            log.debug("sync after run failed", exc_info=True)

    def _on_msg(self, msg: Mapping[str, Any]) -> None:
        data = msg.get("content", {}).get("data", {}) or {}
        kind = data.get("type")
        try:
            if kind == "request_snapshot":
                self.send_snapshot()
            elif kind == "edit":
                self._edit(data)
            else:
                with self._lock:
                    self._send({"type": "error", "message": f"unknown request type {kind!r}"})
        except Exception as exc:
            log.exception("dspex panel: request %r failed", kind)
            with self._lock:
                self._send({"type": "error", "message": f"{type(exc).__name__}: {exc}"})

    def _edit(self, data: Mapping[str, Any]) -> None:
        """``ctx.set(name, parse(type, text), source="panel")``, through the mirror."""
        cid, name, text = str(data.get("context", "")), str(data.get("name", "")), data.get("text")
        reply: dict[str, Any] = {
            "type": "edit_result",
            "request_id": str(data.get("request_id", "")),
        }
        reply.update(context=cid, name=name, ok=False, error=None, variable=None)
        attached = self._attached.get(cid)
        if attached is None:
            reply["error"] = f"unknown context {cid!r}"
        elif not isinstance(text, str):
            reply["error"] = "edit text must be a string"
        else:
            record: Any = None
            try:
                kind = attached.ctx.variable(name).type
                record = attached.view._dspex_write(name, parse(kind, text), source="panel")
                reply["ok"] = True
            except Exception as exc:
                reply["error"] = str(exc) or type(exc).__name__
                record = attached.view._dspex_records.get(name)  # the real, unchanged one
            if record is not None:
                reply["variable"] = variable_json(record, self._locks.get(cid, {}))
        with self._lock:
            self._send(reply)

    def close(self, send_close: bool = True) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for cid in list(self._attached):
                self._detach(cid)
        self.hub.drop(self)
        if send_close:
            with suppress(Exception):
                self.comm.close()


_hub: PanelHub | None = None
_hub_lock = threading.Lock()


def register(ipython: Any = None) -> PanelHub:
    """Register the ``dspex:panel`` comm target on the kernel's comm manager.

    Idempotent. Uses the ``comm`` package API (``comm.get_comm_manager()``),
    which ipykernel 7 points at the kernel's manager. With an IPython shell,
    also refreshes the panels after every cell (new contexts, backend, locks).
    """
    import comm

    from . import install_shell_hooks

    if ipython is not None:
        install_shell_hooks(ipython)
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = PanelHub(ipython)
        elif ipython is not None and _hub.shell is not ipython:
            _hub.shell = ipython
        hub = _hub
    comm.get_comm_manager().register_target(TARGET, hub.open_channel)
    events = getattr(ipython, "events", None)
    if events is not None:
        callbacks = events.callbacks.get("post_run_cell", [])
        if hub.post_run_cell not in callbacks:
            events.register("post_run_cell", hub.post_run_cell)
    return hub


def unregister(ipython: Any = None) -> None:
    """Stop serving panels: close their channels, drop the target and the cell hook."""
    import comm

    global _hub
    with _hub_lock:
        hub, _hub = _hub, None
    if hub is None:
        return
    hub.close()
    with suppress(Exception):
        comm.get_comm_manager().unregister_target(TARGET, hub.open_channel)
    events = getattr(ipython, "events", None) or getattr(hub.shell, "events", None)
    if events is not None:
        with suppress(ValueError):
            events.unregister("post_run_cell", hub.post_run_cell)
