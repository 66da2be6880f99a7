"""ExecuteModule: run a DSPy module in the worker pool, bindings read from the session.

Needs the "execute" right on the session whatever the bindings, plus "read"
on every bound variable. Tools and the LM endpoint follow the server's
:class:`~.policy.ExecutionPolicy`: a request naming an unregistered tool fails
here, before a worker imports anything; so does a request carrying
notebook-defined code to a server without ``--allow-code``. The work itself (spec checks,
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

    @rpc("execute")
    def ExecuteModule(self, request: Any, call: Call) -> pb.ExecuteModuleResponse:
        from ..code import code_whats, inline_code
        from ..execution import execute_module_request

        session = call.live
        spec = C.loads(request.module_spec_json, "module spec")
        # Notebook-defined code: every piece sent or named must be allowed, before anything else.
        for obj in request.code:
            self.policy.check_code(obj.what or "code")
        spec = inline_code(spec, [(obj.what, obj.pickle) for obj in request.code])
        whats = code_whats(spec)
        for what in whats:
            self.policy.check_code(what)
        inputs = C.loads_map(request.inputs_json, "inputs") or {}
        lm_config = C.loads_map(request.lm_config_json, "lm config") or {}
        if request.timeout_s < 0:
            raise E.ValidationError(f"timeout_s must be >= 0, got {request.timeout_s}")
        with call.locked():  # "execute" on the session, then "read" on what it binds
            for name in sorted(set(request.bindings.values())):
                session.acl.require(call.caller.principal, "read", name, session.id)
        spec = self.policy.resolve_spec(spec)
        lm_config = self.policy.lm_config(lm_config)

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
            allow_code=bool(whats),  # checked above: the worker may load this run's code
        )
        return pb.ExecuteModuleResponse(result_json=C.dumps(result))
