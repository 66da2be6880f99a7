"""Running a program in a context: data flow, bindings, the trace, and the bridged seam.

This sits above ``Context`` because a run needs one: it bridges the context
when a module runs out of process, registers the program's variables, and
records every run on the context. What a program *is* lives in
:mod:`dspex_jupyter.program`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from ..context import default_context
from ..errors import DSPexError, ModuleExecutionError, ProgramError, VariableExists
from ..program import ProgramSpec
from ..program.bridged import LM_PARAMS
from ..program.module import Module, check_json, json_safe
from ..variables.compiled_state import is_compiled_state
from .overrides import check_overrides, json_overrides
from .result import RunResult, TraceEntry

__all__ = [
    "run_program",
    "check_run",
    "setup_run",
    "execute_run",
    "resolve_spec",
    "state_variable",
    "with_compiled_state",
]


def resolve_spec(spec: Any) -> Any:
    """A ``ProgramSpec`` from a spec, a ``Program.Definition`` (class or instance); else ``ProgramError``."""
    if isinstance(spec, ProgramSpec):
        return spec
    if isinstance(spec, type) and callable(getattr(spec, "build", None)):
        spec = spec()
    if callable(getattr(spec, "spec", None)):  # a Program.Definition: build() and name it
        build = spec.spec
    else:
        build = getattr(spec, "build", None)
    if callable(build):
        built = build()
        if not isinstance(built, ProgramSpec):
            raise ProgramError(
                f"{type(spec).__name__}.build() must return a program spec, got {built!r}"
            )
        return built
    raise ProgramError(f"Program.run needs a program spec (Program.new()...), got {spec!r}")


def _exists(ctx: Any, name: str) -> bool:
    try:
        ctx.variable(name)
    except KeyError:
        return False
    return True


def _check_before_run(spec: Any, inputs: dict[str, Any], ctx: Any) -> None:
    """Every check that can fail before anything changes (bad input changes nothing)."""
    spec.check_flow(inputs)
    if spec.needs_bridge:
        check_json(inputs, "the inputs of a program with bridged modules")
    declared = {d.name for d in spec.variables}
    for index, module in enumerate(spec.modules):
        for param, variable in module.bindings.items():
            if variable not in declared and not _exists(ctx, variable):
                raise ProgramError(
                    f"module #{index} {module.name} binds {param!r} to variable {variable!r}, "
                    "which the program does not declare and the context does not have"
                )
    for decl in spec.variables:
        try:
            existing = ctx.variable(decl.name)
        except KeyError:
            continue
        if not existing.same_definition(decl.type, decl.constraints):
            raise VariableExists(
                f"the program declares {decl.name!r} as {decl.type} {dict(decl.constraints)}, but the "
                f"context already has it as {existing.type} {dict(existing.constraints)}"
            )


def _bound_values(
    module: Module, ctx: Any, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    params, used = {}, {}
    for param, variable in module.bindings.items():
        record = ctx.variable(variable)
        value = overrides[variable] if variable in overrides else record.value
        params[param] = value
        used[variable] = {"param": param, "version": record.version, "value": json_safe(value)}
        if variable in overrides:
            used[variable]["override"] = True
    return params, used


def _run_native(
    module: Any, values: dict[str, Any], ctx: Any, overrides: Mapping[str, Any], timeout_s: Any
) -> dict[str, Any]:
    params, used = _bound_values(module, ctx, overrides)
    names = module.input_fields() + [n for n in module.optional_input_fields() if n in values]
    missing = [n for n in module.input_fields() if n not in values]
    if missing:
        raise ProgramError(f"module {module.name} needs {missing}, which no earlier step produced")
    try:
        outputs = module.execute(values, params)
    except DSPexError:
        raise
    except Exception as exc:
        raise ModuleExecutionError(
            f"native module {module.name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(outputs, Mapping):
        raise ModuleExecutionError(
            f"native module {module.name} returned {outputs!r}, not a mapping"
        )
    return {
        "inputs": {n: values[n] for n in names if n in values},
        "outputs": dict(outputs),
        "variables": used,
        "usage": None,
        "lm": None,
    }


def state_variable(module: Module) -> str:
    """The variable holding ``module``'s compiled DSPy state (``Program.compile``)."""
    return f"{module.name}.state"


