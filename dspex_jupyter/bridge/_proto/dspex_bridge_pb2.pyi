from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VariableRecord(_message.Message):
    __slots__ = ("name", "type", "value_json", "constraints_json", "version", "metadata_json", "source", "timestamp")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    value_json: str
    constraints_json: str
    version: int
    metadata_json: str
    source: str
    timestamp: float
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., value_json: _Optional[str] = ..., constraints_json: _Optional[str] = ..., version: _Optional[int] = ..., metadata_json: _Optional[str] = ..., source: _Optional[str] = ..., timestamp: _Optional[float] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "name", "kind", "old_value_json", "new_value_json", "version", "source", "timestamp", "metadata_json", "record", "more")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    name: str
    kind: str
    old_value_json: str
    new_value_json: str
    version: int
    source: str
    timestamp: float
    metadata_json: str
    record: VariableRecord
    more: bool
    def __init__(self, seq: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., old_value_json: _Optional[str] = ..., new_value_json: _Optional[str] = ..., version: _Optional[int] = ..., source: _Optional[str] = ..., timestamp: _Optional[float] = ..., metadata_json: _Optional[str] = ..., record: _Optional[_Union[VariableRecord, _Mapping]] = ..., more: _Optional[bool] = ...) -> None: ...

class InitializeSessionRequest(_message.Message):
    __slots__ = ("session_id", "ttl_s", "must_exist")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    MUST_EXIST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    ttl_s: float
    must_exist: bool
    def __init__(self, session_id: _Optional[str] = ..., ttl_s: _Optional[float] = ..., must_exist: _Optional[bool] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "ttl_s", "created_at", "expires_at", "last_seq", "variable_count", "created")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    ttl_s: float
    created_at: float
    expires_at: float
    last_seq: int
    variable_count: int
    created: bool
    def __init__(self, session_id: _Optional[str] = ..., ttl_s: _Optional[float] = ..., created_at: _Optional[float] = ..., expires_at: _Optional[float] = ..., last_seq: _Optional[int] = ..., variable_count: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CleanupSessionResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class RegisterVariableRequest(_message.Message):
    __slots__ = ("session_id", "name", "type", "initial_json", "constraints_json", "metadata_json", "source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    type: str
    initial_json: str
    constraints_json: str
    metadata_json: str
    source: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., initial_json: _Optional[str] = ..., constraints_json: _Optional[str] = ..., metadata_json: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("record", "seq")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    record: VariableRecord
    seq: int
    def __init__(self, record: _Optional[_Union[VariableRecord, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...

class GetVariableRequest(_message.Message):
    __slots__ = ("session_id", "name")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetVariablesRequest(_message.Message):
    __slots__ = ("session_id", "names")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class VariablesResponse(_message.Message):
    __slots__ = ("records", "seq", "more")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[VariableRecord]
    seq: int
    more: bool
    def __init__(self, records: _Optional[_Iterable[_Union[VariableRecord, _Mapping]]] = ..., seq: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class SetVariableRequest(_message.Message):
    __slots__ = ("session_id", "name", "value_json", "metadata_json", "expected_version", "source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    value_json: str
    metadata_json: str
    expected_version: int
    source: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., value_json: _Optional[str] = ..., metadata_json: _Optional[str] = ..., expected_version: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class UpdateVariablesRequest(_message.Message):
    __slots__ = ("session_id", "values_json", "metadata_json", "expected_versions", "source", "order")
    class ValuesJsonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExpectedVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    values_json: _containers.ScalarMap[str, str]
    metadata_json: str
    expected_versions: _containers.ScalarMap[str, int]
    source: str
    order: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., values_json: _Optional[_Mapping[str, str]] = ..., metadata_json: _Optional[str] = ..., expected_versions: _Optional[_Mapping[str, int]] = ..., source: _Optional[str] = ..., order: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchWriteResponse(_message.Message):
    __slots__ = ("records", "seqs")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SEQS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[VariableRecord]
    seqs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, records: _Optional[_Iterable[_Union[VariableRecord, _Mapping]]] = ..., seqs: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteVariableRequest(_message.Message):
    __slots__ = ("session_id", "name", "source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    source: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class DeleteVariableResponse(_message.Message):
    __slots__ = ("seq", "version")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    seq: int
    version: int
    def __init__(self, seq: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("session_id", "name", "limit", "before_version")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    limit: int
    before_version: int
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., limit: _Optional[int] = ..., before_version: _Optional[int] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("session_id", "name", "version", "source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    version: int
    source: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class ExportStateResponse(_message.Message):
    __slots__ = ("snapshot_json", "seq")
    SNAPSHOT_JSON_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    snapshot_json: str
    seq: int
    def __init__(self, snapshot_json: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class ImportStateRequest(_message.Message):
    __slots__ = ("session_id", "snapshot_json", "replace", "source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    snapshot_json: str
    replace: bool
    source: str
    def __init__(self, session_id: _Optional[str] = ..., snapshot_json: _Optional[str] = ..., replace: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("session_id", "names", "resume", "after_seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    names: _containers.RepeatedScalarFieldContainer[str]
    resume: bool
    after_seq: int
    def __init__(self, session_id: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., resume: _Optional[bool] = ..., after_seq: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("records", "seq")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[VariableRecord]
    seq: int
    def __init__(self, records: _Optional[_Iterable[_Union[VariableRecord, _Mapping]]] = ..., seq: _Optional[int] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class WatchMessage(_message.Message):
    __slots__ = ("event", "snapshot", "caught_up")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    event: Event
    snapshot: Snapshot
    caught_up: CaughtUp
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ...) -> None: ...

class ExecuteModuleRequest(_message.Message):
    __slots__ = ("session_id", "module_spec_json", "inputs_json", "bindings", "lm_config_json", "timeout_s", "overrides_json", "code")
    class BindingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    LM_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_JSON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    module_spec_json: str
    inputs_json: str
    bindings: _containers.ScalarMap[str, str]
    lm_config_json: str
    timeout_s: float
    overrides_json: str
    code: _containers.RepeatedCompositeFieldContainer[CodeObject]
    def __init__(self, session_id: _Optional[str] = ..., module_spec_json: _Optional[str] = ..., inputs_json: _Optional[str] = ..., bindings: _Optional[_Mapping[str, str]] = ..., lm_config_json: _Optional[str] = ..., timeout_s: _Optional[float] = ..., overrides_json: _Optional[str] = ..., code: _Optional[_Iterable[_Union[CodeObject, _Mapping]]] = ...) -> None: ...

class CodeObject(_message.Message):
    __slots__ = ("what", "pickle")
    WHAT_FIELD_NUMBER: _ClassVar[int]
    PICKLE_FIELD_NUMBER: _ClassVar[int]
    what: str
    pickle: bytes
    def __init__(self, what: _Optional[str] = ..., pickle: _Optional[bytes] = ...) -> None: ...

class ExecuteModuleResponse(_message.Message):
    __slots__ = ("result_json",)
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    def __init__(self, result_json: _Optional[str] = ...) -> None: ...

class CompileProgramRequest(_message.Message):
    __slots__ = ("session_id", "job_json", "lm_config_json", "timeout_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_JSON_FIELD_NUMBER: _ClassVar[int]
    LM_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    job_json: str
    lm_config_json: str
    timeout_s: float
    def __init__(self, session_id: _Optional[str] = ..., job_json: _Optional[str] = ..., lm_config_json: _Optional[str] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class CompileProgramMessage(_message.Message):
    __slots__ = ("progress_json", "result_json")
    PROGRESS_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    progress_json: str
    result_json: str
    def __init__(self, progress_json: _Optional[str] = ..., result_json: _Optional[str] = ...) -> None: ...

class DependencyRequest(_message.Message):
    __slots__ = ("session_id", "name", "depends_on")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    depends_on: str
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., depends_on: _Optional[str] = ...) -> None: ...

class NamesResponse(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class AcquireLockRequest(_message.Message):
    __slots__ = ("session_id", "names", "holder", "ttl_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    names: _containers.RepeatedScalarFieldContainer[str]
    holder: str
    ttl_s: float
    def __init__(self, session_id: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., holder: _Optional[str] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("lease_id", "holder", "names", "expires_at", "ttl_s")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    holder: str
    names: _containers.RepeatedScalarFieldContainer[str]
    expires_at: float
    ttl_s: float
    def __init__(self, lease_id: _Optional[str] = ..., holder: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., expires_at: _Optional[float] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("session_id", "lease_id", "ttl_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    lease_id: str
    ttl_s: float
    def __init__(self, session_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class ReleaseLockResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...

class LocksResponse(_message.Message):
    __slots__ = ("holders", "leases")
    class HoldersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    holders: _containers.ScalarMap[str, str]
    leases: _containers.RepeatedCompositeFieldContainer[Lease]
    def __init__(self, holders: _Optional[_Mapping[str, str]] = ..., leases: _Optional[_Iterable[_Union[Lease, _Mapping]]] = ...) -> None: ...

class GrantRequest(_message.Message):
    __slots__ = ("session_id", "principal", "rights", "variable")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    principal: str
    rights: _containers.RepeatedScalarFieldContainer[str]
    variable: str
    def __init__(self, session_id: _Optional[str] = ..., principal: _Optional[str] = ..., rights: _Optional[_Iterable[str]] = ..., variable: _Optional[str] = ...) -> None: ...

class PermissionsRequest(_message.Message):
    __slots__ = ("session_id", "principal")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    principal: str
    def __init__(self, session_id: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class PermissionsResponse(_message.Message):
    __slots__ = ("permissions_json",)
    PERMISSIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    permissions_json: str
    def __init__(self, permissions_json: _Optional[str] = ...) -> None: ...
