"""Running bridged DSPy modules: the engine behind the bridge's ``ExecuteModule``.

Layering: the bridge server owns sessions and a :class:`~.workers.WorkerPool`;
the pool's worker processes call :func:`run_module` (the only code here that
imports DSPy; what it calls is built by :mod:`.building`). Nothing in this module touches global ``dspy.configure`` state:
every run gets the ``dspy.LM(..., cache=False)`` of its own configuration
(one per distinct model/temperature/endpoint, kept alive for its connections)
and runs inside ``dspy.context(lm=...)``, which is thread-local, so concurrent
runs in one worker never see each other's model or temperature.

The seam for the gRPC server
----------------------------
:func:`execute_module_request` is the whole server-side job of one
``ExecuteModule`` call, JSON in and JSON out::

    execute_module_request(
        pool,                      # a started WorkerPool
        module_spec,               # Module.to_dict(): {"type": "ChainOfThought", "kind": "bridged",
                                   #   "options": {"signature": "question -> answer", ...},
                                   #   "bindings": {"temperature": "temperature"}}
        inputs,                    # {"question": "What is DSPex?"}  (the signature's inputs)
        bindings,                  # {param: variable name}, e.g. {"temperature": "temperature"}
        lm_config,                 # {"model": "gpt-4", "api_base": "http://...", "api_key": "...",
                                   #   optional "temperature", "max_tokens", "num_retries", "timeout"}
        lookup,                    # lookup(variable name) -> (value, version), from the session;
                                   #   raise VariableNotFound for a missing one
        timeout=300.0,
    ) -> {
        "outputs": {"reasoning": "...", "answer": "..."},
        "usage": {"prompt_tokens": 112, "completion_tokens": 31, "total_tokens": 143,
                  "calls": 1, "by_model": {"openai/gpt-4": {...}}},
        "latency_ms": 48.1,        # the DSPy call, in the worker
        "total_ms": 52.3,          # round trip through the pool
        "lm": {"model": "openai/gpt-4", "temperature": 0.9, "max_tokens": null,
               "api_base": "http://127.0.0.1:PORT/v1"},     # never the API key
        "variables": {"temperature": {"param": "temperature", "version": 3, "value": 0.9}},
        "worker": {"pid": 12345},
    }

Errors raise typed exceptions: ``ProgramError`` (malformed module spec,
unknown tool), ``VariableNotFound`` (a bound variable is missing),
``ModuleExecutionError`` (LM failure, crashed worker, timeout). Their
messages never contain the API key.

Model choice: a bound ``model``/``llm_model``, else ``lm_config["model"]``.
A name without a provider prefix (``"gpt-4"``) becomes ``"openai/gpt-4"`` and
is sent to ``lm_config["api_base"]`` with ``lm_config["api_key"]`` (the
OpenAI-compatible endpoint of SPEC §9). A prefixed name (``"anthropic/..."``)
gets the configured ``api_base``/``api_key`` only if ``lm_config["model"]``
has the same prefix; otherwise LiteLLM's provider environment variables apply.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AccessDenied, DSPexError, ModuleExecutionError, ProgramError, ValidationError
from ..program.module import json_safe, module_from_dict
from .building import build_module
from .code import code_whats
from .local_lm import local_lm_config, wants_local

__all__ = [
    "execute_module_request",
    "check_module_spec",
    "resolve_bindings",
    "lm_settings",
    "run_module",
    "prewarm",
    "scrub",
]

_LM_PASSTHROUGH = (
    "temperature",
    "max_tokens",
    "num_retries",
    "timeout",
    "top_p",
    "stop",
    "model_type",
    "seed",
)
_SECRET_KEYS = ("api_key",)


def scrub(text: str, lm_config: Mapping[str, Any] | None) -> str:
    """``text`` with any configured secret replaced by ``***`` (errors travel to the kernel)."""
    for key in _SECRET_KEYS:
        secret = (lm_config or {}).get(key)
        if isinstance(secret, str) and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def check_module_spec(module_spec: Any) -> Any:
    """Rebuild and check a bridged module spec without DSPy; ``ProgramError`` if bad.

    The server and the worker both check every run's spec, and an evaluation
    sends the same spec hundreds of times: a checked spec is kept by its
    canonical JSON (modules are immutable), so a repeat costs one ``dumps``.
    """
    try:
        key = json.dumps(module_spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return _check_module_spec(module_spec)  # not JSON: let the check name the problem
    return _checked_module(key)


@functools.lru_cache(maxsize=256)
def _checked_module(key: str) -> Any:
    return _check_module_spec(json.loads(key))


def _check_module_spec(module_spec: Any) -> Any:
    module = module_from_dict(module_spec)
    if module.kind != "bridged":
        raise ProgramError(f"{module.type_name} is a {module.kind} module; it runs in the kernel")
    return module


def resolve_bindings(
    bindings: Mapping[str, str],
    lookup: Callable[[str], tuple[Any, int]],
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``({param: value}, {variable: {"param", "version", "value"}})`` read now from ``lookup``.

    A variable in ``overrides`` (already validated) gives its override instead
    of the session's value, marked ``"override": True``; the version is still
    the one the session holds, so a trace says what the run saw and replaced.
    """
    if not isinstance(bindings, Mapping):
        raise ProgramError(f"bindings must map parameters to variable names, got {bindings!r}")
    overrides = overrides or {}
    bound: dict[str, Any] = {}
    used: dict[str, dict[str, Any]] = {}
    for param, variable in bindings.items():
        value, version = lookup(variable)
        if variable in overrides:
            value = overrides[variable]
        bound[param] = value
        used[variable] = {"param": param, "version": version, "value": json_safe(value)}
        if variable in overrides:
            used[variable]["override"] = True
    return bound, used


