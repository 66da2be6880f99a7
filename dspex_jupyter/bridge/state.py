"""``BridgedState``: the StateProvider of one bridge session, over gRPC.

It is three parts, one file each:

* this module: the variable API (register, get, set, ..., history, rollback),
  module execution and the session's lifecycle;
* :mod:`~dspex_jupyter.bridge.state_stream`: the ``WatchVariables`` stream that
  keeps a coherent local cache (reads are served from it while it is live) and
  feeds the watchers, with resume and resync after a server restart;
* :mod:`~dspex_jupyter.bridge.state_production`: dependencies, optimizer locks
  (:class:`Lease`; every call carries the leases held) and access control.

Writes go to the server and put the record it returns into the cache
(read-your-writes); see ``docs/architecture.md`` for the watch protocol.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError, VariableNotFound
from ..state.provider import StateProvider
from ..variables.record import Variable
from ..variables.types import check_name, normalize_type
from . import convert
from ._proto import dspex_bridge_pb2 as pb
from .cancel import current_scope
from .code import lift_code
from .state_compile import CompileCalls
from .state_production import Lease, ProductionCalls
from .state_stream import SYNC_TIMEOUT_S, WRITE_DELIVERY_TIMEOUT_S, WatchedCache

if TYPE_CHECKING:
    from .client import BridgeClient

__all__ = ["BridgedState", "Lease", "SYNC_TIMEOUT_S", "WRITE_DELIVERY_TIMEOUT_S"]

log = logging.getLogger("dspex_jupyter.bridged")


class BridgedState(WatchedCache, ProductionCalls, CompileCalls, StateProvider):
    """Variables of one bridge session, cached locally and kept coherent by a watch stream."""

    name = "bridged"
    requires_bridge = True

    def __init__(
        self,
        client: BridgeClient,
        session_id: str,
        *,
        join: bool = False,
        ttl_s: float | None = None,
        on_close: Callable[[], Any] | None = None,
        cleanup_on_close: bool = False,
        owns_client: bool = True,
    ) -> None:
        self._pb = pb
        self._c = convert
        self.client = client
        self.address: str = client.address
        self.session_id = session_id
        self._md = client.metadata
        self._stub = client.stub
        self._on_close = on_close
        self._cleanup_on_close = cleanup_on_close
        self._owns_client = owns_client
        if ttl_s is not None and (not isinstance(ttl_s, (int, float)) or ttl_s < 0):
            raise ValidationError(f"session_ttl_s must be a number >= 0, got {ttl_s!r}")
        self.session = client.call(
            "InitializeSession",
            pb.InitializeSessionRequest(
                session_id=session_id, ttl_s=float(ttl_s or 0), must_exist=join
            ),
        )
        self._init_leases()
        self._start_stream()

    # ------------------------------------------------------------------ core

    def register(
        self,
        name: str,
        type: str | type,
        initial: Any,
        *,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> Variable:
        check_name(name)
        c = self._c
        request = self._pb.RegisterVariableRequest(
            session_id=self.session_id,
            name=name,
            type=normalize_type(type),
            initial_json=c.dumps(initial),
            constraints_json=_map_json(c, constraints, "constraints"),
            metadata_json=_map_json(c, metadata, "metadata"),
            source=str(source),
        )
        reply = self._rpc("RegisterVariable", request)
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    def get(self, name: str) -> Variable:
        if self._live:
            try:
                return self._cache[name]
            except KeyError:
                pass  # maybe just created elsewhere and not streamed yet: ask the server
            except TypeError:
                raise VariableNotFound(str(name), self._cache) from None
        if not isinstance(name, str):
            raise VariableNotFound(str(name))
        return self._fetch(name)

    def _fetch(self, name: str) -> Variable:
        """The server's record of ``name`` (VariableNotFound if it has none)."""
        return self._record(
            self._rpc(
                "GetVariable", self._pb.GetVariableRequest(session_id=self.session_id, name=name)
            )
        )

    def set(
        self,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        request = self._pb.SetVariableRequest(
            session_id=self.session_id,
            name=name,
            value_json=self._c.dumps(value),
            metadata_json=_map_json(self._c, metadata, "metadata"),
            source=str(source),
        )
        if expected_version is not None:
            request.expected_version = _version(expected_version)
        reply = self._rpc("SetVariable", request)
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    def delete(self, name: str, *, source: str = "api") -> None:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        reply = self._rpc(
            "DeleteVariable",
            self._pb.DeleteVariableRequest(
                session_id=self.session_id, name=name, source=str(source)
            ),
        )
        self._after_write([(reply.seq, name, None)])

    def list(self) -> list[Variable]:
        if self._live:
            with self._cond:
                records = list(self._cache.values())
            return sorted(records, key=lambda v: v.name)
        reply = self._rpc("ListVariables", self._pb.SessionRequest(session_id=self.session_id))
        return [self._record(r) for r in reply.records]

    def get_many(self, names: Iterable[str]) -> dict[str, Variable]:
        if isinstance(names, str):
            raise ValidationError("get_many expects a list of names, not a single string")
        names = list(names)
        if self._live:
            with self._cond:  # a consistent view: batches land in the cache whole
                snapshot = dict(self._cache)
            try:
                return {name: snapshot[name] for name in names}
            except (KeyError, TypeError):
                pass  # a miss may be too new to be streamed: the server answers atomically
        if not all(isinstance(n, str) for n in names):
            bad = next(n for n in names if not isinstance(n, str))
            raise VariableNotFound(str(bad))
        reply = self._rpc(
            "GetVariables", self._pb.GetVariablesRequest(session_id=self.session_id, names=names)
        )
        return {r.name: self._record(r) for r in reply.records}

    def update_many(
        self,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        if not isinstance(updates, Mapping):
            raise ValidationError(f"update_many expects a mapping name -> value, got {updates!r}")
        if not all(isinstance(n, str) for n in updates):
            bad = next(n for n in updates if not isinstance(n, str))
            raise VariableNotFound(str(bad), self._cache)
        if expected_versions is not None and not isinstance(expected_versions, Mapping):
            raise ValidationError(f"expected_versions must be a mapping, got {expected_versions!r}")
        c = self._c
        request = self._pb.UpdateVariablesRequest(
            session_id=self.session_id,
            values_json={n: c.dumps(v) for n, v in updates.items()},
            metadata_json=_map_json(c, metadata, "metadata"),
            expected_versions={n: _version(v) for n, v in (expected_versions or {}).items()},
            source=str(source),
            order=list(updates),
        )
        reply = self._rpc("UpdateVariables", request)
        records = [self._record(r) for r in reply.records]
        self._after_write([(s, r.name, r) for s, r in zip(reply.seqs, records, strict=True)])
        return {r.name: r for r in records}

    def export_state(self) -> dict[str, Any]:
        reply = self._rpc("ExportState", self._pb.SessionRequest(session_id=self.session_id))
        return self._c.loads(reply.snapshot_json, "snapshot")

    def import_state(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> None:
        if not isinstance(snapshot, Mapping):
            raise ValidationError("not a dspex-state/1 snapshot")
        request = self._pb.ImportStateRequest(
            session_id=self.session_id,
            snapshot_json=self._c.dumps(dict(snapshot)),
            replace=bool(replace),
        )
        if source is not None:
            request.source = str(source)
        reply = self._rpc("ImportState", request)
        records = [self._record(r) for r in reply.records]
        self._after_write([(s, r.name, r) for s, r in zip(reply.seqs, records, strict=True)])

    # ------------------------------------------------------------------ history

    def history(self, name: str, limit: int | None = None) -> builtins.list[Variable]:
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ValidationError(f"limit must be a positive int or None, got {limit!r}")
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        records: builtins.list[Any] = []
        before = 0
        while True:  # the server pages a long history (each reply fits a message)
            reply = self._rpc(
                "GetHistory",
                self._pb.HistoryRequest(
                    session_id=self.session_id,
                    name=name,
                    limit=(limit - len(records)) if limit else 0,
                    before_version=before,
                ),
            )
            records[:0] = reply.records
            if not reply.more or not reply.records or (limit and len(records) >= limit):
                break
            before = reply.records[0].version
        return [self._record(r) for r in records]

    def rollback(self, name: str, version: int) -> Variable:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        reply = self._rpc(
            "RollbackVariable",
            self._pb.RollbackRequest(
                session_id=self.session_id, name=name, version=_version(version)
            ),
        )
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    # ------------------------------------------------------------------ module execution

    def execute_module(
        self,
        module_spec: Mapping[str, Any],
        inputs: Mapping[str, Any],
        bindings: Mapping[str, str],
        lm_config: Mapping[str, Any],
        *,
        timeout_s: float = 300.0,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a bridged module in the server's workers (see ``bridge.execution``).

        ``overrides`` (variable -> value) replace the session's values for this
        call only; the server validates them and never writes them.

        The LM configuration (API key included) travels with this call only; the
        server never stores it. Made inside a :class:`~.cancel.CancelScope`
        (``with scope.active():``), the call is cancelled with the scope: the
        server then drops the run from its worker pool.
        """
        if not isinstance(bindings, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in bindings.items()
        ):
            raise ValidationError(
                f"bindings must map parameter names to variable names, got {bindings!r}"
            )
        c = self._c
        # Notebook-defined code travels as CodeObject bytes, not base64 inside the JSON.
        spec, code = lift_code(dict(module_spec))
        request = self._pb.ExecuteModuleRequest(
            session_id=self.session_id,
            module_spec_json=c.dumps(spec),
            code=[self._pb.CodeObject(what=what, pickle=payload) for what, payload in code],
            inputs_json=_map_json(c, inputs, "inputs"),
            bindings=dict(bindings),
            lm_config_json=_map_json(c, lm_config, "lm config"),
            timeout_s=float(timeout_s),
            overrides_json=_map_json(c, overrides, "overrides") if overrides else "",
        )
        reply = self.client.call(
            "ExecuteModule", request, timeout=timeout_s + 30, scope=current_scope()
        )
        return c.loads(reply.result_json, "module result")

    # ------------------------------------------------------------------ lifecycle

    def heartbeat(self) -> Any:
        """Refresh the session's TTL (an open watch stream also keeps it alive)."""
        return self._rpc("Heartbeat", self._pb.SessionRequest(session_id=self.session_id))

    def close(self) -> None:
        self._release_leases()
        if not self._stop_stream():
            return
        try:
            if self._cleanup_on_close:
                try:
                    self._rpc("CleanupSession", self._pb.SessionRequest(session_id=self.session_id))
                except Exception:
                    log.debug("cleanup of session %s failed", self.session_id, exc_info=True)
            if self._owns_client:
                self.client.close()
        finally:
            if self._on_close is not None:
                self._on_close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("live" if self._live else "syncing")
        return f"<BridgedState {self.address} session={self.session_id[:8]} {state}>"


def _map_json(convert: Any, mapping: Any, what: str) -> str:
    if mapping is None:
        return ""
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{what} must be a mapping, got {mapping!r}")
    return convert.dumps_map(mapping)


def _version(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"a version must be an int, got {value!r}")
    return value
