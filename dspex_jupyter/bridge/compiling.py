"""The server side of one ``CompileProgram`` call: resolve bindings, run in a worker.

A compile is one job on one worker process (``op: "compile"``, run by
``compile_worker.compile_steps``); its progress lines come back while it runs
and are handed to ``progress(event)`` (the gRPC handler streams them). The
caller going away cancels the job (``WorkerPool.cancel``), like a module run;
a worker that dies mid-compile fails this compile only. Nothing is written to
the session here: the kernel stores the states it gets back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .. import errors as _errors
from ..errors import ModuleExecutionError, ProgramError, ValidationError
from .execution import _default_lm, check_module_spec, resolve_bindings
from .worker_process import ERROR_TYPES

__all__ = ["compile_request"]


def compile_request(
    pool: Any,
    job: Mapping[str, Any],
    lm_config: Mapping[str, Any],
    lookup: Callable[[str], tuple[Any, int]],
    *,
    progress: Callable[[dict[str, Any]], None],
    on_cancel: Callable[[Callable[[], None]], bool] | None = None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run ``job`` (modules, trainset, valset, input_keys, metric, optimizer, options)."""
    modules: Sequence[Any] = job.get("modules") or []
    if not isinstance(modules, list) or not modules:
        raise ProgramError("a compile needs the program's bridged modules")
    bounds, used = [], {}
    for spec in modules:
        module = check_module_spec(spec)
        bound, seen = resolve_bindings(module.bindings, lookup)
        bounds.append(bound)
        used.update(seen)
    for key in ("trainset", "input_keys"):
        if not isinstance(job.get(key), list) or not job.get(key):
            raise ValidationError(f"a compile needs a non-empty {key}")
    lm_config, _loaded = _default_lm(pool, lm_config, bounds[0])
    message = {
        "op": "compile",
        "lm": dict(lm_config),
        "job": {
            "modules": list(modules),
            "bounds": bounds,
            "trainset": job["trainset"],
            "valset": job.get("valset"),
            "input_keys": job["input_keys"],
            "metric": job["metric"],
            "optimizer": job["optimizer"],
            "options": job.get("options") or {},
        },
    }
    start = time.perf_counter()
    future = pool.submit_message(message, progress)
    if on_cancel is not None and not on_cancel(lambda: pool.cancel(future)):
        pool.cancel(future)
    try:
        reply = future.result(timeout=timeout)
    except FutureTimeout:
        pool.cancel(future, "the compile timed out")
        raise ModuleExecutionError(f"the compile did not finish within {timeout:g} s") from None
    if not reply.get("ok"):
        error = reply.get("error") or {}
        cls = ERROR_TYPES.get(str(error.get("type")), ModuleExecutionError)
        if cls is _errors.VariableNotFound:
            cls = ModuleExecutionError
        raise cls(error.get("message") or "the compile failed")
    result = dict(reply["result"])
    result["variables"] = used
    result["total_s"] = time.perf_counter() - start
    result["worker"] = {"pid": getattr(future, "worker_pid", None)}
    return result