def with_compiled_state(module: Module, ctx: Any) -> Module:
    """``module`` bound to its compiled state, if the context holds one (see
    ``tuning/compile.py``): every run, evaluation and trial then loads it."""
    if "state" in module.bindings:
        return module
    try:
        record = ctx.variable(state_variable(module))
    except KeyError:
        return module
    if not is_compiled_state(record.value):  # a plain module-name variable of that name
        return module
    return module.bind_to_variable(state_variable(module), as_="state")


def _run_bridged(
    module: Any,
    values: dict[str, Any],
    ctx: Any,
    overrides: Mapping[str, Any],
    timeout_s: float | None,
) -> dict[str, Any]:
    names = module.input_fields()
    missing = [n for n in names if n not in values]
    if missing:
        raise ProgramError(f"module {module.name} needs {missing}, which no earlier step produced")
    module = with_compiled_state(module, ctx)
    try:
        inputs = check_json({n: values[n] for n in names}, f"the inputs of {module.name}")
    except ProgramError as exc:
        raise ModuleExecutionError(str(exc)) from None
    lm_config = dict(ctx.lm_config)
    model_source = "config"
    if {"model", "llm_model"} & set(module.bindings):
        model_source = "binding"
    elif isinstance(values.get("llm_model"), str) and values["llm_model"]:
        lm_config["model"] = values["llm_model"]  # published upstream, e.g. by QueryClassifier
        model_source = "upstream"
    options: dict[str, Any] = {}  # only what is set: a backend may predate these options
    mine = {v: overrides[v] for v in module.bindings.values() if v in overrides}
    if mine:
        options["overrides"] = json_overrides(mine)
    if timeout_s is not None:
        options["timeout_s"] = float(timeout_s)
    response = ctx.execute_module(module.to_dict(), inputs, module.bindings, lm_config, **options)
    if not isinstance(response, Mapping) or not isinstance(response.get("outputs"), Mapping):
        raise ModuleExecutionError(f"the bridge returned a malformed result for {module.name}")
    lm = dict(response.get("lm") or {})
    lm = {k: v for k, v in lm.items() if k in (*LM_PARAMS, "api_base", "provider")}
    lm["model_source"] = model_source
    local_lm = response.get("local_lm")  # only on the run that loaded the embedded model
    if isinstance(local_lm, Mapping):
        local_lm = dict(local_lm)
        ctx.note_local_lm(local_lm)
    else:
        local_lm = None
    return {
        "inputs": inputs,
        "outputs": dict(response["outputs"]),
        "variables": {k: dict(v) for k, v in (response.get("variables") or {}).items()},
        "usage": dict(response.get("usage") or {}),
        "lm": lm,
        "local_lm": local_lm,
    }


def check_run(spec: Any, input_names: Any, ctx: Any, overrides: Any = None) -> dict[str, Any]:
    """Every check that can fail before anything changes; returns the validated overrides."""
    clean = check_overrides(spec, overrides, ctx)
    _check_before_run(spec, dict.fromkeys(input_names, ""), ctx)
    return clean


def setup_run(spec: Any, ctx: Any) -> None:
    """Bridge the context if a module needs it, and register missing declared variables."""
    if spec.needs_bridge:
        ctx.ensure_bridged()  # first: if the bridge is unavailable, nothing has changed
    for decl in spec.variables:  # existing values are kept (ctx.defvariable semantics)
        ctx.defvariable(
            decl.name,
            decl.type,
            initial=decl.initial,
            constraints=dict(decl.constraints) or None,
            metadata=dict(decl.metadata) or None,
        )


