"""Module base classes: a module in a spec is pure, immutable data.

A module is a *description* (its type, options and variable bindings), never
a live object holding an LM or a connection. That is what lets a spec be
printed, compared, serialized, sent to the bridge server and rebuilt there.

Two kinds:

* **native** modules run in the kernel (see :mod:`dspex_jupyter.program.native`);
  they implement :meth:`NativeModule.execute`.
* **bridged** modules are DSPy modules run by the bridge server's workers
  (see :mod:`dspex_jupyter.program.bridged`); in the kernel they only hold data.

Every module type registers itself under its ``type`` name, so
``Program.from_dict`` can rebuild any module from ``Module.to_dict()``.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from ..errors import ProgramError, ValidationError
from ..variables.types import check_name

__all__ = [
    "Module",
    "NativeModule",
    "BridgedModule",
    "module_from_dict",
    "register_module_type",
    "json_safe",
    "check_json",
]

_REGISTRY: dict[str, type[Module]] = {}


def register_module_type(cls: type[Module]) -> type[Module]:
    """Class decorator: make ``cls`` rebuildable from its ``to_dict()`` by ``type`` name."""
    _REGISTRY[cls.type_name] = cls
    return cls


def module_from_dict(data: Any) -> Module:
    """Rebuild a module from :meth:`Module.to_dict` output; bad data raises ``ProgramError``."""
    if not isinstance(data, Mapping):
        raise ProgramError(f"a module must be a mapping, got {type(data).__name__}")
    type_name = data.get("type")
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ProgramError(f"unknown module type {type_name!r}; known: {sorted(_REGISTRY)}")
    kind = data.get("kind", cls.kind)
    if kind != cls.kind:
        raise ProgramError(f"module type {type_name!r} is {cls.kind}, not {kind!r}")
    unknown = set(data) - {"type", "kind", "name", "options", "bindings"}
    if unknown:
        raise ProgramError(f"module {type_name!r}: unknown keys {sorted(unknown)}")
    options = data.get("options", {})
    if not isinstance(options, Mapping):
        raise ProgramError(f"module {type_name!r}: options must be a mapping")
    module = cls._from_options(dict(options), name=data.get("name"))
    bindings = data.get("bindings", {})
    if not isinstance(bindings, Mapping):
        raise ProgramError(f"module {type_name!r}: bindings must be a mapping param -> variable")
    for param, variable in bindings.items():
        module = module.bind_to_variable(variable, as_=param)
    return module


def json_safe(value: Any, *, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: tuples become lists, unknown objects their ``str``.

    Used for run summaries and traces, which must always serialize even when a
    native callable returns something exotic.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if _depth > 50:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth=_depth + 1) for v in value]
    if hasattr(value, "model_dump"):  # pydantic models (DSPy types)
        try:
            return json_safe(value.model_dump(mode="json"), _depth=_depth + 1)
        except Exception:
            pass
    if hasattr(value, "tolist"):  # numpy
        try:
            return json_safe(value.tolist(), _depth=_depth + 1)
        except Exception:
            pass
    return str(value)


def check_json(value: Any, what: str) -> Any:
    """Return a canonical JSON copy of ``value`` (tuples -> lists) or raise ``ProgramError``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ProgramError(f"{what} must be JSON-safe data: {exc}") from None


