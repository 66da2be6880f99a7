"""The Program DSL: declare variables, chain modules, run them in a context.

::

    spec = (Program.new()
        .defvariable("temperature", "float", initial=0.7)
        .chain([QueryClassifier(),
                ChainOfThought("question -> answer").bind_to_variable("temperature")]))
    result = Program.run(spec, {"question": "..."}, context=ctx)   # or spec.run(...)
    result.outputs["answer"], result.trace

A spec is pure, immutable data: builder methods return new specs, specs
compare equal by value, print readably, and round-trip exactly through
``spec.to_dict()`` / ``Program.from_dict(d)`` (JSON-safe).

Data flow
---------
A run keeps one dict of *running values*, starting as a copy of ``inputs``.
Modules run in chain order; each reads the fields it needs from the running
values (its signature's inputs for DSPy modules, ``question`` for
``QueryClassifier``, a function's parameters for native functions), and its
outputs are merged into the running values (a later output of the same name
replaces an earlier one), where the next modules find them. The result's
``outputs`` holds everything the modules produced. Before anything runs, the
chain is checked statically: a module needing a field that neither the
inputs nor an earlier module provides is a ``ProgramError``.

Bindings
--------
``module.bind_to_variable(name, as_=param)`` returns a new module whose
parameter ``param`` (default: ``name``) reads variable ``name``. The value is
read **when that module starts executing**, from the context the program runs
in: by the kernel for native modules, by the bridge server from the session
for bridged ones. So a value set between two runs (by a widget, an optimizer,
another kernel on a shared session) is used by the next run, and each
:class:`TraceEntry` records, under ``variables``, the version it read. What a
parameter means depends on the module: see :mod:`dspex_jupyter.program.bridged`
(``temperature``, ``model``/``llm_model``, ``max_tokens``, ``instructions``,
input fields) and :mod:`dspex_jupyter.program.native` (``llm_model`` of
``QueryClassifier``, any keyword of a function). Binding an unknown parameter
raises ``ProgramError`` at once.

Variables
---------
Declared variables are registered on the context when the program runs, if
missing; existing values are kept, so a re-run never resets what an
optimizer or a widget set. A declaration that conflicts with an existing
variable's type or constraints raises ``VariableExists`` before anything runs.

Backends
--------
A program with only native modules runs in the kernel and never imports DSPy
or starts a server. A program with a bridged module first calls
``context.ensure_bridged()`` and then runs each bridged module through
``context.execute_module(module_spec, inputs, bindings, lm_config)``.

This package is what a program *is* (pure data: the spec, signatures, the
module classes and their registry). Running one needs a context, so the
runner lives above it, in :mod:`dspex_jupyter.running`, and ``spec.run(...)``
reaches it through :func:`~dspex_jupyter.program.spec.use_runner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Importing the module classes registers their types, so ``module_from_dict``
# can rebuild every module a spec may hold.
from . import bridged, custom, native
from .module import BridgedModule, Module, NativeModule
from .spec import ProgramSpec, VariableDecl

__all__ = [
    "ProgramDefinition",
    "ProgramSpec",
    "VariableDecl",
    "Module",
    "NativeModule",
    "BridgedModule",
    "bridged",
    "custom",
    "native",
]


class ProgramDefinition:
    """Subclass and implement :meth:`build`: a program as a class (``Program.Definition``).

    ::

        class MyProgram(Program.Definition):
            def build(self):
                return Program.new().defvariable(...).chain([...])

        spec = MyProgram().build()
        MyProgram().run({"question": "..."}, context=ctx)
    """

    #: Optional program name; defaults to the class name.
    name: str | None = None

    def build(self) -> ProgramSpec:
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    def spec(self) -> ProgramSpec:
        """``build()``, checked, named after the class unless it set a name."""
        built = self.build()
        if not isinstance(built, ProgramSpec):
            raise TypeError(
                f"{type(self).__name__}.build() must return a ProgramSpec, got {built!r}"
            )
        return built if built.name else built.named(self.name or type(self).__name__)

    def run(self, inputs: Mapping[str, Any], context: Any = None, **options: Any) -> Any:
        """``self.spec().run(...)``: see :meth:`ProgramSpec.run`."""
        return self.spec().run(inputs, context=context, **options)
