"""``Custom(MyModule, *args, **kwargs)``: a ``dspy.Module`` subclass from the notebook, bridged.

The class (with the arguments to build it) is shipped to the bridge worker by value
(:mod:`~.code`), built there once, and called like DSPy calls a module:
``instance(**inputs)`` inside the run's ``dspy.context(lm=...)``. Because that runs
the notebook's code in the worker, it needs a server that allows code
(``serve --allow-code``; a kernel's private server does) and the ``execute`` right.

In the kernel it is data like every module: the inputs are the parameters of the
class's ``forward`` (those without a default are required), the outputs are whatever
the returned ``dspy.Prediction`` holds (unknown until it runs). Bindings work as for
the other bridged modules: ``temperature``, ``model``/``llm_model``, ``max_tokens``, or
a ``forward`` parameter read from a variable.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ..errors import ProgramError
from .bridged import _PARAM_MEANING, LM_PARAMS
from .code import code_data, is_code
from .module import BridgedModule, register_module_type

__all__ = ["Custom"]


def _forward_params(cls: type) -> tuple[list[str], list[str]]:
    """``(all, required)`` parameter names of ``cls.forward`` (without ``self``)."""
    forward = getattr(cls, "forward", None)
    if not callable(forward):
        raise ProgramError(f"{cls.__name__} has no forward() method; a dspy.Module defines one")
    params = list(inspect.signature(forward).parameters.values())[1:]
    names, required = [], []
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise ProgramError(f"{cls.__name__}.forward: inputs are passed by name, not position")
        names.append(param.name)
        if param.default is param.empty:
            required.append(param.name)
    return names, required


@register_module_type
class Custom(BridgedModule):
    """A notebook-defined ``dspy.Module`` subclass, run in a bridge worker (see the module doc)."""

    type_name: ClassVar[str] = "Custom"
    __slots__ = ()

    def __init__(self, module: type, *args: Any, **kwargs: Any) -> None:
        if not isinstance(module, type) or not any(
            k.__name__ == "Module" for k in module.__mro__[1:]
        ):
            raise ProgramError(
                f"Custom needs a dspy.Module subclass (the class, not an instance), got {module!r}"
            )
        inputs, required = _forward_params(module)
        what = f"module {module.__qualname__}"
        options = {
            "class": module.__qualname__,
            "inputs": inputs,
            "required": required,
            "code": code_data((module, args, kwargs), what=what),
        }
        self._init(options, None)

    @classmethod
    def _from_options(cls, options: dict[str, Any], name: str | None) -> Custom:
        """Rebuild from data (no code runs): the class travels inside ``options["code"]``."""
        inputs, required = options.get("inputs"), options.get("required")
        if (
            not isinstance(options.get("class"), str)
            or not is_code(options.get("code"))
            or not isinstance(inputs, list)
            or not isinstance(required, list)
            or not set(required) <= set(inputs)
            or set(options) != {"class", "inputs", "required", "code"}
        ):
            raise ProgramError(f"module 'Custom': malformed options {sorted(options)}")
        module = object.__new__(cls)
        module._init(options, name)
        return module

    @property
    def class_name(self) -> str:
        return self._options["class"]

    @property
    def name(self) -> str:
        return self._name or self.class_name

    def input_fields(self) -> list[str]:
        bound = set(self._bindings)
        return [f for f in self._options["required"] if f not in bound]

    def optional_input_fields(self) -> list[str]:
        return ["llm_model"]

    def output_fields(self) -> None:
        return None  # whatever forward() returns

    def bindable_params(self) -> Iterable[str]:
        return (*LM_PARAMS, *self._options["inputs"])

    def describe_param(self, param: str) -> str:
        return _PARAM_MEANING.get(param, f"the input {param!r} of {self.class_name}.forward")

    def _check_binding(self, param: str, existing: Mapping[str, str]) -> None:
        if param in ("model", "llm_model") and ({"model", "llm_model"} - {param}) & set(existing):
            raise ProgramError(f"{self.class_name}: bind either 'model' or 'llm_model', not both")

    def _repr_args(self) -> list[str]:
        return [self.class_name]
