"""``Program.evaluate``: run a program over a devset, score each example, in parallel.

Why a thread pool in the kernel: a bridged module is one blocking
``ExecuteModule`` call; ``num_threads`` kernel threads keep that many examples
in flight through the bridge's worker pool (which runs many DSPy calls per
worker process). The program is checked and set up once (bridging, variable
registration), then each example is one :func:`~..running.runner.execute_run`
that records nothing on the context: an evaluation is one result, not 200 runs
in the history. Native-only programs run in kernel threads on whatever backend
the context has; they never bridge it and never import DSPy.

Each example runs in its own :class:`~..bridge.cancel.CancelScope`: a
timed-out example's bridged call is cancelled, and Ctrl-C (or ``max_errors``)
cancels every call still in flight, so the server drops those runs from its
worker pool instead of running them to completion. A native module already
running in a kernel thread cannot be stopped; it finishes on its own and its
result is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..bridge.cancel import CancelScope
from ..context import default_context
from ..errors import ValidationError
from ..running.runner import check_run, execute_run, resolve_spec, setup_run
from .datasets import Dataset, Example, load_dataset, program_inputs
from .evaluation import EvalRow, Evaluation
from .metrics import Metric, resolve_metric

__all__ = ["evaluate_program", "prepare_evaluation", "PreparedEvaluation"]

#: default examples in flight for a program with bridged modules
DEFAULT_THREADS = 8
_POLL_S = 0.1  # how often the waiting kernel thread wakes (for Ctrl-C and timeouts)
#: The bridge gives up on a call this much after the kernel marked it timed out,
#: so the kernel's verdict (a ``timeout`` row) comes first and the server's wait ends.
_SERVER_GRACE_S = 5.0


def _positive(name: str, value: Any, kind: type, minimum: float) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValidationError(f"{name} must be {kind.__name__} >= {minimum}, got {value!r}")
    if value < minimum or (kind is float and value <= 0):
        raise ValidationError(f"{name} must be > 0, got {value!r}")
    return value


class PreparedEvaluation:
    """A checked, set-up evaluation; :meth:`run` may be called with other overrides
    (the Tuner runs one per trial without re-checking the program and the devset)."""

    def __init__(self, spec: Any, data: Dataset, metric: Metric, ctx: Any) -> None:
        self.spec, self.data, self.metric, self.ctx = spec, data, metric, ctx

    def run(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        num_threads: int | None = None,
        display_progress: bool = True,
        max_errors: int | None = None,
        timeout_s: float | None = None,
    ) -> Evaluation:
        clean = check_run(self.spec, self.data.input_keys, self.ctx, overrides)
        threads = num_threads or (DEFAULT_THREADS if self.spec.needs_bridge else 1)
        return _Run(self, clean, threads, display_progress, max_errors, timeout_s).go()


def prepare_evaluation(
    spec: Any, devset: Any, metric: Any, context: Any = None
) -> PreparedEvaluation:
    """Check everything that can be checked before a run; then bridge/register once."""
    spec = resolve_spec(spec)
    ctx = default_context() if context is None else context
    data = load_dataset(devset)
    if not data.input_keys:
        data = load_dataset(data, inputs=program_inputs(spec))
    if not len(data):
        raise ValidationError("the devset is empty")
    bound = resolve_metric(metric).bind(data.expected_keys)
    check_run(spec, data.input_keys, ctx)
    setup_run(spec, ctx)
    return PreparedEvaluation(spec, data, bound, ctx)


def evaluate_program(
    spec: Any,
    devset: Any,
    metric: Any,
    *,
    context: Any = None,
    num_threads: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    display_progress: bool = True,
    max_errors: int | None = None,
    timeout_s: float | None = None,
) -> Evaluation:
    """Run ``spec`` on every example of ``devset`` and score it with ``metric``.

    ``devset``: see :func:`~.datasets.load_dataset`; ``metric``: a built-in
    name or ``metric(example, outputs) -> float | bool`` (see
    :mod:`~.metrics`). ``num_threads`` examples are in flight (default 8 for a
    program with bridged modules, 1 for a native-only one). ``overrides``
    replace variable values for this evaluation only. A failing example is a
    row with its error; after ``max_errors`` failed rows the run stops;
    an example still running after ``timeout_s`` is a ``timeout`` row and the
    run moves on. Ctrl-C stops submitting, and returns what finished (rows in
    flight become ``cancelled``; ``stopped == "interrupted"``). Bad arguments
    raise typed errors before anything runs or changes.
    """
    _positive("num_threads", num_threads, int, 1)
    _positive("max_errors", max_errors, int, 0)
    _positive("timeout_s", timeout_s, float, 0)
    spec = resolve_spec(spec)
    ctx = default_context() if context is None else context
    check_run(spec, program_inputs(spec), ctx, overrides)  # bad overrides fail before set-up
    prepared = prepare_evaluation(spec, devset, metric, ctx)
    return prepared.run(
        overrides,
        num_threads=num_threads,
        display_progress=display_progress,
        max_errors=max_errors,
        timeout_s=timeout_s,
    )


class _Run:
    """One pass over the devset: submit, collect, time out, stop, report progress."""

    def __init__(
        self,
        prepared: PreparedEvaluation,
        overrides: dict[str, Any],
        threads: int,
        display_progress: bool,
        max_errors: int | None,
        timeout_s: float | None,
    ) -> None:
        self.p, self.overrides, self.threads = prepared, overrides, threads
        self.display_progress, self.max_errors, self.timeout_s = (
            display_progress,
            max_errors,
            timeout_s,
        )
        self.started: dict[int, float] = {}
        self.rows: dict[int, EvalRow] = {}
        self.scopes: dict[int, CancelScope] = {}

    def _one(self, example: Example) -> EvalRow:
        scope = self.scopes.setdefault(example.index, CancelScope())
        with scope.active():
            return self._run_one(example)

    def _run_one(self, example: Example) -> EvalRow:
        self.started[example.index] = time.monotonic()
        p = self.p
        result, error = None, None
        try:
            result = execute_run(
                p.spec,
                dict(example.inputs),
                p.ctx,
                overrides=self.overrides,
                setup=False,
                record=False,
                timeout_s=None if self.timeout_s is None else self.timeout_s + _SERVER_GRACE_S,
            )
        except Exception as exc:
            result, error = getattr(exc, "result", None), f"{type(exc).__name__}: {exc}"
        outputs = dict(result.outputs) if result is not None else {}
        score = 0.0
        if error is None:
            try:
                score = p.metric(example.as_dict(), outputs)
            except Exception as exc:
                error = f"metric {p.metric.name}: {type(exc).__name__}: {exc}"
        usage: dict[str, Any] = dict(result.usage) if result is not None else {}
        variables: dict[str, dict[str, Any]] = {}
        for entry in result.trace if result is not None else ():
            variables.update(entry.variables)
            if entry.usage and isinstance(entry.usage.get("cost"), (int, float)):
                usage["cost"] = usage.get("cost", 0.0) + float(entry.usage["cost"])
        return EvalRow(
            example.index,
            dict(example.inputs),
            dict(example.expected),
            outputs,
            score,
            "ok" if error is None else "error",
            error,
            (time.monotonic() - self.started[example.index]) * 1000,
            usage,
            variables,
            dict(self.overrides),
        )

    def _cancel(self, index: int) -> None:
        """Cancel example ``index``'s bridged calls (created now if it has not started)."""
        self.scopes.setdefault(index, CancelScope()).cancel()

    def _placeholder(self, example: Example, status: str, error: str) -> EvalRow:
        began = self.started.get(example.index)
        latency = (time.monotonic() - began) * 1000 if began is not None else 0.0
        return EvalRow(
            example.index,
            dict(example.inputs),
            dict(example.expected),
            {},
            0.0,
            status,
            error,
            latency,
            overrides=dict(self.overrides),
        )

    def go(self) -> Evaluation:
        from tqdm.auto import tqdm

        data = self.p.data
        begin = time.perf_counter()
        bar = tqdm(total=len(data), disable=not self.display_progress, desc="evaluate")
        # Stragglers keep their thread after they time out: leave room for them.
        pool = ThreadPoolExecutor(
            self.threads * (2 if self.timeout_s else 1), thread_name_prefix="dspex-eval"
        )
        todo = iter(data)
        live: dict[Future[EvalRow], Example] = {}
        failures, stopped = 0, None

        def fill() -> None:
            while len(live) < self.threads:
                example = next(todo, None)
                if example is None:
                    return
                live[pool.submit(self._one, example)] = example

        def finish(row: EvalRow) -> None:
            nonlocal failures
            self.rows[row.index] = row
            failures += row.failed
            done = len(self.rows)
            bar.update(1)
            bar.set_postfix(
                score=f"{sum(r.score for r in self.rows.values()) / done:.3f}", errors=failures
            )

        try:
            fill()
            while live:
                done, _ = wait(list(live), timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    live.pop(future)
                    finish(future.result())
                if self.timeout_s is not None:
                    now = time.monotonic()
                    for future, example in list(live.items()):
                        began = self.started.get(example.index)
                        if began is not None and now - began > self.timeout_s:
                            live.pop(future)
                            self._cancel(example.index)
                            finish(
                                self._placeholder(
                                    example, "timeout", f"timed out after {self.timeout_s} s"
                                )
                            )
                if self.max_errors is not None and failures >= self.max_errors:
                    stopped = "max_errors"
                    break
                fill()
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            for future, example in live.items():
                future.cancel()
                self._cancel(example.index)
                if future.done() and not future.cancelled() and example.index not in self.rows:
                    row = future.result()  # finished just as the run stopped: keep it
                    if row.status == "ok":
                        self.rows[row.index] = row
            pool.shutdown(wait=False, cancel_futures=True)
            # Every example that started is a row, including one whose future the
            # interrupt caught between ``submit`` and ``live[...] =``.
            for index in list(self.started):
                if index not in self.rows:
                    self.rows[index] = self._placeholder(
                        data[index], "cancelled", f"cancelled ({stopped or 'stopped'})"
                    )
            bar.close()
        return Evaluation(
            self.p.spec.name,
            self.p.metric.name,
            tuple(self.rows[i] for i in sorted(self.rows)),
            len(data),
            dict(self.overrides),
            stopped,
            (time.perf_counter() - begin) * 1000,
        )
