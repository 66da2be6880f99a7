"""ExecuteModule: run a DSPy module in the worker pool, bindings read from the session.

Needs the "read" right on every bound variable. The work itself (spec checks,
binding resolution, the worker round trip) is ``bridge/execution.py``; this
handler only parses the request, checks access and hands the pool over.
"""

from __future__ import annotations

from typing import Any

from ... import errors as E
from ...variables.record import to_json_value
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from .core import ServicerCore
from .rpc import Call, rpc

__all__ = ["ExecuteMixin"]


class ExecuteMixin(ServicerCore):
    def _worker_pool(self) -> Any:
        """The pool of DSPy worker processes, started on the first module run."""
        with self._pool_lock:
            if self._pool is None:
                if self._closing:
                    raise E.BridgeUnavailable("the bridge server is shutting down")
                from ..workers import WorkerPool

                pool = WorkerPool(self.workers) if self.workers else WorkerPool()
                self._pool = pool.start()
            return self._pool

    def close_workers(self) -> None:
        with self._pool_lock:
            self._closing = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @rpc("read", names=lambda request: sorted(set(request.bindings.values())))
    def ExecuteModule(self, request: Any, call: Call) -> pb.ExecuteModuleResponse:
        from ..execution import execute_module_request

        session = call.live
        spec = C.loads(request.module_spec_json, "module spec")
        inputs = C.loads_map(request.inputs_json, "inputs") or {}
        lm_config = C.loads_map(request.lm_config_json, "lm config") or {}
        if request.timeout_s < 0:
            raise E.ValidationError(f"timeout_s must be >= 0, got {request.timeout_s}")
        call.check()

        def lookup(name: str) -> tuple[Any, int]:
            with session.lock:
                record = session.table.get(name)
            return to_json_value(record.value), record.version

        def check(name: str, value: Any) -> Any:  # validate an override, write nothing
            with session.lock:
                return to_json_value(session.table.prepare_set(name, value).value)

        result = execute_module_request(
            self._worker_pool(),
            spec,
            inputs,
            dict(request.bindings),
            lm_config,
            lookup,
            timeout=request.timeout_s or 300.0,
            overrides=C.loads_map(request.overrides_json, "overrides") or {},
            check_override=check,
            # the kernel cancelled its call (Ctrl-C, a timed-out example): drop the run
            on_cancel=call.context.add_callback,
        )
        return pb.ExecuteModuleResponse(result_json=C.dumps(result))