def run_program(
    spec: Any,
    inputs: Mapping[str, Any],
    context: Any = None,
    *,
    name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``spec`` on ``inputs`` in ``context`` (default: :func:`dspex_jupyter.default_context`).

    Before anything changes, the inputs, the data flow, the bindings, the
    declared variables and the ``overrides`` are checked (a failure raises
    ``ProgramError`` / ``VariableExists`` / ``VariableNotFound`` /
    ``ValidationError`` and changes nothing). Then the context is bridged if a
    module needs it (``BridgeUnavailable`` leaves it local and unchanged),
    declared variables missing from the context are registered (existing
    values are kept), and the modules run in order. ``overrides`` (variable
    name -> value) are used by this run only, in place of the variables'
    values, and never written (see :mod:`dspex_jupyter.running.overrides`).
    Each run, successful or not, is recorded with ``context.record_run(summary)``.
    A failing module raises ``ModuleExecutionError`` (or the typed error it
    raised); the exception's ``result`` attribute holds the partial run.
    """
    spec = resolve_spec(spec)
    if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
        raise ProgramError(f"inputs must be a mapping of field names to values, got {inputs!r}")
    inputs = dict(inputs)
    ctx = default_context() if context is None else context
    clean = check_overrides(spec, overrides, ctx)
    _check_before_run(spec, inputs, ctx)
    return execute_run(spec, inputs, ctx, overrides=clean, name=name)


def execute_run(
    spec: Any,
    inputs: dict[str, Any],
    ctx: Any,
    *,
    overrides: Mapping[str, Any],
    name: str | None = None,
    setup: bool = True,
    record: bool = True,
    timeout_s: float | None = None,
) -> RunResult:
    """Run an already-checked ``spec`` (see :func:`check_run`); :func:`run_program`'s body.

    ``setup=False`` skips :func:`setup_run` and ``record=False`` skips
    ``ctx.record_run``: an evaluation sets up once and records its own summary
    rather than one run per example. ``timeout_s`` bounds each bridged call.
    """
    run_id, started = uuid.uuid4().hex, time.time()
    begin = time.perf_counter()
    values: dict[str, Any] = dict(inputs)
    outputs: dict[str, Any] = {}
    trace: list[TraceEntry] = []
    error: BaseException | None = None
    try:
        if setup:
            setup_run(spec, ctx)
        for index, module in enumerate(spec.modules):
            t0 = time.perf_counter()
            try:
                step = (_run_native if module.kind == "native" else _run_bridged)(
                    module, values, ctx, overrides, timeout_s
                )
            except BaseException as exc:
                trace.append(
                    TraceEntry(
                        index,
                        module.name,
                        module.type_name,
                        module.kind,
                        {},
                        {},
                        module.bindings,
                        {},
                        (time.perf_counter() - t0) * 1000,
                        status="error",
                        error=f"{type(exc).__name__}: {exc}",
                    )
                )
                raise
            values.update(step["outputs"])
            outputs.update(step["outputs"])
            trace.append(
                TraceEntry(
                    index,
                    module.name,
                    module.type_name,
                    module.kind,
                    step["inputs"],
                    step["outputs"],
                    module.bindings,
                    step["variables"],
                    (time.perf_counter() - t0) * 1000,
                    step["usage"],
                    step["lm"],
                    local_lm=step.get("local_lm"),
                )
            )
    except BaseException as exc:
        error = exc
    result = RunResult(
        run_id,
        name or spec.name,
        inputs,
        outputs,
        tuple(trace),
        (time.perf_counter() - begin) * 1000,
        ctx.backend,
        started,
        "ok" if error is None else "error",
        None if error is None else f"{type(error).__name__}: {error}",
        values,
    )
    if record:
        ctx.record_run(result.to_dict())
    if error is not None:
        if isinstance(error, DSPexError):
            error.result = result  # type: ignore[attr-defined]
        raise error
    return result
