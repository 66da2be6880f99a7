"""Variable RPCs: define, write, delete, roll back, import; read, list, history, export.

Rights: "write" for RegisterVariable, SetVariable, UpdateVariables,
DeleteVariable, RollbackVariable (on each named variable) and ImportState
(session-wide); "read" for GetVariable(s), GetHistory (on each name) and
ListVariables, ExportState (session-wide). A write to a leased variable must
carry the lease id (``dspex-lease``), else ``LockedError``.
"""

from __future__ import annotations

from typing import Any

from ... import errors as E
from ...variables.table import define
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from .core import ServicerCore
from .rpc import Call, rpc

__all__ = ["VariablesMixin", "HISTORY_PAGE_BYTES"]

#: A GetHistory reply holds at most this much (always at least one record).
HISTORY_PAGE_BYTES = 4 * 1024 * 1024


def _named(request: Any) -> list[str]:
    return [request.name]


def _update_order(request: Any) -> list[str]:
    return list(request.order) or sorted(request.values_json)


def _snapshot_names(snapshot: Any) -> set[str]:
    variables = snapshot.get("variables") if isinstance(snapshot, dict) else None
    if not isinstance(variables, list):
        return set()
    return {v["name"] for v in variables if isinstance(v, dict) and isinstance(v.get("name"), str)}


def _batch_response(results: list[tuple[int, Any, pb.VariableRecord | None]]) -> Any:
    """The records and sequence numbers of a batch (neither batch kind deletes)."""
    written = [(seq, r) for seq, _, r in results if r is not None]
    return pb.BatchWriteResponse(records=[r for _, r in written], seqs=[s for s, _ in written])