def _public_url(url: str) -> str:
    """``url`` without user:password (a URL may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def lm_settings(
    lm_config: Mapping[str, Any], bound: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(model, dspy.LM keyword arguments, public description)`` for one run."""
    if not isinstance(lm_config, Mapping):
        raise ProgramError(f"lm_config must be a mapping, got {type(lm_config).__name__}")
    model = bound.get("model", bound.get("llm_model")) or lm_config.get("model")
    if lm_config.get("local_lm"):  # the embedded model (bridge/local_lm.py) chose the name
        model = lm_config.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ModuleExecutionError(
            "no LM model is configured: pass Context.start(lm={'model': ...}), set "
            "DSPEX_LM_MODEL, or bind a 'model' variable"
        )
    model = model.strip()
    configured = str(lm_config.get("model") or "")
    configured_provider = configured.split("/", 1)[0] if "/" in configured else "openai"
    if "/" not in model:
        model = "openai/" + model
    provider = model.split("/", 1)[0]
    kwargs: dict[str, Any] = {}
    for key in _LM_PASSTHROUGH:
        if lm_config.get(key) is not None:
            kwargs[key] = lm_config[key]
    if provider == configured_provider:
        if lm_config.get("api_base"):
            kwargs["api_base"] = str(lm_config["api_base"])
        if lm_config.get("api_key"):
            kwargs["api_key"] = str(lm_config["api_key"])
        elif (
            kwargs.get("api_base") and provider == "openai" and not os.environ.get("OPENAI_API_KEY")
        ):
            kwargs["api_key"] = "dspex-no-key"  # local OpenAI-compatible servers need no key
    if "temperature" in bound:
        temperature = bound["temperature"]
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValidationError(f"a bound temperature must be a number, got {temperature!r}")
        kwargs["temperature"] = float(temperature)
    if "max_tokens" in bound:
        max_tokens = bound["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValidationError(f"a bound max_tokens must be a positive int, got {max_tokens!r}")
        kwargs["max_tokens"] = max_tokens
    kwargs.setdefault("num_retries", 2)
    public = {
        "model": model,
        "temperature": kwargs.get("temperature"),
        "max_tokens": kwargs.get("max_tokens"),
        "api_base": _public_url(kwargs["api_base"]) if "api_base" in kwargs else None,
    }
    if lm_config.get("local_lm"):
        public["provider"] = "local"
        public["seed"] = kwargs.get("seed")
    return model, kwargs, public


def prewarm() -> None:
    """Import DSPy and LiteLLM now (about 3 s) so the first run does not pay for it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy  # noqa: F401

    dspy.ChatAdapter()
    dspy.ChainOfThought("question -> answer")  # warms signature parsing


@functools.lru_cache(maxsize=32)
def _lm(model: str, kwargs_json: str) -> Any:
    """One ``dspy.LM`` per configuration, shared by the runs that use it.

    A fresh LM per run opened a new HTTP connection per run (a TCP handshake in
    the worker and a new handler thread in the LM server); a shared one keeps
    its connections alive, as ``dspy.Evaluate`` does with its one LM. Sharing is
    safe: ``cache=False`` and ``disable_history`` leave an LM no per-call state,
    and usage is tracked per run by ``dspy.track_usage``.
    """
    import dspy

    return dspy.LM(model, cache=False, **json.loads(kwargs_json))


def _usage(tracker: Any) -> dict[str, Any]:
    total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
    for entries in tracker.usage_data.values():
        total["calls"] += len(entries)
    by_model = json_safe(tracker.get_total_tokens())
    for usage in by_model.values():
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = usage.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] += int(value)
    total["by_model"] = by_model
    return total


def run_module(
    module_spec: Mapping[str, Any],
    inputs: Mapping[str, Any],
    bound: Mapping[str, Any],
    lm_config: Mapping[str, Any],
    *,
    allow_code: bool = False,
) -> dict[str, Any]:
    """Run one bridged module with DSPy, in this process; see the module docstring.

    ``bound`` holds the already-resolved values of the module's bindings,
    keyed by parameter. Returns ``outputs``, ``usage``, ``latency_ms``, ``lm``.
    ``allow_code``: the server allowed the notebook-defined code in ``module_spec``;
    without it such a spec is refused before anything is unpickled.
    """
    module = check_module_spec(module_spec)
    whats = code_whats(module_spec)
    if whats and not allow_code:
        raise AccessDenied(f"the server did not allow the notebook-defined code {whats}")
    if not isinstance(inputs, Mapping):
        raise ProgramError(f"inputs must be a mapping, got {type(inputs).__name__}")
    from ..program.signature import parse_signature

    custom = module.type_name == "Custom"
    label = f"module {module.class_name}" if custom else module.type_name
    fields = (
        module.options["inputs"] if custom else parse_signature(module.options["signature"]).inputs
    )
    required = module.options["required"] if custom else fields
    call_inputs = {k: v for k, v in inputs.items() if k in fields}
    for param, value in bound.items():
        if param in fields:
            call_inputs[param] = value  # an input field bound to a variable
    missing = [f for f in required if f not in call_inputs]
    if missing:
        raise ProgramError(f"{label} needs the inputs {missing}")
    model, kwargs, public = lm_settings(lm_config, bound)

    import dspy

    adapter = {}
    if lm_config.get("local_lm"):  # a small model: JSON decoding constrained by the signature
        from .grammar import constrained_json_adapter

        adapter["adapter"] = constrained_json_adapter()
    try:
        program = build_module(module, bound)
        lm = _lm(model, json.dumps(kwargs, sort_keys=True))
    except DSPexError:
        raise
    except Exception as exc:
        raise ModuleExecutionError(
            scrub(
                f"could not build {label} with {model}: {type(exc).__name__}: {exc}",
                lm_config,
            )
        ) from None
    start = time.perf_counter()
    try:
        # disable_history: a long-lived worker must not accumulate prompts (or LM
        # settings) in DSPy's global, LM and module histories across runs.
        with (
            dspy.context(lm=lm, track_usage=True, disable_history=True, **adapter),
            dspy.track_usage() as tracker,
        ):
            prediction = program(**call_inputs)
    except DSPexError:
        raise
    except Exception as exc:
        raise ModuleExecutionError(
            scrub(f"{label} failed with {model}: {type(exc).__name__}: {exc}", lm_config)
        ) from None
    latency_ms = (time.perf_counter() - start) * 1000
    if not callable(getattr(prediction, "keys", None)):
        raise ModuleExecutionError(
            f"{label} returned {type(prediction).__name__}, not a dspy.Prediction or a dict"
        )
    outputs = {str(key): json_safe(prediction[key]) for key in prediction.keys()}
    return {
        "outputs": outputs,
        "usage": _usage(tracker),
        "latency_ms": latency_ms,
        "lm": public,
        "worker": {"pid": os.getpid()},
    }


def _default_lm(
    pool: Any, lm_config: Mapping[str, Any], bound: Mapping[str, Any]
) -> tuple[Mapping[str, Any], bool]:
    """The run's LM configuration: the embedded model (loaded now if need be) when no LM
    is configured or ``"local"`` is asked for; else ``lm_config`` unchanged."""
    if not isinstance(lm_config, Mapping) or not wants_local(lm_config, bound):
        return lm_config, False
    host = getattr(pool, "local_lm", None)
    if host is None:
        raise ModuleExecutionError("this worker pool cannot host the embedded local model")
    loaded = host.ensure()
    return local_lm_config(host, lm_config), loaded


def execute_module_request(
    pool: Any,
    module_spec: Mapping[str, Any],
    inputs: Mapping[str, Any],
    bindings: Mapping[str, str],
    lm_config: Mapping[str, Any],
    lookup: Callable[[str], tuple[Any, int]],
    *,
    timeout: float = 300.0,
    overrides: Mapping[str, Any] | None = None,
    check_override: Callable[[str, Any], Any] | None = None,
    on_cancel: Callable[[Callable[[], None]], bool] | None = None,
    allow_code: bool = False,
) -> dict[str, Any]:
    """The server side of one ``ExecuteModule`` call: check, resolve bindings, run in the pool.

    ``allow_code``: the server's policy allowed the spec's notebook-defined code
    (``ExecutionPolicy.check_code``); the worker loads it only then.

    Bindings are resolved here, when the module starts, against the session
    (``lookup``), and the versions read are returned under ``"variables"``.
    ``overrides`` (variable -> value, this call only) are validated first by
    ``check_override(name, value) -> clean value`` (the session's type and
    constraints; it raises ``ValidationError``/``VariableNotFound``) and never
    written anywhere. ``on_cancel`` (the gRPC context's ``add_callback``) lets
    the pool drop the run when the caller cancels its call.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValidationError(f"overrides must be a mapping, got {overrides!r}")
    clean = {
        name: check_override(name, value) if check_override else value
        for name, value in (overrides or {}).items()
    }
    module = check_module_spec(module_spec)
    if dict(module.bindings) != dict(bindings or {}):
        # The spec carries its bindings too; the explicit ones must agree.
        raise ProgramError(
            f"bindings {dict(bindings or {})} differ from the module's own {module.bindings}"
        )
    bound, used = resolve_bindings(bindings or {}, lookup, clean)
    lm_config, loaded = _default_lm(pool, lm_config, bound)
    result = pool.execute(
        module_spec,
        inputs,
        bound,
        lm_config,
        timeout=timeout,
        on_cancel=on_cancel,
        allow_code=allow_code,
    )
    result["variables"] = used
    if loaded:  # reported once, by the run that loaded the embedded model
        result["local_lm"] = pool.local_lm.info()
    return result
