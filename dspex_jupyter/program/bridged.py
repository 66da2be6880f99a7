"""Bridged modules: DSPy's ``Predict``, ``ChainOfThought`` and ``ReAct``, run out of process.

In the kernel these are pure data (a string signature, options, bindings);
importing this module never imports DSPy. A class-based ``dspy.Signature`` (typed
fields: ``Literal[...]``, int, float, bool, list) is accepted wherever a string is:
it is converted to data (its string form with types, field descriptions and
instructions; :func:`~.signature.typed_signature`), so no notebook code runs for
it in the worker. A ReAct tool defined in a notebook is shipped as code
(:mod:`~.code`), which needs a server that allows code (``serve --allow-code``). When a program containing one runs,
``Program.run`` upgrades the context to the bridged backend and the bridge
server runs the module in a worker process with DSPy (see
:mod:`dspex_jupyter.bridge.execution`).

Bindable parameters (``.bind_to_variable(variable, as_=param)``); each is read
from the session by the bridge server when the module starts executing:

``temperature``
    the LM sampling temperature (overrides ``lm["temperature"]``).
``model`` or ``llm_model`` (one of them)
    the LM model name. A name without a provider prefix (``"gpt-4"``) is sent
    to the configured OpenAI-compatible ``api_base`` as ``openai/gpt-4``.
``max_tokens``
    the LM's maximum completion tokens.
``instructions``
    the signature's instructions (the prompt's task description), e.g. a
    ``str`` variable an optimizer tunes.
an input field of the signature (e.g. ``context``)
    that input is taken from the variable instead of from the running values.
``max_iters`` (``ReAct`` only)
    the maximum number of tool-use steps.

Any other name is rejected with ``ProgramError`` when binding.

Model choice, in priority order: a bound ``model``/``llm_model``; else an
``llm_model`` value already in the program's running values (for instance the
output of :class:`dspex_jupyter.native.QueryClassifier`, which publishes its
own ``llm_model`` binding for the steps after it); else ``lm["model"]`` of the
context's LM configuration (``DSPEX_LM_MODEL``).
"""

from __future__ import annotations

import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import ProgramError
from .code import code_data
from .module import BridgedModule, register_module_type
from .signature import is_signature_class, parse_signature, typed_signature

_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

__all__ = ["Predict", "ChainOfThought", "ReAct", "LM_PARAMS", "tool_path"]

#: Bindable parameters that configure the LM rather than the module.
LM_PARAMS = ("temperature", "model", "llm_model", "max_tokens")
_PARAM_MEANING = {
    "temperature": "the LM sampling temperature",
    "model": "the LM model name",
    "llm_model": "the LM model name",
    "max_tokens": "the LM's maximum completion tokens",
    "instructions": "the signature's instructions",
    "max_iters": "ReAct's maximum number of tool-use steps",
    "state": "the compiled DSPy state (demos, instructions) that Program.compile stored",
}


class _DSPyModule(BridgedModule):
    """Shared behaviour of the bridged DSPy modules."""

    __slots__ = ()
    extra_params: ClassVar[tuple[str, ...]] = ()

    def _setup(self, signature: Any, name: str | None, **options: Any) -> None:
        if is_signature_class(signature):  # a dspy.Signature class: carried as data
            typed = typed_signature(signature)
            signature = typed.text
            if options.get("instructions") is None:
                options["instructions"] = typed.instructions
            options["descriptions"] = {**typed.descriptions, **(options.get("descriptions") or {})}
        parse_signature(signature)  # fail at build time, with the signature named
        if options.get("instructions") is not None and not isinstance(options["instructions"], str):
            raise ProgramError(f"instructions must be a string, got {options['instructions']!r}")
        descriptions = options.get("descriptions")
        if descriptions is not None:
            fields = parse_signature(signature)
            if not isinstance(descriptions, Mapping) or not all(
                k in (*fields.inputs, *fields.outputs) and isinstance(v, str)
                for k, v in descriptions.items()
            ):
                raise ProgramError(
                    f"descriptions must map fields of {signature!r} to strings, got {descriptions!r}"
                )
            options["descriptions"] = dict(sorted(descriptions.items())) or None
        clean = {"signature": signature}
        clean.update({k: v for k, v in options.items() if v is not None})
        self._init(clean, name)

    @property
    def signature(self) -> str:
        return self._options["signature"]

    def input_fields(self) -> list[str]:
        bound = set(self._bindings)
        return [f for f in parse_signature(self.signature).inputs if f not in bound]

    def optional_input_fields(self) -> list[str]:
        return ["llm_model"]

    def output_fields(self) -> list[str]:
        return list(parse_signature(self.signature).outputs)

    def bindable_params(self) -> Iterable[str]:
        return (
            *LM_PARAMS,
            "instructions",
            "state",
            *self.extra_params,
            *parse_signature(self.signature).inputs,
        )

    def describe_param(self, param: str) -> str:
        if param in _PARAM_MEANING:
            return _PARAM_MEANING[param]
        return f"the input field {param!r} of the signature"

    def _check_binding(self, param: str, existing: Mapping[str, str]) -> None:
        if param in ("model", "llm_model") and ({"model", "llm_model"} - {param}) & set(existing):
            raise ProgramError(f"{self.type_name}: bind either 'model' or 'llm_model', not both")

    def _repr_args(self) -> list[str]:
        options = self.options
        args = [repr(options.pop("signature"))]
        args += [f"{k}={v!r}" for k, v in options.items()]
        return args


@register_module_type
class Predict(_DSPyModule):
    """``dspy.Predict(signature)``: one LM call that fills the output fields."""

    type_name: ClassVar[str] = "Predict"
    __slots__ = ()

    def __init__(
        self,
        signature: Any,
        *,
        instructions: str | None = None,
        descriptions: Mapping[str, str] | None = None,
        name: str | None = None,
    ):
        self._setup(signature, name, instructions=instructions, descriptions=descriptions)


