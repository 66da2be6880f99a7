"""``WorkerHandle``: the pool's end of one worker process.

It starts the process (a fresh interpreter running
``bridge/worker_process.py``), writes jobs to its stdin, reads its replies and
progress lines from stdout on a thread, keeps the last lines of its stderr, and
when the process dies fails the runs it had and tells the pool
(``bridge/workers.py``), which starts a replacement.

Protocol (one JSON object per line):

* pool -> worker: ``{"op": "run", "id": N, "module": {...}, "inputs": {...},
  "bound": {...}, "lm": {...}}`` (plus ``"allow_code": true`` when the server allowed
  the run's notebook-defined code), ``{"op": "cancel", "id": N}`` and ``{"op": "exit"}``.
* worker -> pool: ``{"op": "ready", "pid": P, "warm_s": S}`` once DSPy is
  imported, then ``{"op": "result", "id": N, "ok": true, "result": {...}}`` or
  ``{"op": "result", "id": N, "ok": false, "error": {"type": ..., "message": ...}}``
  (with ``"cancelled": true`` for a run cancelled before it finished).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from ..errors import ModuleExecutionError

__all__ = ["PoolOwner", "WorkerHandle"]

log = logging.getLogger("dspex_jupyter.bridge.workers")

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class PoolOwner(Protocol):
    """What a worker needs from its pool: how to start, and whom to tell."""

    env: dict[str, str]
    python: str
    threads_per_worker: int

    def _worker_ready(self, worker: WorkerHandle) -> None: ...

    def _worker_died(self, worker: WorkerHandle, code: int, tail: str) -> None: ...


class WorkerHandle:
    """One worker process and the runs in flight on it."""

    def __init__(self, pool: PoolOwner, index: int) -> None:
        self.pool = pool
        self.index = index
        self.ready = threading.Event()
        self.dead = False
        self.warm_s: float | None = None
        self.started_at = time.time()
        self.pending: dict[int, Future] = {}
        #: run id -> callback for the "progress" lines of a long run (a compile)
        self.progress: dict[int, Callable[[dict[str, Any]], None]] = {}
        #: runs cancelled while in the worker, whose (discarded) result has not come back yet
        self.abandoned: set[int] = set()
        self.lock = threading.Lock()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        env = dict(os.environ)
        env.update(pool.env)
        env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        env["DSPEX_WORKER_THREADS"] = str(pool.threads_per_worker)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        self.proc = subprocess.Popen(
            [
                pool.python,
                "-c",
                "from dspex_jupyter.bridge.worker_process import worker_main; worker_main()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.pid = self.proc.pid
        threading.Thread(
            target=self._read, name=f"dspex-worker-{self.pid}-out", daemon=True
        ).start()
        self._stderr_reader = threading.Thread(
            target=self._read_stderr, name=f"dspex-worker-{self.pid}-err", daemon=True
        )
        self._stderr_reader.start()

    @property
    def inflight(self) -> int:
        return len(self.pending)

    def send(self, message: Mapping[str, Any]) -> None:
        data = (json.dumps(message, allow_nan=False) + "\n").encode()
        with self.lock:
            if self.dead:
                raise BrokenPipeError("worker is dead")
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("worker %s: %s", self.pid, line)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("worker %s sent a malformed line: %r", self.pid, raw[:200])
                    continue
                if message.get("op") == "ready":
                    self.warm_s = message.get("warm_s")
                    if message.get("error"):
                        log.warning(
                            "worker %s could not pre-import DSPy: %s", self.pid, message["error"]
                        )
                    self.ready.set()
                    self.pool._worker_ready(self)
                elif message.get("op") == "progress":
                    callback = self.progress.get(message.get("id"))
                    if callback is not None:
                        callback(message.get("event") or {})
                elif message.get("op") == "result":
                    self.progress.pop(message.get("id"), None)
                    with self.lock:
                        future = self.pending.pop(message.get("id"), None)
                        if future is None:
                            self.abandoned.discard(message.get("id"))
                    if future is not None and not future.done():
                        future.set_result(message)
        finally:
            self._died()

    def _died(self) -> None:
        code = self.proc.wait()
        with self.lock:
            self.dead = True
            pending, self.pending = self.pending, {}
            self.abandoned.clear()
        self._stderr_reader.join(timeout=1.0)  # its last lines name the cause of death
        tail = " | ".join(list(self.stderr_tail)[-3:])
        if pending:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            error = ModuleExecutionError(
                f"the worker process running this module (pid {self.pid}) {how} before the "
                f"run finished; the run was not completed (a replacement worker is starting)"
                + (f"; its last output: {tail}" if tail and code >= 0 else "")
            )
            for future in pending.values():
                if not future.done():
                    future.set_exception(error)
        self.pool._worker_died(self, code, tail)

    def stop(self, timeout: float = 5.0) -> None:
        with self.lock:
            self.dead = True
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except Exception:
            self.proc.kill()
            self.proc.wait()
