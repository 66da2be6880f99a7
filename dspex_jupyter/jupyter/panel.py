"""Kernel side of the JupyterLab "DSPex" panel: the ``dspex:panel`` comm target.

The protocol is documented in ``docs/panel-protocol.md`` and defined once, in
machine-readable form, in ``docs/panel-protocol.schema.json`` (the tests check
that these messages and the TypeScript types in ``labextension/src/protocol.ts``
agree with it).

In short: the panel opens a comm on target ``dspex:panel``; the kernel answers
with a ``snapshot`` of every context it knows (the default context and every
``Context`` bound to a name in the user namespace), then pushes deltas
(``variable``, ``variable_deleted``, ``run``, ``context``, ``context_removed``)
as they happen. Every kernel message carries ``seq``, the channel's sequence
number (1, 2, 3, ... per comm, the snapshot included); a panel that sees a gap
asks for a fresh snapshot with ``request_snapshot``. ``edit`` sets a variable
from text, parsed by :func:`dspex_jupyter.variables.types.parse` for the
variable's type and validated by ``ctx.set``; the reply ``edit_result`` carries
either the new record or the error message and the real (unchanged) record, so
the panel can snap back.

Threads. Watch events arrive on the contexts' dispatcher threads, runs on
whatever thread ran the program, edits and cell hooks on the shell thread.
Sending from any thread is safe with ipykernel 7: ``comm.send`` ends in
``session.send`` on the IOPub ``BackgroundSocket``, which only appends to the
IOPub thread's event deque (one deque, FIFO) and wakes it. Each channel numbers
and sends its messages under one lock, so the IOPub order is the ``seq`` order.

Registration. ``%load_ext dspex_jupyter`` calls :func:`register`; the panel
itself also runs ``register(get_ipython())`` silently when it connects to a
Python kernel, so it works in notebooks that never loaded the extension.
Registering twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from ..context import Context
from ..errors import DSPexError
from ..program.module import json_safe as _jsonable
from ..variables.types import parse

__all__ = ["TARGET", "PROTOCOL", "MAX_RUNS", "register", "unregister", "PanelHub", "Channel"]

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


def variable_json(record: Any, locks: Mapping[str, str], source: str | None = None) -> dict:
    return {
        "name": record.name,
        "type": record.type,
        "value": _jsonable(record.value),
        "constraints": _jsonable(dict(record.constraints)),
        "version": int(record.version),
        "metadata": _jsonable(dict(record.metadata)),
        "source": str(source if source is not None else record.source),
        "timestamp": float(record.timestamp),
        "lock": locks.get(record.name),
    }


class PanelHub:
    """One per kernel: knows the contexts, owns the open channels, hooks the cells."""

    def __init__(self, shell: Any = None) -> None:
        self.shell = shell
        self.channels: list[Channel] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ contexts

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

    # ------------------------------------------------------------------ comm target

    def open_channel(self, comm: Any, open_msg: Mapping[str, Any] | None = None) -> None:
        """The comm target: a frontend panel opened a channel."""
        channel = Channel(self, comm)
        with self._lock:
            self.channels.append(channel)
        channel.start()

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


class Channel:
    """One open comm: its own sequence numbers, watches and run listeners."""

    def __init__(self, hub: PanelHub, comm: Any) -> None:
        self.hub = hub
        self.comm = comm
        self.seq = 0
        self.closed = False
        self._lock = threading.RLock()
        self._contexts: dict[str, Context] = {}
        self._subscriptions: dict[str, Any] = {}
        self._run_listeners: dict[str, Any] = {}
        self._sent_versions: dict[str, dict[str, int]] = {}
        self._sent_info: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, dict[str, str]] = {}
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)

    # ------------------------------------------------------------------ sending

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

    # ------------------------------------------------------------------ contexts

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

    def _context_json(self, cid: str, ctx: Context, labels: list[str]) -> dict[str, Any]:
        """The full state of one context; records what was sent."""
        info = self._info(cid, ctx, labels)
        locks = self._locks[cid]
        records = sorted(ctx.list(), key=lambda r: r.name)
        self._sent_versions[cid] = {r.name: r.version for r in records}
        self._sent_info[cid] = info
        runs = [_jsonable(dict(run)) for run in list(ctx.runs)[-MAX_RUNS:]]
        return {
            **info,
            "variables": [variable_json(r, locks) for r in records],
            "runs": runs,
        }

    def _attach(self, cid: str, ctx: Context) -> None:
        if cid in self._contexts:
            return
        self._contexts[cid] = ctx

        def on_event(event: Any, cid: str = cid, ctx: Context = ctx) -> None:
            self._on_event(cid, ctx, event)

        def on_run(summary: Mapping[str, Any], cid: str = cid) -> None:
            self._on_run(cid, summary)

        self._subscriptions[cid] = ctx.watch(None, on_event, signals=True)
        ctx.add_run_listener(on_run)
        self._run_listeners[cid] = on_run

    def _detach(self, cid: str) -> None:
        ctx = self._contexts.pop(cid, None)
        subscription = self._subscriptions.pop(cid, None)
        listener = self._run_listeners.pop(cid, None)
        self._sent_versions.pop(cid, None)
        self._sent_info.pop(cid, None)
        self._locks.pop(cid, None)
        if ctx is None:
            return
        if listener is not None:
            ctx.remove_run_listener(listener)
        if subscription is not None and not ctx.closed:
            try:
                ctx.unwatch(subscription)
            except Exception:
                log.debug("unwatch failed", exc_info=True)
        elif subscription is not None:
            subscription.close()

    def start(self) -> None:
        self.send_snapshot()

    def send_snapshot(self) -> None:
        with self._lock:
            current = self.hub.contexts()
            wanted = {context_id(ctx): (ctx, labels) for ctx, labels in current}
            for cid in [c for c in self._contexts if c not in wanted]:
                self._detach(cid)
            contexts = []
            for cid, (ctx, labels) in wanted.items():
                self._attach(cid, ctx)  # watch first: nothing is missed after the snapshot
                try:
                    contexts.append(self._context_json(cid, ctx, labels))
                except DSPexError:  # stopped while we looked
                    self._detach(cid)
            self._send({"type": "snapshot", "protocol": PROTOCOL, "contexts": contexts})

    def sync(self) -> None:
        """Send what changed in the set of contexts or in their info (not variables)."""
        with self._lock:
            if self.closed:
                return
            wanted = {context_id(ctx): (ctx, labels) for ctx, labels in self.hub.contexts()}
            for cid in [c for c in self._contexts if c not in wanted]:
                self._detach(cid)
                self._send({"type": "context_removed", "context": cid})
            for cid, (ctx, labels) in wanted.items():
                try:
                    if cid not in self._contexts:
                        self._attach(cid, ctx)
                        self._send(
                            {"type": "context", "context": self._context_json(cid, ctx, labels)}
                        )
                    elif self._info(cid, ctx, labels) != self._sent_info.get(cid):
                        self._send(
                            {"type": "context", "context": self._context_json(cid, ctx, labels)}
                        )
                except DSPexError:
                    self._detach(cid)
                    self._send({"type": "context_removed", "context": cid})

    # ------------------------------------------------------------------ events

    def _on_event(self, cid: str, ctx: Context, event: Any) -> None:
        with self._lock:
            sent = self._sent_versions.get(cid)
            if self.closed or sent is None:
                return
            if event.kind in ("locked", "unlocked"):
                # An optimizer took or left a lease (anywhere): resend the context's
                # info and variables with the new holders, without waiting for a cell.
                info = self._sent_info.get(cid)
                if info is not None:
                    try:
                        context = self._context_json(cid, ctx, info["labels"])
                    except DSPexError:
                        return
                    self._send({"type": "context", "context": context})
                return
            if event.kind == "dependency_changed":
                return
            if event.kind == "deleted":
                if sent.pop(event.name, None) is not None:
                    self._send(
                        {
                            "type": "variable_deleted",
                            "context": cid,
                            "name": event.name,
                            "version": int(event.version),
                        }
                    )
                return
            try:
                record = ctx.variable(event.name)
            except (KeyError, DSPexError):
                return  # deleted or stopped since; that event follows
            if event.name in sent and record.version <= sent[event.name]:
                return  # already sent (in the snapshot or a later delta)
            sent[event.name] = record.version
            source = event.source if record.version == event.version else record.source
            self._send(
                {
                    "type": "variable",
                    "context": cid,
                    "kind": "registered" if event.kind == "registered" else "set",
                    "variable": variable_json(record, self._locks.get(cid, {}), source),
                }
            )

    def _on_run(self, cid: str, summary: Mapping[str, Any]) -> None:
        with self._lock:
            if self.closed or cid not in self._contexts:
                return
            self._send({"type": "run", "context": cid, "run": _jsonable(dict(summary))})
        # a run may have bridged the context: refresh its info outside the hot path
        try:
            self.sync()
        except Exception:
            log.debug("sync after run failed", exc_info=True)

    # ------------------------------------------------------------------ requests

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
        request_id = str(data.get("request_id", ""))
        cid = str(data.get("context", ""))
        name = str(data.get("name", ""))
        text = data.get("text")
        ctx = self._contexts.get(cid)
        reply: dict[str, Any] = {
            "type": "edit_result",
            "request_id": request_id,
            "context": cid,
            "name": name,
        }
        if ctx is None:
            reply.update(ok=False, error=f"unknown context {cid!r}", variable=None)
        elif not isinstance(text, str):
            reply.update(ok=False, error="edit text must be a string", variable=None)
        else:
            try:
                record = ctx.variable(name)
                record = ctx.set(name, parse(record.type, text), source="panel")
                reply.update(ok=True, error=None)
            except Exception as exc:
                reply.update(ok=False, error=str(exc) or type(exc).__name__)
                try:
                    record = ctx.variable(name)
                except Exception:
                    record = None
            reply["variable"] = (
                None if record is None else variable_json(record, self._locks.get(cid, {}))
            )
        with self._lock:
            sent = self._sent_versions.get(cid)
            variable = reply.get("variable")
            if sent is not None and variable is not None:
                sent[name] = max(sent.get(name, 0), variable["version"])
            self._send(reply)

    # ------------------------------------------------------------------ closing

    def _on_close(self, msg: Any = None) -> None:
        self.close(send_close=False)

    def close(self, send_close: bool = True) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for cid in list(self._contexts):
                self._detach(cid)
        self.hub.drop(self)
        if send_close:
            try:
                self.comm.close()
            except Exception:
                log.debug("closing the comm failed", exc_info=True)


_hub: PanelHub | None = None
_hub_lock = threading.Lock()


def register(ipython: Any = None) -> PanelHub:
    """Register the ``dspex:panel`` comm target on the kernel's comm manager.

    Idempotent. Uses the ``comm`` package API (``comm.get_comm_manager()``),
    which ipykernel 7 points at the kernel's manager. With an IPython shell,
    also refreshes the panels after every cell (new contexts, backend, locks).
    """
    import comm

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
    manager = comm.get_comm_manager()
    try:
        manager.unregister_target(TARGET, hub.open_channel)
    except Exception:
        log.debug("unregister_target failed", exc_info=True)
    events = getattr(ipython, "events", None) or getattr(hub.shell, "events", None)
    if events is not None:
        try:
            events.unregister("post_run_cell", hub.post_run_cell)
        except ValueError:
            pass
