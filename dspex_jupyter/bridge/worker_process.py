"""The worker process's side of the ``WorkerPool`` protocol (see ``bridge/workers.py``).

Started by the pool as a fresh interpreter; it reads run and cancel messages on
stdin, runs each run on a thread of its own (DSPy waits on the LM most of the
time) and writes one reply line per run on the protocol pipe. Kept apart from
the pool so the server-side code and the process entry point stay small.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from .. import errors as _errors
from ..errors import ModuleExecutionError

__all__ = ["worker_main", "ERROR_TYPES"]

ERROR_TYPES = {  # the error types a worker reply may name, most specific first
    name: getattr(_errors, name)
    for name in (
        "AccessDenied",
        "ProgramError",
        "ValidationError",
        "LocalLMUnavailable",
        "ModuleExecutionError",
    )
}


def worker_main() -> None:
    """Entry point of a worker process (see the module docstring for the protocol)."""
    from concurrent.futures import ThreadPoolExecutor

    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints (user code, libraries) go to stderr, not the protocol
    sys.stdout = sys.stderr
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    write_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        with write_lock:
            protocol.write(data)

    def warm() -> None:
        start = time.perf_counter()
        try:
            from .execution import prewarm

            prewarm()
            send({"op": "ready", "pid": os.getpid(), "warm_s": time.perf_counter() - start})
        except Exception as exc:  # runs will report the real error
            send({"op": "ready", "pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})

    live: set[Any] = set()  # run ids accepted and not finished
    cancelled: set[Any] = set()  # ... of which the pool cancelled these

    def handle(message: dict[str, Any]) -> None:
        from .execution import run_module, scrub

        lm = message.get("lm") or {}
        run_id = message.get("id")
        try:
            if run_id in cancelled:  # cancelled while queued: never start it
                raise ModuleExecutionError("the run was cancelled before it started")
            if message.get("op") == "compile":
                from .compile_worker import compile_steps

                def progress(event: dict[str, Any]) -> None:
                    send({"op": "progress", "id": run_id, "event": event})

                result = compile_steps(
                    **message["job"],
                    lm_config=lm,
                    progress=progress,
                    cancelled=lambda: run_id in cancelled,
                )
            else:
                result = run_module(
                    message["module"],
                    message["inputs"],
                    message["bound"],
                    lm,
                    allow_code=message.get("allow_code") is True,
                )
            if run_id in cancelled:  # abandoned: nobody waits for this result
                raise ModuleExecutionError("the run was cancelled; its result was discarded")
            send({"op": "result", "id": message["id"], "ok": True, "result": result})
        except BaseException as exc:  # every failure becomes a reply, never a dead thread
            # Our typed errors keep their type; anything else (DSPy, LiteLLM, a tool)
            # becomes a ModuleExecutionError naming the original exception.
            kind = next(
                (name for name, cls in ERROR_TYPES.items() if isinstance(exc, cls)),
                "ModuleExecutionError",
            )
            text = (
                str(exc) if isinstance(exc, _errors.DSPexError) else f"{type(exc).__name__}: {exc}"
            )
            send(
                {
                    "op": "result",
                    "id": message.get("id"),
                    "ok": False,
                    "error": {"type": kind, "message": scrub(text, lm)},
                    **({"cancelled": True} if run_id in cancelled else {}),
                }
            )
        finally:
            live.discard(run_id)
            cancelled.discard(run_id)

    threading.Thread(target=warm, name="dspex-prewarm", daemon=True).start()
    threads = int(os.environ.get("DSPEX_WORKER_THREADS", "64"))
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dspex-run")
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if message.get("op") in ("run", "compile"):
            live.add(message.get("id"))
            executor.submit(handle, message)
        elif message.get("op") == "cancel":
            if message.get("id") in live:
                cancelled.add(message.get("id"))
        elif message.get("op") == "exit":
            break
    os._exit(0)  # stdin closed: the pool (or the server) is gone


if __name__ == "__main__":
    worker_main()