class VariablesMixin(ServicerCore):
    # ------------------------------------------------------------------ writes

    @rpc("write", names=_named)
    def RegisterVariable(self, request: Any, call: Call) -> pb.WriteResponse:
        self._check_bytes(request.initial_json, f"the initial value of {request.name!r}")
        self._check_bytes(request.metadata_json, "the metadata")
        record, validator = define(
            request.name,
            request.type,
            C.loads(request.initial_json, "initial value"),
            constraints=C.loads_map(request.constraints_json, "constraints"),
            metadata=C.loads_map(request.metadata_json, "metadata"),
            source=request.source or "api",
        )
        with call.locked() as session:
            ((seq, _, stored),) = self._write(
                session, [record.name], lambda: [session.table.register(record, validator)]
            )
        return pb.WriteResponse(record=stored, seq=seq)

    @rpc("write", names=_named)
    def SetVariable(self, request: Any, call: Call) -> pb.WriteResponse:
        session = call.live
        self._check_bytes(request.value_json, f"the value of {request.name!r}")
        self._check_bytes(request.metadata_json, "the metadata")
        value = C.loads(request.value_json)
        metadata = C.loads_map(request.metadata_json, "metadata")
        expected = request.expected_version if request.HasField("expected_version") else None
        name = request.name

        def mutate() -> list[Any]:
            return [
                session.table.set(
                    name,
                    value,
                    metadata=metadata,
                    expected_version=expected,
                    source=request.source or "api",
                )[1]
            ]

        with call.locked():
            self._check_locks(session, call.caller.leases, [name])
            ((seq, _, stored),) = self._write(session, [name], mutate)
        return pb.WriteResponse(record=stored, seq=seq)

    @rpc("write", names=_update_order)
    def UpdateVariables(self, request: Any, call: Call) -> pb.BatchWriteResponse:
        session = call.live
        order = _update_order(request)
        if set(order) != set(request.values_json) or len(order) != len(set(order)):
            raise E.ValidationError("update order must name each updated variable once")
        for n in order:
            self._check_bytes(request.values_json[n], f"the value of {n!r}")
        self._check_bytes(request.metadata_json, "the metadata")
        updates = {n: C.loads(request.values_json[n], f"value of {n!r}") for n in order}
        metadata = C.loads_map(request.metadata_json, "metadata")
        expected = dict(request.expected_versions) or None

        def mutate() -> list[Any]:
            return session.table.update_many(
                updates,
                metadata=metadata,
                expected_versions=expected,
                source=request.source or "api",
            )[1]

        with call.locked():
            self._check_locks(session, call.caller.leases, order)
            results = self._write(session, order, mutate)
        return _batch_response(results)

    @rpc("write", names=_named)
    def DeleteVariable(self, request: Any, call: Call) -> pb.DeleteVariableResponse:
        with call.locked() as session:
            self._check_locks(session, call.caller.leases, [request.name])
            ((seq, event, _),) = self._write(
                session,
                [request.name],
                lambda: [session.table.delete(request.name, request.source or "api")],
            )
        return pb.DeleteVariableResponse(seq=seq, version=event.version)

    @rpc("write", names=_named)
    def RollbackVariable(self, request: Any, call: Call) -> pb.WriteResponse:
        with call.locked() as session:
            session.table.get(request.name)  # VariableNotFound first
            self._check_locks(session, call.caller.leases, [request.name])
            past = [
                r for r in session.history.get(request.name, ()) if r.version == request.version
            ]
            if not past:
                raise E.ValidationError(
                    f"{request.name}: version {request.version} is not in its history"
                )
            target = past[0]
            ((seq, _, stored),) = self._write(
                session,
                [request.name],
                lambda: [
                    session.table.set(
                        request.name,
                        target.value,
                        metadata={"rolled_back_to": request.version},
                        source=request.source or "rollback",
                    )[1]
                ],
            )
        return pb.WriteResponse(record=stored, seq=seq)

    @rpc("write")
    def ImportState(self, request: Any, call: Call) -> pb.BatchWriteResponse:
        snapshot = C.loads(request.snapshot_json, "snapshot")
        variables = snapshot.get("variables") if isinstance(snapshot, dict) else None
        for entry in variables if isinstance(variables, list) else ():
            if isinstance(entry, dict):
                self._check_bytes(
                    C.dumps(entry.get("value")), f"the value of {entry.get('name')!r}"
                )
        source = request.source if request.HasField("source") else None
        with call.locked() as session:
            if session.leases.by_id:
                touched = _snapshot_names(snapshot)
                if request.replace:
                    touched |= set(session.table.variables)
                self._check_locks(session, call.caller.leases, sorted(touched))
            results = self._write(
                session,
                None,
                lambda: session.table.import_(snapshot, replace=request.replace, source=source),
            )
        return _batch_response(results)

    # ------------------------------------------------------------------ reads

    @rpc("read", names=_named)
    def GetVariable(self, request: Any, call: Call) -> pb.VariableRecord:
        with call.locked() as session:
            return C.record_to_pb(session.table.get(request.name))

    @rpc("read", names=lambda request: list(request.names))
    def GetVariables(self, request: Any, call: Call) -> pb.VariablesResponse:
        with call.locked() as session:
            records = [session.table.get(n) for n in request.names]
            seq = session.last_seq
        return pb.VariablesResponse(records=[C.record_to_pb(r) for r in records], seq=seq)

    @rpc("read")
    def ListVariables(self, request: Any, call: Call) -> pb.VariablesResponse:
        with call.locked() as session:
            records, seq = session.table.records(), session.last_seq
        return pb.VariablesResponse(records=[C.record_to_pb(r) for r in records], seq=seq)

    @rpc("read", names=_named)
    def GetHistory(self, request: Any, call: Call) -> pb.VariablesResponse:
        """The newest ``limit`` records (below ``before_version``, if given), oldest first,
        in pages that fit a message: ``more`` says older ones remain."""
        with call.locked() as session:
            session.table.get(request.name)
            records = list(session.history.get(request.name, ()))
        if request.before_version:
            records = [r for r in records if r.version < request.before_version]
        if request.limit:
            records = records[-request.limit :]
        page: list[pb.VariableRecord] = []
        size = 0
        for record in reversed(records):
            message = C.record_to_pb(record)
            size += message.ByteSize() + 8
            if page and size > HISTORY_PAGE_BYTES:
                break
            page.append(message)
        page.reverse()
        return pb.VariablesResponse(records=page, more=len(page) < len(records))

    @rpc("read")
    def ExportState(self, request: Any, call: Call) -> pb.ExportStateResponse:
        with call.locked() as session:
            snapshot, seq = session.table.export(), session.last_seq
        return pb.ExportStateResponse(snapshot_json=C.dumps(snapshot), seq=seq)
