"""Native modules: pure Python that runs in the kernel, in microseconds, with no DSPy.

A program made only of native modules never starts a bridge server and never
imports DSPy, so quick local steps (routing, templating, validation) stay
instant. Two kinds ship here:

:class:`QueryClassifier`
    keyword/heuristic classification of a question into one of
    :data:`CATEGORIES`.
:func:`function` (alias :data:`Native`)
    turns any importable Python callable into a module.
"""

from __future__ import annotations

import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import ModuleExecutionError, ProgramError
from .module import NativeModule, check_identifier, register_module_type

__all__ = ["QueryClassifier", "Function", "function", "Native", "CATEGORIES", "classify"]

#: The categories :class:`QueryClassifier` assigns, in tie-break order, with what they mean.
CATEGORIES: dict[str, str] = {
    "comparison": "weighs two or more things (vs, compare, difference between, better than)",
    "how-to": "asks for steps or a procedure (how do I, how to, steps, guide, install)",
    "explanation": "asks why or how something works (why, explain, how does ... work)",
    "opinion": "asks for a judgement or recommendation (should I, best, recommend, think)",
    "factual": "asks for a fact or definition (what, who, when, where, which, define)",
    "other": "none of the above (statements, greetings, empty input)",
}

_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    (cat, weight, re.compile(pattern, re.I))
    for cat, weight, pattern in [
        (
            "comparison",
            3,
            r"\b(vs\.?|versus|compared? (to|with)|comparison|difference between|differ(s|ence)?|better than|worse than|pros and cons)\b",
        ),
        ("comparison", 1, r"\b(which is (better|faster|cheaper)|or)\b"),
        (
            "how-to",
            3,
            r"\b(how (do|can|should|would) (i|you|we|one)|how to|steps? (to|for)|guide|tutorial|walk me through)\b",
        ),
        ("how-to", 1, r"\b(install|configure|set ?up|implement|build|create|fix)\b"),
        (
            "explanation",
            3,
            r"\b(why|explain|how (does|do|did|is|are) .{1,60} work|what causes|reason for)\b",
        ),
        ("explanation", 2, r"\bhow (does|do) (it|this|that|they) work\b"),
        ("opinion", 3, r"\b(should (i|we)|do you think|your opinion|recommend|worth it|prefer)\b"),
        ("opinion", 1, r"\b(best|worst|favorite|favourite|good idea)\b"),
        (
            "factual",
            2,
            r"^\s*(what|who|when|where|which|whom|whose|is|are|was|were|does|did|can|define)\b",
        ),
        (
            "factual",
            1,
            r"\b(what is|what are|who is|definition of|meaning of|how (many|much|long|old|big))\b",
        ),
    ]
]


def classify(question: str) -> tuple[str, float, dict[str, float]]:
    """``(category, confidence, scores)`` for ``question``; deterministic and local.

    Each category scores the weights of its rules that match; the highest
    score wins (ties go to the earlier category of :data:`CATEGORIES`);
    ``confidence`` is the winner's share of all matched weight. No match:
    ``("other", 1.0 if the text is empty else 0.5, {})``.
    """
    scores: dict[str, float] = {}
    for category, weight, pattern in _RULES:
        if pattern.search(question):
            scores[category] = scores.get(category, 0.0) + weight
    if not scores:
        return "other", 1.0 if not question.strip() else 0.5, {}
    order = list(CATEGORIES)
    best = max(scores, key=lambda c: (scores[c], -order.index(c)))
    return best, round(scores[best] / sum(scores.values()), 3), scores


