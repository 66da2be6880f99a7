"""What a run builds in the worker: DSPy modules from spec data, tools, notebook modules.

Split from :mod:`.execution` (which runs what is built). Everything here is cached:
building parses signatures (milliseconds of CPU) and a built module holds no per-call
state, so one instance serves concurrent runs, as ``dspy.Evaluate`` does. Notebook code
(:mod:`.code`) is loaded here, and only for runs the server allowed it for.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ModuleExecutionError, ProgramError, ValidationError
from ..variables.compiled_state import is_compiled_state
from .code import load_code

__all__ = ["build_module"]


@functools.lru_cache(maxsize=256)
def _tool(path: str) -> Callable[..., Any]:
    module_name, sep, qualname = path.partition(":")
    if not sep:
        module_name, _, qualname = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProgramError(
            f"cannot import the ReAct tool {path!r} where the module runs: {exc}"
        ) from None
    if not callable(obj):
        raise ProgramError(f"the ReAct tool {path!r} is not callable")
    return obj


def _react_tool(tool: str | tuple[str, str]) -> Callable[..., Any]:
    """A tool by path, or a notebook function shipped as code (allowed by the server)."""
    if isinstance(tool, str):
        return _tool(tool)
    what, pickle = tool
    function = load_code({"$code": what, "pickle": pickle})
    if not callable(function):
        raise ProgramError(f"{what} is not callable")
    return function


def build_module(module: Any, bound: Mapping[str, Any]) -> Any:
    """The DSPy module to call for ``module`` (a checked spec module) with ``bound``."""
    if module.type_name == "Custom":
        return _custom(module.options["code"]["pickle"], module.options["code"]["$code"])
    return _build_dspy(module, bound)


@functools.lru_cache(maxsize=64)
def _custom(pickle: str, what: str) -> Any:
    """The notebook's module, built once per payload (one instance serves concurrent runs,
    as ``dspy.Evaluate`` uses one). Its constructor raising names the module."""
    cls, args, kwargs = load_code({"$code": what, "pickle": pickle})
    try:
        return cls(*args, **kwargs)
    except Exception as exc:
        raise ModuleExecutionError(
            f"{what} could not be built in the bridge worker: {type(exc).__name__}: {exc}"
        ) from None


def _build_dspy(module: Any, bound: Mapping[str, Any]) -> Any:
    """The DSPy module for ``module`` with its bound ``instructions``/``max_iters`` applied.

    Built modules are cached per configuration: building one parses the
    signature into pydantic models (milliseconds of CPU), and a DSPy module
    holds no per-call state, so one instance serves concurrent runs (as
    ``dspy.Evaluate`` does). The LM is never part of it: each run passes its
    own through ``dspy.context``.
    """
    options = module.options
    instructions = bound.get("instructions", options.get("instructions"))
    if instructions is not None and not isinstance(instructions, str):
        raise ValidationError(f"instructions must be a string, got {instructions!r}")
    max_iters = None
    if module.type_name == "ReAct":
        max_iters = bound.get("max_iters", options.get("max_iters", 5))
        if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
            raise ValidationError(f"max_iters must be a positive int, got {max_iters!r}")
    key = (
        module.type_name,
        options["signature"],
        instructions,
        tuple(
            t if isinstance(t, str) else (t["$code"], t.get("pickle", ""))
            for t in options.get("tools", ())
        ),
        tuple(sorted((options.get("descriptions") or {}).items())),
        max_iters,
    )
    state = bound.get("state")
    if state is None:
        return _build_cached(*key)
    if not is_compiled_state(state):
        raise ValidationError(
            f"a bound state must be a compiled state (Program.compile), got {state!r:.80}"
        )
    if state["module_type"] != module.type_name:
        raise ValidationError(
            f"the compiled state is for a {state['module_type']}, not a {module.type_name}"
        )
    return _build_stated(key, json.dumps(state["state"], sort_keys=True))


@functools.lru_cache(maxsize=64)
def _build_stated(key: tuple[Any, ...], state_json: str) -> Any:
    """A module with a compiled state loaded, cached by the state itself: a new
    version of the state variable (a compile, a rollback) builds a new module."""
    program = copy.deepcopy(_build_cached(*key))
    try:
        program.load_state(json.loads(state_json))
    except Exception as exc:
        raise ProgramError(
            f"cannot load the compiled state into {key[0]}: {type(exc).__name__}: {exc}"
        ) from None
    return program


@functools.lru_cache(maxsize=256)
def _build_cached(
    type_name: str,
    signature_text: str,
    instructions: str | None,
    tools: tuple[str | tuple[str, str], ...],
    descriptions: tuple[tuple[str, str], ...],
    max_iters: int | None,
) -> Any:
    import dspy

    signature = dspy.ensure_signature(signature_text)
    if instructions is not None:
        signature = signature.with_instructions(instructions)
    for field, desc in descriptions:  # a class-based signature's field descriptions
        signature = signature.with_updated_fields(field, desc=desc)
    if type_name == "Predict":
        return dspy.Predict(signature)
    if type_name == "ChainOfThought":
        return dspy.ChainOfThought(signature)
    if type_name == "ReAct":
        return dspy.ReAct(signature, tools=[_react_tool(t) for t in tools], max_iters=max_iters)
    raise ProgramError(f"no DSPy implementation for module type {type_name!r}")
