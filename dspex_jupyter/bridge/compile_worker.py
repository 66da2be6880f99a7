"""Compiling a program with a DSPy optimizer, in this process (a bridge worker).

The program's bridged modules become one ``dspy.Module`` (:class:`_Chain`)
whose steps are built exactly as ``ExecuteModule`` builds them
(``building.build_module``, with the step's current compiled state loaded), so
what is optimized is what later runs. The optimizer runs inside
``dspy.context`` with the context's LM; the result is each step's
``dump_state()`` (demos, instructions, signature), never a pickle.

``progress(event)`` is called on every metric call (the bridge streams these
to the kernel); ``cancelled()`` is polled there too and ends the compile.
The kernel's in-process benchmark calls :func:`compile_steps` directly.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ModuleExecutionError, ProgramError, ValidationError
from ..program.module import json_safe
from ..variables.compiled_state import compiled_state
from .building import build_module
from .execution import check_module_spec, lm_settings, scrub
from .optimizers import optimizer_class, split_options

__all__ = ["compile_steps", "worker_metric", "CompileCancelled"]


class CompileCancelled(BaseException):
    """Raised in the optimizer's threads once the compile is cancelled (not an
    ``Exception``: DSPy's optimizers catch those per example and carry on)."""


def worker_metric(name: str, field: str, *, feedback: bool = False) -> Callable[..., Any]:
    """The built-in metric ``name`` on ``field`` in DSPy's calling convention."""
    from ..scoring import BUILTINS

    if name not in BUILTINS:
        raise ValidationError(f"unknown metric {name!r}; built-in metrics: {sorted(BUILTINS)}")
    fn = BUILTINS[name]

    def metric(example: Any, pred: Any, trace: Any = None, *_: Any, **__: Any) -> Any:
        expected, output = example.get(field), pred.get(field) if pred is not None else None
        score = fn(expected, output) if output is not None else 0.0
        if not feedback:
            return score
        import dspy

        text = (
            "correct"
            if score >= 1.0
            else f"{name} of {field!r} scored {score:.2f}: expected {expected!r}, got {output!r}"
        )
        return dspy.Prediction(score=score, feedback=text)

    return metric


def _chain(steps: Sequence[tuple[Any, Any, dict[str, Any]]]) -> Any:
    import dspy

    class _Chain(dspy.Module):
        """The program's bridged steps in order; each sees every earlier output."""

        def __init__(self) -> None:
            super().__init__()
            self.fields = []
            for index, (module, built, bound) in enumerate(steps):
                setattr(self, f"step{index}", built)
                from ..program.signature import parse_signature

                inputs = list(parse_signature(module.options["signature"]).inputs)
                self.fields.append((inputs, {k: v for k, v in bound.items() if k in inputs}))

        def forward(self, **inputs: Any) -> Any:
            values = dict(inputs)
            outputs: dict[str, Any] = {}
            for index, (fields, bound) in enumerate(self.fields):
                call = {f: values[f] for f in fields if f in values}
                call.update(bound)
                prediction = getattr(self, f"step{index}")(**call)
                for key in prediction.keys():
                    values[key] = outputs[key] = prediction[key]
            return dspy.Prediction(**outputs)

    return _Chain()


def _state(built: Any) -> dict[str, Any]:
    state = json_safe(built.dump_state())
    for entry in state.values() if "signature" not in state else [state]:
        if isinstance(entry, dict):
            entry["lm"] = None  # the LM (its endpoint) is the context's, not the program's
    return state


def compile_steps(
    modules: Sequence[Mapping[str, Any]],
    bounds: Sequence[Mapping[str, Any]],
    trainset: Sequence[Mapping[str, Any]],
    valset: Sequence[Mapping[str, Any]] | None,
    input_keys: Sequence[str],
    metric: Mapping[str, Any],
    optimizer: str,
    options: Mapping[str, Any],
    lm_config: Mapping[str, Any],
    *,
    progress: Callable[[dict[str, Any]], None] = lambda event: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Run ``optimizer`` over the bridged ``modules``; their states before and after."""
    import dspy

    init_options, compile_options = split_options(optimizer, options)
    specs = [check_module_spec(m) for m in modules]
    if not specs:
        raise ProgramError("the program has no bridged module to compile")
    built = [copy.deepcopy(build_module(m, b)) for m, b in zip(specs, bounds, strict=True)]
    before = [_state(b) for b in built]
    program = _chain(list(zip(specs, built, [dict(b) for b in bounds], strict=True)))
    model, kwargs, _public = lm_settings(lm_config, bounds[0])
    lm = dspy.LM(model, cache=False, **kwargs)
    calls = {"n": 0, "score": 0.0}
    base = worker_metric(str(metric["name"]), str(metric["field"]), feedback=optimizer == "gepa")

    def counted(*args: Any, **kw: Any) -> Any:
        if cancelled():
            raise CompileCancelled("the compile was cancelled")
        value = base(*args, **kw)
        calls["n"] += 1
        calls["score"] += float(getattr(value, "score", value))
        progress({"metric_calls": calls["n"], "score_sum": calls["score"]})
        return value

    init_options = dict(init_options)
    if optimizer == "gepa":
        init_options.setdefault("reflection_lm", lm)
        if not {"auto", "max_full_evals", "max_metric_calls"} & set(init_options):
            init_options["max_metric_calls"] = 4 * len(trainset)
    if optimizer in ("mipro_v2", "copro"):
        init_options.setdefault("prompt_model", lm)
    if optimizer == "mipro_v2":  # MIPROv2 wants both models or a global default
        init_options.setdefault("task_model", lm)
    if optimizer == "mipro_v2" and init_options.get("auto", "light") is None:
        init_options.setdefault("num_candidates", 2)
    teleprompter = optimizer_class(optimizer)(metric=counted, **init_options)

    def examples(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [dspy.Example(**row).with_inputs(*input_keys) for row in rows]

    compile_kw = dict(compile_options)
    train = examples(trainset)
    import inspect

    accepts = inspect.signature(teleprompter.compile).parameters
    if valset is not None and "valset" in accepts:
        compile_kw["valset"] = examples(valset)
    if optimizer == "copro":
        compile_kw.setdefault("eval_kwargs", {"num_threads": 4, "display_progress": False})
    if "requires_permission_to_run" in accepts:
        compile_kw.setdefault("requires_permission_to_run", False)
    adapter = {}
    if lm_config.get("local_lm"):
        from .grammar import constrained_json_adapter

        adapter["adapter"] = constrained_json_adapter()
    start = time.perf_counter()
    try:
        with dspy.context(lm=lm, disable_history=True, **adapter):
            compiled = teleprompter.compile(program, trainset=train, **compile_kw)
    except (CompileCancelled, ValidationError, ProgramError):
        raise
    except Exception as exc:
        raise ModuleExecutionError(
            scrub(f"{optimizer} failed: {type(exc).__name__}: {exc}", lm_config)
        ) from None
    after = [_state(getattr(compiled, f"step{i}")) for i in range(len(specs))]
    return {
        "steps": [
            {
                "name": spec.name,
                "type": spec.type_name,
                "before": compiled_state(spec.type_name, b, None),
                "after": compiled_state(spec.type_name, a, optimizer),
            }
            for spec, b, a in zip(specs, before, after, strict=True)
        ],
        "metric_calls": calls["n"],
        "seconds": time.perf_counter() - start,
    }
