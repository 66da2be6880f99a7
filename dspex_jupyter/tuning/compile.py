"""``Program.compile``: a DSPy optimizer over a program, run in a bridge worker.

The program's bridged modules are compiled as one ``dspy.Module`` inside a
worker of the bridge (``bridge/compile_worker.py``), on the context's LM and
bound variables; the result is *state*: each module's ``dump_state()``
(demos, instructions, signature), stored in the context as a versioned
``module`` variable ``<module name>.state``. Its first version is the
uncompiled state, so ``ctx.rollback(name, 1)`` undoes a compile and an earlier
version restores an earlier compile. Every later run, evaluation and tuner
trial binds the module to that variable (``running/runner.py``) and the worker
loads it, so another kernel on the same shared session runs it too.

Order of work, so bad input changes nothing: the optimizer name and its
options, the datasets, the metric and the program are all checked first; then
the valset is scored (``before``), the compile runs, the states are written,
and the valset is scored again (``after``). A failed or cancelled compile
(Ctrl-C cancels it in the worker) writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..bridge.optimizers import split_options
from ..context import default_context
from ..errors import ProgramError, ValidationError
from ..running.runner import check_run, resolve_spec, setup_run, state_variable
from ..running.runner import with_compiled_state as _stated
from .compiled import Compiled, StepChange
from .datasets import Dataset, load_dataset, program_inputs
from .evaluate import evaluate_program
from .metrics import resolve_metric

__all__ = ["compile_program"]


def _data(value: Any, spec: Any, what: str) -> Dataset:
    data = load_dataset(value)
    if not data.input_keys:
        data = load_dataset(data, inputs=program_inputs(spec))
    if not len(data):
        raise ValidationError(f"the {what} is empty")
    return data


def _check_program(spec: Any) -> None:
    native = [m.name for m in spec.modules if m.kind != "bridged"]
    if native:
        raise ProgramError(
            f"Program.compile optimizes DSPy modules in the bridge; this program has native "
            f"(kernel) steps {native}: compile a program of bridged modules only"
        )
    names = [m.name for m in spec.modules]
    if len(set(names)) != len(names) or not names:
        raise ProgramError(
            f"each compiled module needs its own name (its state is stored as "
            f"'<name>.state'); got {names}: pass name=... to the modules"
        )


def compile_program(
    spec: Any,
    trainset: Any,
    metric: Any,
    *,
    optimizer: str = "bootstrap_fewshot",
    valset: Any = None,
    context: Any = None,
    display_progress: bool = True,
    **options: Any,
) -> Compiled:
    """Compile ``spec`` with DSPy's ``optimizer`` on ``trainset``; see the module docstring.

    ``metric``: a built-in name (``"exact_match"``, ``"contains"``, ``"f1"``), or
    the ``Metric`` of one. ``options`` go to the optimizer's constructor or its
    ``compile`` (a name neither takes is a ``ValidationError``). ``valset``
    (default: the trainset) is scored before and after.
    """
    split_options(optimizer, options)  # unknown optimizer / option: nothing runs
    spec = resolve_spec(spec)
    _check_program(spec)
    ctx = default_context() if context is None else context
    train = _data(trainset, spec, "trainset")
    val = train if valset is None else _data(valset, spec, "valset")
    bound = resolve_metric(metric).bind(train.expected_keys)
    if not bound.builtin:
        raise ValidationError(
            "Program.compile scores in the bridge worker, which needs a built-in metric "
            "name ('exact_match', 'contains', 'f1'); a notebook metric function is not "
            f"supported here yet (got {bound.name!r})"
        )
    check_run(spec, train.input_keys, ctx)
    setup_run(spec, ctx)
    before = evaluate_program(spec, val, bound, context=ctx, display_progress=display_progress)
    job = {
        "modules": [_stated(m, ctx).to_dict() for m in spec.modules],
        "trainset": [e.as_dict() for e in train],
        "valset": None if valset is None else [e.as_dict() for e in val],
        "input_keys": list(train.input_keys),
        "metric": {"name": bound.name, "field": bound.field},
        "optimizer": optimizer,
        "options": dict(options),
    }
    result = _run(ctx, job, optimizer, len(train), display_progress)
    steps = tuple(
        _store(ctx, module, step, optimizer)
        for module, step in zip(spec.modules, result["steps"], strict=True)
    )
    after = evaluate_program(spec, val, bound, context=ctx, display_progress=display_progress)
    return Compiled(
        spec.name,
        optimizer,
        before,
        after,
        steps,
        int(result.get("metric_calls") or 0),
        float(result.get("seconds") or 0.0),
        dict(result.get("worker") or {}),
    )


def _run(ctx: Any, job: Mapping[str, Any], optimizer: str, total: int, show: bool) -> Any:
    """The compile in the bridge, with a ``tqdm.auto`` bar counting metric calls."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"compile ({optimizer})", unit="score", disable=not show)

    def progress(event: Mapping[str, Any]) -> None:
        calls = int(event.get("metric_calls") or 0)
        if calls > bar.total:
            bar.total = calls  # optimizers score more than once per example
        bar.update(calls - bar.n)
        if calls:
            bar.set_postfix(mean=f"{float(event.get('score_sum') or 0) / calls:.3f}")

    try:
        return ctx.compile_program(job, on_progress=progress)
    finally:
        bar.close()


def _store(ctx: Any, module: Any, step: Mapping[str, Any], optimizer: str) -> StepChange:
    """Write one module's compiled state; its variable's first version is the uncompiled one."""
    name = state_variable(module)
    try:
        ctx.variable(name)
    except KeyError:
        ctx.defvariable(
            name,
            "module",
            initial=step["before"],
            metadata={"module": module.name, "note": "Program.compile state; v1 is uncompiled"},
        )
    record = ctx.set(name, step["after"])
    version = getattr(record, "version", None)
    if version is None:
        version = ctx.variable(name).version
    return StepChange(module.name, name, int(version), dict(step["before"]), dict(step["after"]))
