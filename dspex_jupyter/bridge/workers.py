"""``WorkerPool``: processes that run DSPy modules for the bridge server.

Why processes: DSPy and the user's tools run there, so a crash, a leak or a
``kill -9`` costs one worker, never the server or its sessions. Why several
runs per worker: a run spends nearly all its time waiting for the LM over
HTTP, so each worker serves many runs at once on threads; a handful of
workers then carries hundreds of runs in flight.

Life of a worker: started with ``subprocess`` (a fresh interpreter, no fork
of the server's threads); it imports DSPy in the background right after
starting (pre-warmed) while already accepting requests. It speaks
newline-delimited JSON on its stdin/stdout (its ``print`` output goes to
stderr, so user code cannot corrupt the protocol) and exits when its stdin
closes, so workers never outlive the server. When a worker dies, the runs it
had fail with ``ModuleExecutionError`` naming the worker and its exit code,
and a replacement starts; the pool survives.

The wire protocol with a worker is in ``bridge/worker_handle.py``.

Cancelling a run (:meth:`WorkerPool.cancel`, used when the kernel cancels its
``ExecuteModule`` call or a run times out): the pool drops the run at once (its
future fails, it no longer counts as in flight) and tells the worker. A run the
worker has not started yet never starts. A run already inside DSPy cannot be
stopped from outside its thread (Python threads cannot be interrupted, and a
blocking HTTP read to the LM has no cancel hook), so it is *abandoned*: its
thread finishes the LM call it is in, and its result is discarded. Until then
the pool lists it under ``abandoned`` (not ``inflight``); it holds one of the
worker's threads, and an LM call ends at the latest at the LM's own timeout.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .. import errors as _errors
from ..errors import BridgeUnavailable, ModuleExecutionError
from .local_lm import LocalLMHost
from .worker_handle import WorkerHandle
from .worker_process import ERROR_TYPES as _ERROR_TYPES
from .worker_process import worker_main

__all__ = ["WorkerPool", "worker_main"]

log = logging.getLogger("dspex_jupyter.bridge.workers")

_MAX_EARLY_DEATHS = 3  # workers dying before they are ready, in a row, before the pool gives up


class WorkerPool:
    """A fixed number of worker processes, each running many modules concurrently.

    ``execute`` is thread-safe and blocking (the gRPC server calls it from its
    RPC threads); ``submit`` returns a future. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        size: int = 2,
        *,
        threads_per_worker: int = 64,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
    ) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size
        self.threads_per_worker = threads_per_worker
        self.env = dict(env or {})
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._workers: list[WorkerHandle] = []
        self._ids = itertools.count(1)
        self._closed = False
        self._started = False
        self._early_deaths = 0
        self._broken: str | None = None
        self.restarts = 0
        #: The embedded LM for runs with no LM configured: loaded on first use, stopped in close().
        self.local_lm = LocalLMHost()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> WorkerPool:
        """Start the workers (they pre-import DSPy in the background); returns at once."""
        with self._lock:
            if self._closed:
                raise BridgeUnavailable("this worker pool was closed")
            if not self._started:
                self._started = True
                self._workers = [WorkerHandle(self, i) for i in range(self.size)]
        return self

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until every worker has imported DSPy; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                workers = list(self._workers)
            if workers and all(w.ready.is_set() for w in workers):
                return True
            if self._broken:
                return False
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop every worker; runs still in flight fail with ``ModuleExecutionError``."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        self.local_lm.stop()

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker events

    def _worker_ready(self, worker: WorkerHandle) -> None:
        with self._lock:
            self._early_deaths = 0

    def _worker_died(self, worker: WorkerHandle, code: int, tail: str) -> None:
        with self._lock:
            if worker not in self._workers:
                return  # stopped on purpose
            if self._closed:
                self._workers.remove(worker)
                return
            if not worker.ready.is_set():
                self._early_deaths += 1
            if self._early_deaths >= _MAX_EARLY_DEATHS:
                self._broken = (
                    f"worker processes keep dying before they are ready (exit code {code})"
                    + (f": {tail}" if tail else "")
                )
                self._workers.remove(worker)
                log.error("worker pool broken: %s", self._broken)
                return
            log.warning("worker %s died (exit code %s); starting a replacement", worker.pid, code)
            self.restarts += 1
            index = self._workers.index(worker)
            self._workers[index] = WorkerHandle(self, worker.index)

    # ------------------------------------------------------------------ running

    @property
    def workers(self) -> list[dict[str, Any]]:
        """``[{"pid", "ready", "inflight", "abandoned", "warm_s"}]`` for diagnostics and tests.

        ``inflight``: runs someone waits for; ``abandoned``: cancelled runs whose
        thread is still finishing an LM call (see the module docstring).
        """
        with self._lock:
            workers = list(self._workers)
        return [
            {
                "pid": w.pid,
                "ready": w.ready.is_set(),
                "inflight": w.inflight,
                "abandoned": len(w.abandoned),
                "warm_s": w.warm_s,
            }
            for w in workers
        ]

    @property
    def busy(self) -> int:
        """Runs in flight on all workers (cancelled ones excluded)."""
        return sum(w["inflight"] for w in self.workers)

    def pids(self) -> list[int]:
        return [w["pid"] for w in self.workers]

    def _pick(self) -> WorkerHandle:
        with self._lock:
            if self._closed:
                raise ModuleExecutionError("the worker pool is closed")
            if self._broken:
                raise ModuleExecutionError(self._broken)
            live = [w for w in self._workers if not w.dead]
            if not live:
                raise ModuleExecutionError("no live worker process is available")
            # Prefer warm workers; among them, the least loaded.
            return min(live, key=lambda w: (not w.ready.is_set(), w.inflight))

    def submit(
        self,
        module_spec: Mapping[str, Any],
        inputs: Mapping[str, Any],
        bound: Mapping[str, Any],
        lm_config: Mapping[str, Any],
        *,
        allow_code: bool = False,
    ) -> Future:
        """Queue one run; the future's result is the worker's raw reply message.

        ``allow_code``: the server allowed this run's notebook-defined code (the
        worker refuses to load any otherwise)."""
        message = {
            "op": "run",
            "module": module_spec,
            "inputs": inputs,
            "bound": bound,
            "lm": lm_config,
            **({"allow_code": True} if allow_code else {}),
        }
        return self.submit_message(message)

    def submit_message(
        self,
        message: Mapping[str, Any],
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> Future:
        """Queue one job (``op`` "run" or "compile"); ``progress(event)`` gets its progress lines."""
        if not self._started:
            self.start()
        for _attempt in range(3):
            worker = self._pick()
            future: Future = Future()
            run_id = next(self._ids)
            with worker.lock:
                if worker.dead:
                    continue
                worker.pending[run_id] = future
                if progress is not None:
                    worker.progress[run_id] = progress
            try:
                worker.send({**message, "id": run_id})
            except (BrokenPipeError, OSError):
                with worker.lock:
                    worker.pending.pop(run_id, None)
                continue  # it died before the run started: safe to try another worker
            except (TypeError, ValueError) as exc:
                with worker.lock:
                    worker.pending.pop(run_id, None)
                raise _errors.ProgramError(f"a module run must be JSON-safe data: {exc}") from None
            future.worker_pid = worker.pid  # type: ignore[attr-defined]
            future.worker = worker  # type: ignore[attr-defined]
            future.run_id = run_id  # type: ignore[attr-defined]
            return future
        raise ModuleExecutionError("could not reach a live worker process")

    def cancel(self, future: Future, reason: str = "the run was cancelled by its caller") -> bool:
        """Drop the run of ``future`` (from :meth:`submit`): it fails with
        ``ModuleExecutionError(reason)`` and the worker is told to abandon it.
        False if it had already finished."""
        worker: WorkerHandle | None = getattr(future, "worker", None)
        run_id: int = getattr(future, "run_id", -1)
        if worker is None:
            return False
        with worker.lock:
            worker.progress.pop(run_id, None)
            if worker.pending.pop(run_id, None) is None:
                return False
            if not worker.dead:
                worker.abandoned.add(run_id)
        try:
            worker.send({"op": "cancel", "id": run_id})
        except (BrokenPipeError, OSError):
            pass  # a dead worker has nothing left to cancel
        try:
            future.set_exception(ModuleExecutionError(reason))
        except InvalidStateError:
            pass
        return True

    def execute(
        self,
        module_spec: Mapping[str, Any],
        inputs: Mapping[str, Any],
        bound: Mapping[str, Any],
        lm_config: Mapping[str, Any],
        timeout: float = 300.0,
        on_cancel: Callable[[Callable[[], None]], bool] | None = None,
        *,
        allow_code: bool = False,
    ) -> dict[str, Any]:
        """Run one bridged module in a worker; JSON in, JSON out.

        ``module_spec`` is ``Module.to_dict()``; ``inputs`` the signature's
        inputs; ``bound`` the resolved values of its bindings keyed by
        parameter (``temperature``, ``model``/``llm_model``, ...);
        ``lm_config`` the context's LM configuration. Returns ``outputs``,
        ``usage``, ``latency_ms`` (in the worker), ``total_ms`` (round
        trip), ``lm`` (model, temperature, ... never the key) and ``worker``.

        ``on_cancel(callback)`` registers a callback to run when the caller goes
        away (the gRPC server passes its context's ``add_callback``; False means
        it already has): the run is then cancelled (:meth:`cancel`).
        """
        start = time.perf_counter()
        future = self.submit(module_spec, inputs, bound, lm_config, allow_code=allow_code)
        if on_cancel is not None and not on_cancel(lambda: self._caller_gone(future)):
            self._caller_gone(future)
        try:
            reply = future.result(timeout=timeout)
        except FutureTimeout:
            self.cancel(future, "the run timed out")
            raise ModuleExecutionError(
                f"the module did not finish within {timeout:g} s (worker pid "
                f"{getattr(future, 'worker_pid', '?')})"
            ) from None
        if not reply.get("ok"):
            error = reply.get("error") or {}
            cls = _ERROR_TYPES.get(str(error.get("type")), ModuleExecutionError)
            message = error.get("message") or "the module failed"
            raise (
                cls(message)
                if cls is not _errors.VariableNotFound
                else ModuleExecutionError(message)
            )
        result = dict(reply["result"])
        result["total_ms"] = (time.perf_counter() - start) * 1000
        return result

    def _caller_gone(self, future: Future) -> None:
        if self.cancel(future):
            log.info("run %s cancelled by its caller", getattr(future, "run_id", "?"))

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("broken" if self._broken else "running")
        return f"<WorkerPool {state} workers={self.workers}>"