def check_identifier(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ProgramError(f"{what} must be a Python identifier, got {name!r}")
    return name


def _freeze(value: Any) -> Any:
    """Deep read-only copy of JSON data, so a module really is immutable."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class Module:
    """Base of every module: type, options, bindings; immutable and comparable by value.

    Subclasses set :attr:`kind` and :attr:`type_name`, validate their options
    in ``__init__`` (calling :meth:`_init`), and say which parameters may be
    bound with :meth:`bindable_params`.
    """

    kind: ClassVar[str] = "abstract"
    type_name: ClassVar[str] = "Module"

    __slots__ = ("_name", "_options", "_bindings")
    _name: str | None
    _options: Mapping[str, Any]
    _bindings: Mapping[str, str]

    def _init(self, options: Mapping[str, Any], name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ProgramError(f"a module name must be a non-empty string, got {name!r}")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_options", _freeze(check_json(dict(options), "module options")))
        object.__setattr__(self, "_bindings", MappingProxyType({}))

    @classmethod
    def _from_options(cls, options: dict[str, Any], name: str | None) -> Module:
        """Rebuild from ``to_dict()['options']``; subclasses map options to ``__init__``."""
        try:
            return cls(**options, name=name)  # type: ignore[call-arg]
        except TypeError as exc:
            raise ProgramError(f"module {cls.type_name!r}: bad options: {exc}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new module instead")

    # ------------------------------------------------------------------ data

    @property
    def name(self) -> str:
        """The label used in traces (defaults to the type name)."""
        return self._name or self.type_name

    @property
    def options(self) -> dict[str, Any]:
        """A copy of the module's options (JSON data)."""
        return _thaw(self._options)

    @property
    def bindings(self) -> dict[str, str]:
        """``{parameter: variable name}``: which parameter reads which variable."""
        return dict(self._bindings)

    def input_fields(self) -> list[str]:
        """Names this module reads from the running values (required ones)."""
        return []

    def optional_input_fields(self) -> list[str]:
        """Names this module reads from the running values if present."""
        return []

    def output_fields(self) -> list[str] | None:
        """Names this module adds to the running values; ``None`` if unknown before it runs."""
        return []

    def bindable_params(self) -> Iterable[str]:
        """The parameters ``bind_to_variable(..., as_=param)`` accepts."""
        return ()

    def describe_param(self, param: str) -> str:
        """What binding ``param`` means, for docs, errors and reprs."""
        return f"parameter {param!r}"

    # ------------------------------------------------------------------ bindings

    def bind_to_variable(self, name: str, as_: str | None = None) -> Module:
        """Return a copy where parameter ``as_`` (default: ``name``) reads variable ``name``.

        The value is read when this module starts executing, from the context
        the program runs in (for bridged modules: by the bridge server, from
        the session), so a change made between two runs (by an optimizer, a
        widget, another kernel) is used by the next run; the version read is
        recorded in the run's trace.
        """
        try:
            check_name(name)
        except ValidationError as exc:
            raise ProgramError(f"bind_to_variable needs a valid variable name: {exc}") from None
        param = name if as_ is None else as_
        if not isinstance(param, str) or not param:
            raise ProgramError(f"as_ must be a parameter name, got {as_!r}")
        allowed = self.bindable_params()
        if param not in allowed:
            raise ProgramError(
                f"{self.type_name} has no bindable parameter {param!r}; "
                f"it accepts {list(allowed)} (see {type(self).__module__}.{type(self).__qualname__})"
            )
        current = self._bindings.get(param)
        if current is not None and current != name:
            raise ProgramError(
                f"{self.type_name}: parameter {param!r} is already bound to variable {current!r}"
            )
        self._check_binding(param, dict(self._bindings))
        clone = object.__new__(type(self))
        for slot in _all_slots(type(self)):
            object.__setattr__(clone, slot, getattr(self, slot))
        bindings = dict(sorted({**self._bindings, param: name}.items()))  # canonical order
        object.__setattr__(clone, "_bindings", MappingProxyType(bindings))
        return clone

    def _check_binding(self, param: str, existing: Mapping[str, str]) -> None:
        """Hook: reject combinations (e.g. ``model`` and ``llm_model`` together)."""

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data that :func:`module_from_dict` turns back into an equal module."""
        data: dict[str, Any] = {"type": self.type_name, "kind": self.kind}
        if self._name is not None:
            data["name"] = self._name
        data["options"] = self.options
        data["bindings"] = dict(sorted(self._bindings.items()))
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Module):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def _repr_args(self) -> list[str]:
        return [f"{k}={v!r}" for k, v in self.options.items()]

    def __repr__(self) -> str:
        args = self._repr_args()
        if self._name is not None:
            args.append(f"name={self._name!r}")
        text = f"{self.type_name}({', '.join(args)})"
        for param, variable in self._bindings.items():
            text += (
                f".bind_to_variable({variable!r})"
                if param == variable
                else f".bind_to_variable({variable!r}, as_={param!r})"
            )
        return text


def _all_slots(cls: type) -> list[str]:
    slots: list[str] = []
    for klass in cls.__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in slots:
                slots.append(slot)
    return slots


class NativeModule(Module):
    """A module that runs in the kernel. Subclasses implement :meth:`execute`."""

    kind: ClassVar[str] = "native"
    __slots__ = ()

    def execute(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """Run on ``inputs`` (the running values) with ``params`` (bound variable values).

        Returns the outputs to merge into the running values.
        """
        raise NotImplementedError


class BridgedModule(Module):
    """A DSPy module run by the bridge server; in the kernel it is only data."""

    kind: ClassVar[str] = "bridged"
    __slots__ = ()