@register_module_type
class ChainOfThought(_DSPyModule):
    """``dspy.ChainOfThought(signature)``: adds a ``reasoning`` output before the others."""

    type_name: ClassVar[str] = "ChainOfThought"
    __slots__ = ()

    def __init__(
        self,
        signature: Any,
        *,
        instructions: str | None = None,
        descriptions: Mapping[str, str] | None = None,
        name: str | None = None,
    ):
        self._setup(signature, name, instructions=instructions, descriptions=descriptions)

    def output_fields(self) -> list[str]:
        return ["reasoning", *super().output_fields()]


def tool_path(tool: Callable[..., Any] | str) -> str:
    """A ReAct tool as a spec names it: a registered NAME, or ``"package.module:function"``.

    A shared bridge server runs only the tools it registered, named by NAME
    (``ReAct(..., tools=["lookup"])``). A kernel's private server also takes
    the owner's functions, which its worker processes resolve by import, so
    they must be defined in an importable module (not in a notebook cell, not
    a lambda or a nested function). A function without such a path is not a
    path: ``ReAct`` ships it as code instead.
    """
    if isinstance(tool, str) and _TOOL_NAME.match(tool):
        return tool
    if isinstance(tool, str):
        module, sep, attr = tool.partition(":") if ":" in tool else tool.rpartition(".")
        parts = [*module.split("."), *attr.split(".")]
        if not module or not attr or not all(p.isidentifier() for p in parts):
            raise ProgramError(
                f"a tool name must be an importable dotted path like 'package.module.function' "
                f"or 'package.module:function', got {tool!r}"
            )
        return tool
    if not callable(tool):
        raise ProgramError(f"a ReAct tool must be a function or a dotted path, got {tool!r}")
    tool_module: str | None = getattr(tool, "__module__", None)
    tool_qualname: str | None = getattr(tool, "__qualname__", None)
    if not tool_module or not tool_qualname or "<" in tool_qualname:
        raise ProgramError(
            f"tool {tool!r} is not importable by name (lambdas and nested functions are not); "
            "define it at the top level of a module"
        )
    if tool_module == "__main__":
        raise ProgramError(
            f"tool {tool_qualname!r} is defined in __main__ (a notebook or a script), which the "
            "bridge's workers cannot import; move it into an importable module"
        )
    try:
        resolved: Any = pkgutil.resolve_name(f"{tool_module}:{tool_qualname}")
    except (ImportError, AttributeError):
        resolved = None
    if resolved is not tool:
        raise ProgramError(
            f"tool {tool_module}:{tool_qualname} does not resolve back to {tool!r} by import"
        )
    return f"{tool_module}:{tool_qualname}"


def _tool_entry(tool: Any) -> Any:
    """What a spec stores for one tool: its name or path, else the function as code.

    A function the worker cannot import by name (defined in a notebook cell, nested)
    travels by value; running it then needs a server that allows code.
    """
    if isinstance(tool, Mapping) and isinstance(tool.get("$code"), str):
        return dict(tool)  # already code data (a spec rebuilt from to_dict())
    try:
        return tool_path(tool)
    except ProgramError:
        if isinstance(tool, str) or not callable(tool):
            raise
    name = getattr(tool, "__name__", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise ProgramError(
            f"tool {tool!r} needs a name (DSPy shows it to the LM): define it with def, not lambda"
        )
    return code_data(tool, what=f"tool {name}")


@register_module_type
class ReAct(_DSPyModule):
    """``dspy.ReAct(signature, tools)``: reason, call tools, then answer.

    ``tools`` are names a shared bridge server registered (``serve --tool
    NAME=package.module:function``), or, on a kernel's private server, the
    owner's functions or their importable dotted names; the spec stores the
    names and the bridge worker imports them where the module runs. A function
    defined in the notebook (no import path) is stored as code and shipped by
    value: it runs only where the server allows code (``serve --allow-code``;
    a kernel's private server does).
    """

    type_name: ClassVar[str] = "ReAct"
    extra_params: ClassVar[tuple[str, ...]] = ("max_iters",)
    __slots__ = ()

    def __init__(
        self,
        signature: Any,
        tools: Sequence[Callable[..., Any] | str | Mapping[str, Any]] = (),
        *,
        max_iters: int = 5,
        instructions: str | None = None,
        descriptions: Mapping[str, str] | None = None,
        name: str | None = None,
    ):
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
            raise ProgramError("tools must be a list of functions or dotted names")
        if not isinstance(max_iters, int) or isinstance(max_iters, bool) or max_iters < 1:
            raise ProgramError(f"max_iters must be a positive int, got {max_iters!r}")
        entries = [_tool_entry(t) for t in tools]
        names = [e if isinstance(e, str) else e["$code"] for e in entries]
        if len(set(names)) != len(names):
            raise ProgramError(f"duplicate tools: {names}")
        self._setup(
            signature,
            name,
            tools=entries,
            max_iters=max_iters,
            instructions=instructions,
            descriptions=descriptions,
        )

    def _repr_args(self) -> list[str]:
        args = super()._repr_args()
        shown = [t if isinstance(t, str) else t["$code"].removeprefix("tool ") for t in self.tools]
        return [f"tools={shown!r}" if a.startswith("tools=") else a for a in args]

    @property
    def tools(self) -> list[Any]:
        """Tool names or paths, and notebook functions as code data (``{"$code": "tool f"}``)."""
        return list(self._options["tools"])

    def output_fields(self) -> list[str]:
        return ["trajectory", "reasoning", *super().output_fields()]