@register_module_type
class QueryClassifier(NativeModule):
    """Classify the question into one of :data:`CATEGORIES`, locally, in microseconds.

    Reads ``input_field`` (default ``"question"``) from the running values and
    outputs ``category``, ``confidence`` and ``llm_model``.

    Bindable parameters:

    ``llm_model`` (or ``model``)
        the model the *downstream* LM steps should use. The classifier does
        not call an LM itself: it publishes the bound value as its
        ``llm_model`` output, and a following bridged module without its own
        model binding uses it (see :mod:`dspex_jupyter.modules`). The trace
        records which version of the variable was read. Unbound, the
        ``llm_model`` output is ``None`` (the context's LM model is used).
    """

    type_name: ClassVar[str] = "QueryClassifier"
    __slots__ = ()

    def __init__(self, *, input_field: str = "question", name: str | None = None) -> None:
        check_identifier(input_field, "input_field")
        self._init({"input_field": input_field}, name)

    def input_fields(self) -> list[str]:
        return [self._options["input_field"]]

    def output_fields(self) -> list[str]:
        return ["category", "confidence", "llm_model"]

    def bindable_params(self) -> Iterable[str]:
        return ("llm_model", "model")

    def describe_param(self, param: str) -> str:
        return "the model the downstream LM steps use (published as the llm_model output)"

    def _check_binding(self, param: str, existing: Mapping[str, str]) -> None:
        if set(existing) - {param}:
            raise ProgramError("QueryClassifier: bind either 'llm_model' or 'model', not both")

    def _repr_args(self) -> list[str]:
        field = self._options["input_field"]
        return [] if field == "question" else [f"input_field={field!r}"]

    def execute(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        field = self._options["input_field"]
        question = inputs.get(field)
        if not isinstance(question, str):
            raise ModuleExecutionError(
                f"QueryClassifier needs a string {field!r}, got {type(question).__name__}"
            )
        category, confidence, _ = classify(question)
        model = params.get("llm_model", params.get("model"))
        return {"category": category, "confidence": confidence, "llm_model": model}


def _resolve(path: str) -> Callable[..., Any]:
    try:
        obj: Any = pkgutil.resolve_name(path)
    except (ImportError, AttributeError) as exc:
        raise ProgramError(f"cannot import the function {path!r}: {exc}") from None
    if not callable(obj):
        raise ProgramError(f"{path!r} is not callable")
    return obj


def _path_of(fn: Callable[..., Any] | str) -> str:
    if isinstance(fn, str):
        if ":" not in fn:
            module, _, attr = fn.rpartition(".")
            fn = f"{module}:{attr}"
        module, _, qualname = fn.partition(":")
        if (
            not module
            or not qualname
            or not all(p.isidentifier() for p in [*module.split("."), *qualname.split(".")])
        ):
            raise ProgramError(f"not an importable function name: {fn!r}")
        return fn
    fn_module: str | None = getattr(fn, "__module__", None)
    fn_qualname: str | None = getattr(fn, "__qualname__", None)
    if not callable(fn) or not fn_module or not fn_qualname or "<" in fn_qualname:
        raise ProgramError(
            f"{fn!r} cannot be named in a spec: use a function defined at the top level of a "
            "module or notebook cell (not a lambda, a nested function or a bound method)"
        )
    path = f"{fn_module}:{fn_qualname}"
    if _resolve(path) is not fn:
        raise ProgramError(f"{path} does not resolve back to {fn!r} by import")
    return path


@register_module_type
class Function(NativeModule):
    """Any Python callable as a native module, named in the spec by ``"module:qualname"``.

    The function is called with keyword arguments: each of ``inputs`` taken
    from the running values, plus each bound parameter (its variable's value).
    ``inputs`` defaults to the function's parameters without defaults (minus
    bound ones); parameters with defaults are passed when present in the
    running values. It returns a mapping of outputs, or, when ``outputs``
    names exactly one field, any value (stored under that name); a tuple is
    matched to several ``outputs`` in order.

    Functions defined in a notebook live in ``__main__``; they work, since
    native modules run in the kernel, but a spec naming them only rebuilds
    where that function is defined.
    """

    type_name: ClassVar[str] = "Function"
    __slots__ = ()

    def __init__(
        self,
        function: Callable[..., Any] | str,
        *,
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        path = _path_of(function)
        options: dict[str, Any] = {"function": path}
        for key, value in (("inputs", inputs), ("outputs", outputs)):
            if value is not None:
                if isinstance(value, str) or not isinstance(value, Sequence):
                    raise ProgramError(f"{key} must be a list of field names, got {value!r}")
                names = [check_identifier(v, f"a field name in {key}") for v in value]
                if len(set(names)) != len(names):
                    raise ProgramError(f"{key} has duplicates: {names}")
                options[key] = names
        self._init(options, name)

    @property
    def function_path(self) -> str:
        return self._options["function"]

    def _signature(self) -> inspect.Signature | None:
        try:
            return inspect.signature(_resolve(self.function_path))
        except (TypeError, ValueError, ProgramError):
            return None

    def _params(self) -> tuple[list[str], list[str], bool]:
        """(required, optional, accepts **kwargs) parameter names of the function."""
        signature = self._signature()
        if signature is None:
            return [], [], True
        required: list[str] = []
        optional: list[str] = []
        var_kw = False
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                (required if p.default is p.empty else optional).append(p.name)
        return required, optional, var_kw

    def input_fields(self) -> list[str]:
        if "inputs" in self._options:
            return list(self._options["inputs"])
        required, _, _ = self._params()
        return [p for p in required if p not in self._bindings]

    def optional_input_fields(self) -> list[str]:
        if "inputs" in self._options:
            return []
        _, optional, _ = self._params()
        return [p for p in optional if p not in self._bindings]

    def output_fields(self) -> list[str] | None:
        """The declared outputs; ``None`` (unknown until it runs) when not declared."""
        return list(self._options["outputs"]) if "outputs" in self._options else None

    def bindable_params(self) -> Iterable[str]:
        required, optional, var_kw = self._params()
        names = [*required, *optional]
        if var_kw:
            return _Anything(names)
        return names

    def describe_param(self, param: str) -> str:
        return f"the keyword argument {param!r} of {self.function_path}"

    def _repr_args(self) -> list[str]:
        options = self.options
        return [repr(options.pop("function")), *(f"{k}={v!r}" for k, v in options.items())]

    def execute(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        fn = _resolve(self.function_path)
        names = self.input_fields() + [n for n in self.optional_input_fields() if n in inputs]
        kwargs = {n: inputs[n] for n in names if n in inputs}
        kwargs.update(params)
        result = fn(**kwargs)
        outputs = self.output_fields() or []
        if isinstance(result, Mapping):
            if not all(isinstance(k, str) for k in result):
                raise ModuleExecutionError(f"{self.function_path} returned non-string keys")
            missing = [o for o in outputs if o not in result]
            if missing:
                raise ModuleExecutionError(
                    f"{self.function_path} did not return the declared outputs {missing}"
                )
            return dict(result)
        if len(outputs) == 1:
            return {outputs[0]: result}
        if len(outputs) > 1 and isinstance(result, tuple) and len(result) == len(outputs):
            return dict(zip(outputs, result, strict=True))
        raise ModuleExecutionError(
            f"{self.function_path} returned a {type(result).__name__}; return a mapping of "
            "outputs, or declare outputs=[...] to name the value(s)"
        )


class _Anything(list):
    """Bindable names of a function taking ``**kwargs``: anything goes."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item.isidentifier()


def function(
    fn: Callable[..., Any] | str,
    *,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    name: str | None = None,
) -> Function:
    """Wrap a callable (or its ``"module:qualname"`` name) as a native module.

    >>> upper = function(str_upper, inputs=["text"], outputs=["shout"])  # doctest: +SKIP
    """
    return Function(fn, inputs=inputs, outputs=outputs, name=name)


#: ``Native(fn, ...)`` is the same as :func:`function`.
Native = function
