"""CompileProgram: a DSPy optimizer over a program's bridged modules, in a worker.

Needs "optimize" on the session (a compile changes what the program does),
"execute" (it runs the modules many times) and "read" on every variable the
modules bind. Tools and the LM endpoint follow the server's
:class:`~.policy.ExecutionPolicy`, as for ``ExecuteModule``. The compile runs
on a thread of its own while this handler streams its progress; the result
(the modules' states) is the last message. Nothing is written to the session.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ... import errors as E
from ...variables.record import to_json_value
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from .core import ServicerCore
from .rpc import Call, rpc

__all__ = ["CompileMixin"]

_DONE = object()


class CompileMixin(ServicerCore):
    _worker_pool: Callable[[], Any]  # ExecuteMixin's: the servicer composes both

    @rpc("optimize")
    def CompileProgram(self, request: Any, call: Call) -> Iterator[pb.CompileProgramMessage]:
        from ..compiling import compile_request

        session = call.live
        job = C.loads_map(request.job_json, "compile job") or {}
        lm_config = C.loads_map(request.lm_config_json, "lm config") or {}
        if request.timeout_s < 0:
            raise E.ValidationError(f"timeout_s must be >= 0, got {request.timeout_s}")
        modules = job.get("modules")
        if not isinstance(modules, list):
            raise E.ProgramError("a compile job needs a list of modules")
        names = sorted(
            {
                v
                for m in modules
                if isinstance(m, dict) and isinstance(m.get("bindings"), dict)
                for v in m["bindings"].values()
            }
        )
        with call.locked():  # "optimize" on the session, then "execute", then "read"
            principal = call.caller.principal
            session.acl.require(principal, "execute", None, session.id)
            for name in names:
                session.acl.require(principal, "read", name, session.id)
        job = {**job, "modules": [self.policy.resolve_spec(m) for m in modules]}
        lm_config = self.policy.lm_config(lm_config)
        pool = self._worker_pool()

        def lookup(name: str) -> tuple[Any, int]:
            with session.lock:
                record = session.table.get(name)
            return to_json_value(record.value), record.version

        events: queue.Queue[Any] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = compile_request(
                    pool,
                    job,
                    lm_config,
                    lookup,
                    progress=events.put,
                    on_cancel=call.context.add_callback,
                    timeout=request.timeout_s or 3600.0,
                )
            except BaseException as exc:  # reported to the caller below
                outcome["error"] = exc
            finally:
                events.put(_DONE)

        threading.Thread(target=work, name="dspex-compile", daemon=True).start()
        while True:
            event = events.get()
            if event is _DONE:
                break
            yield pb.CompileProgramMessage(progress_json=C.dumps(event))
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, E.DSPexError):
                raise error
            raise E.ModuleExecutionError(f"the compile failed: {type(error).__name__}: {error}")
        yield pb.CompileProgramMessage(result_json=C.dumps(outcome["result"]))
