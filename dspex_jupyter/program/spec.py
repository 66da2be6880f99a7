"""``ProgramSpec``: a program as pure, immutable, comparable, serializable data."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import DSPexError, ProgramError
from ..variables.table import define
from .module import Module, check_json, json_safe, module_from_dict

__all__ = ["ProgramSpec", "VariableDecl", "SPEC_FORMAT", "use_runner"]

SPEC_FORMAT = "dspex-program/1"
_SPEC_KEYS = {"format", "name", "variables", "modules"}
_VARIABLE_KEYS = {"name", "type", "initial", "constraints", "metadata"}


#: What ``spec.run(...)`` calls: the ``Program`` namespace of :mod:`dspex_jupyter.running`,
#: which installs itself here on import. Running needs a context, and the
#: context sits above this layer, so the arrow must point this way.
_runner: Any = None


def use_runner(runner: Any) -> None:
    """Install the object whose ``run``/``evaluate``/``tune`` run, score and tune specs."""
    global _runner
    _runner = runner


def _running() -> Any:
    if _runner is None:
        raise ProgramError("running a program needs dspex_jupyter.running (import dspex_jupyter)")
    return _runner


class VariableDecl(NamedTuple):
    """A variable the program declares (registered on the context when it runs, if missing)."""

    name: str
    type: str
    initial: Any
    constraints: Mapping[str, Any]
    metadata: Mapping[str, Any]

    @classmethod
    def make(
        cls,
        name: str,
        type: str | builtins.type,
        initial: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> VariableDecl:
        """Validate the whole definition now (same rules as every backend) so a bad
        spec fails when it is built, not when it runs."""
        record, _ = define(name, type, initial, constraints=constraints, metadata=metadata)
        return cls(record.name, record.type, record.value, record.constraints, record.metadata)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "initial": json_safe(self.initial),
            "constraints": json_safe(dict(self.constraints)),
            "metadata": json_safe(dict(self.metadata)),
        }

    def __repr__(self) -> str:
        text = f"{self.name}: {self.type} = {self.initial!r}"
        if self.constraints:
            text += f" {dict(self.constraints)!r}"
        return text


class ProgramSpec:
    """Declared variables and a chain of modules. Builder methods return new specs.

    Specs compare equal by value, hash, print readably, and round-trip exactly
    through :meth:`to_dict` / :meth:`from_dict` (JSON-safe).
    """

    __slots__ = ("_name", "_variables", "_modules")
    _name: str | None
    _variables: tuple[VariableDecl, ...]
    _modules: tuple[Module, ...]

    def __init__(
        self,
        variables: Iterable[VariableDecl] = (),
        modules: Iterable[Module] = (),
        name: str | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ProgramError(f"a program name must be a non-empty string, got {name!r}")
        variables = tuple(variables)
        modules = tuple(modules)
        for decl in variables:
            if not isinstance(decl, VariableDecl):
                raise ProgramError(f"not a variable declaration: {decl!r}")
        seen = [d.name for d in variables]
        dupes = sorted({n for n in seen if seen.count(n) > 1})
        if dupes:
            raise ProgramError(f"variables declared twice: {dupes}")
        for module in modules:
            if not isinstance(module, Module):
                raise ProgramError(
                    f"chain() takes modules (e.g. ChainOfThought('question -> answer')), "
                    f"got {module!r}"
                )
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_variables", variables)
        object.__setattr__(self, "_modules", modules)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("a ProgramSpec is immutable; builder methods return a new spec")

    # ------------------------------------------------------------------ builder

    def defvariable(
        self,
        name: str,
        type: str | builtins.type,
        initial: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ProgramSpec:
        """A new spec that also declares variable ``name`` (validated now)."""
        if any(d.name == name for d in self._variables):
            raise ProgramError(f"variable {name!r} is already declared in this program")
        decl = VariableDecl.make(name, type, initial, constraints, metadata)
        return ProgramSpec((*self._variables, decl), self._modules, self._name)

    def chain(self, modules: Iterable[Module]) -> ProgramSpec:
        """A new spec whose modules run after the existing ones, in order."""
        if isinstance(modules, Module):
            modules = [modules]
        if isinstance(modules, (str, bytes, Mapping)) or not isinstance(modules, Iterable):
            raise ProgramError(f"chain() takes a list of modules, got {modules!r}")
        return ProgramSpec(self._variables, (*self._modules, *modules), self._name)

    def named(self, name: str) -> ProgramSpec:
        """A copy with a name (shown in traces, the run history and the lab panel)."""
        return ProgramSpec(self._variables, self._modules, name)

    # ------------------------------------------------------------------ data

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def variables(self) -> tuple[VariableDecl, ...]:
        return self._variables

    @property
    def modules(self) -> tuple[Module, ...]:
        return self._modules

    @property
    def needs_bridge(self) -> bool:
        """True when a module runs out of process (running it bridges the context)."""
        return any(m.kind == "bridged" for m in self._modules)

    def check_flow(self, input_names: Iterable[str]) -> None:
        """Check statically that every module finds its inputs; ``ProgramError`` names the gap.

        After a module whose outputs are unknown until it runs (a function
        without ``outputs=``), the remaining modules are checked at run time.
        """
        available = set(input_names)
        for index, module in enumerate(self._modules):
            missing = [f for f in module.input_fields() if f not in available]
            if missing:
                raise ProgramError(
                    f"module #{index} {module.name} needs {missing}, which neither the inputs "
                    f"nor an earlier module provides (available: {sorted(available)})"
                )
            produced = module.output_fields()
            if produced is None:
                return
            available.update(produced)

    def run(self, inputs: Mapping[str, Any], context: Any = None, **options: Any) -> Any:
        """Run this program: ``Program.run(self, ...)`` (see :mod:`dspex_jupyter.running`)."""
        return _running().run(self, inputs, context=context, **options)

    def evaluate(self, devset: Any, metric: Any, **options: Any) -> Any:
        """Score this program: ``Program.evaluate(self, devset, metric, ...)``."""
        return _running().evaluate(self, devset, metric, **options)

    def compile(self, trainset: Any, metric: Any, **options: Any) -> Any:
        """Compile this program: ``Program.compile(self, trainset, metric, ...)``."""
        return _running().compile(self, trainset, metric, **options)

    def tune(self, devset: Any, metric: Any, **options: Any) -> Any:
        """Tune this program's variables: ``Program.tune(self, devset, metric, ...)``."""
        return _running().tune(self, devset, metric, **options)

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data; :meth:`from_dict` rebuilds an equal spec."""
        return {
            "format": SPEC_FORMAT,
            "name": self._name,
            "variables": [d.to_dict() for d in self._variables],
            "modules": [m.to_dict() for m in self._modules],
        }

    @classmethod
    def from_dict(cls, data: Any) -> ProgramSpec:
        """Rebuild a spec from :meth:`to_dict` output; malformed data raises ``ProgramError``."""
        if not isinstance(data, Mapping):
            raise ProgramError(f"a program spec must be a mapping, got {type(data).__name__}")
        check_json(dict(data), "a program spec")
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise ProgramError(f"unknown keys in the program spec: {sorted(unknown)}")
        if data.get("format", SPEC_FORMAT) != SPEC_FORMAT:
            raise ProgramError(
                f"unsupported spec format {data.get('format')!r}; expected {SPEC_FORMAT!r}"
            )
        variables, modules = data.get("variables", []), data.get("modules", [])
        if not isinstance(variables, list) or not isinstance(modules, list):
            raise ProgramError("'variables' and 'modules' must be lists")
        spec = cls(name=data.get("name"))
        for entry in variables:
            if not isinstance(entry, Mapping) or not {"name", "type", "initial"} <= set(entry):
                raise ProgramError(f"a variable needs name, type and initial: {entry!r}")
            if set(entry) - _VARIABLE_KEYS:
                raise ProgramError(
                    f"unknown keys in variable {entry.get('name')!r}: {sorted(set(entry) - _VARIABLE_KEYS)}"
                )
            try:
                spec = spec.defvariable(
                    entry["name"],
                    entry["type"],
                    entry["initial"],
                    entry.get("constraints") or None,
                    entry.get("metadata") or None,
                )
            except ProgramError:
                raise
            except DSPexError as exc:
                raise ProgramError(f"variable {entry.get('name')!r}: {exc}") from None
        return spec.chain([module_from_dict(m) for m in modules])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProgramSpec):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        import json

        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        head = f"Program {self._name!r}" if self._name else "Program"
        lines = [f"<{head}:"]
        lines.append("  variables:" if self._variables else "  variables: (none)")
        lines += [f"    {d!r}" for d in self._variables]
        lines.append("  chain:" if self._modules else "  chain: (empty)")
        for index, module in enumerate(self._modules):
            lines.append(f"    {index}. [{module.kind}] {module!r}")
        return "\n".join(lines) + ">"
