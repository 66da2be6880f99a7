"""A local OpenAI-compatible LM server that answers DSPy's field format for any signature.

Why it exists: tests, benchmarks and teaching notebooks must run offline and
deterministically, yet exercise the real DSPy stack (adapters, LiteLLM, HTTP).
So instead of patching DSPy, we give it a real HTTP endpoint:

* ``POST /v1/chat/completions`` (also ``/chat/completions``): reads the output
  field names DSPy asks for (``[[ ## answer ## ]]`` in the ChatAdapter prompt,
  or the field list of the JSONAdapter prompt) and answers each one with
  deterministic text derived from the first input field, so any signature
  works. ``reasoning`` (ChainOfThought) gets a short reasoning text. ReAct's
  ``next_thought`` / ``next_tool_name`` / ``next_tool_args`` call the first
  real tool once (with arguments built from its JSON schema), then ``finish``.
* ``GET /v1/models`` lists one model, for clients that probe.
* Every request is recorded (model, temperature, max_tokens, messages, and
  whether an ``Authorization`` header came with it) in :attr:`LMServer.requests`.
* Each answer carries a ``usage`` block (word counts stand in for tokens).
* ``latency`` (seconds, changeable at any time) is slept before each answer,
  to model an I/O-bound LM. The server is threaded, so concurrent requests
  overlap their latency like a real provider's would.

Use it as a context manager::

    with LMServer(latency=0.1) as lm:
        dspy.LM("openai/test", api_base=lm.url, api_key="x", cache=False)

or from a notebook (``lm = LMServer().start()`` ... ``lm.stop()``), or
standalone: ``python -m dspex_jupyter.testing.lm_server --port 8765``.
This module imports only the standard library.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LMServer", "answer_messages"]

_CHAT_FIELDS = re.compile(r"`\[\[ ## (\w+) ## \]\]`([^`]*)")
_JSON_FIELDS = re.compile(r"Respond with a JSON object in the following order of fields: (.*)")
_JSON_FIELD = re.compile(r"`(\w+)`([^`]*)")
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", re.S)
_OUTPUTS_HEADER = re.compile(r"Your output fields are:\n(.*?)(?:\n\n|\Z)", re.S)
_OUTPUT_LINE = re.compile(r"^\d+\. `(\w+)`", re.M)
_TOOL = re.compile(
    r"^\s*\(\d+\) (\w+)(?:, whose description is <desc>.*?</desc>)?\. It takes arguments (\{.*\})\.$",
    re.M,
)
_LITERAL = re.compile(r"Literal\[(.*?)\]")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _requested_fields(messages: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], bool]:
    """The output fields (name, type hint) the prompt asks for, and whether JSON is wanted."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        text = _text(message)
        found = [
            (name, hint) for name, hint in _CHAT_FIELDS.findall(text.split("Respond with")[-1])
        ]
        found = [(n, h) for n, h in found if n != "completed"]
        if "Respond with the corresponding output fields" in text and found:
            return found, False
        match = _JSON_FIELDS.search(text)
        if match:
            return _JSON_FIELD.findall(match.group(1)), True
        break
    for message in messages:  # fall back to the system prompt's field list
        if message.get("role") == "system":
            header = _OUTPUTS_HEADER.search(_text(message))
            if header:
                return [(n, "") for n in _OUTPUT_LINE.findall(header.group(1))], False
    return [], False


def _inputs(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The input fields of the last user message (``[[ ## name ## ]]`` sections)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return {k: v.strip() for k, v in _SECTION.findall(_text(message))}
    return {}


def _tools(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    for message in messages:
        if message.get("role") == "system":
            tools = []
            for name, args in _TOOL.findall(_text(message)):
                try:
                    schema = ast.literal_eval(args)
                except (ValueError, SyntaxError):
                    schema = {}
                tools.append((name, schema if isinstance(schema, dict) else {}))
            return tools
    return []


def _arg_value(schema: Any, topic: str) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return [topic]
    if kind == "object":
        return {}
    return topic


def answer_messages(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The assistant's answer text for a DSPy prompt, and the fields it contains.

    Deterministic: the same messages always give the same answer.
    """
    fields, want_json = _requested_fields(messages)
    inputs = _inputs(messages)
    topic = next((v for k, v in inputs.items() if v and k != "trajectory"), "the question")
    topic = " ".join(topic.split())[:200]
    values: dict[str, Any] = {}
    hints = dict(fields)
    if "next_tool_name" in hints:  # ReAct: call the first real tool once, then finish
        tools = [t for t in _tools(messages) if t[0] != "finish"]
        last_user = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        if tools and "[[ ## observation_0 ## ]]" not in last_user:
            name, schema = tools[0]
            args = {k: _arg_value(v, topic) for k, v in schema.items()}
            values["next_thought"] = f"I should use the {name} tool to look up: {topic}"
        else:
            name, args = "finish", {}
            values["next_thought"] = "I have what I need; finishing."
        values["next_tool_name"] = name
        values["next_tool_args"] = args
    for name, hint in fields:
        if name in values:
            continue
        if name == "reasoning":
            values[name] = f"Let me think step by step about: {topic}"
        elif "Literal[" in hint:
            literal = _LITERAL.search(hint)
            options = ast.literal_eval("[" + literal.group(1) + "]") if literal else []
            values[name] = options[0] if options else ""
        elif "bool" in hint:
            values[name] = True
        elif "int" in hint:
            values[name] = 1
        elif "float" in hint:
            values[name] = 0.5
        elif "dict" in hint:
            values[name] = {}
        elif "list" in hint:
            values[name] = [topic]
        else:
            values[name] = f"Test {name} for: {topic}"
    if want_json:
        return json.dumps(values), values
    parts = []
    for name, value in values.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"[[ ## {name} ## ]]\n{shown}")
    parts.append("[[ ## completed ## ]]")
    return "\n\n".join(parts), values


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    # One send per response and no Nagle: otherwise keep-alive clients wait
    # for delayed ACKs (about 40 ms) between the headers and the body.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": "test-lm", "object": "model"}]})
        elif self.path.rstrip("/") in ("", "/health"):
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(
                400, {"error": {"message": f"bad request: {exc}", "type": "invalid_request"}}
            )
            return
        self.server.owner._record(body, self.headers)
        latency = self.server.owner.latency
        if latency > 0:
            time.sleep(latency)
        responder = self.server.owner.responder or answer_messages
        content, _ = responder(messages)
        n = int(body.get("n") or 1)
        prompt_tokens = sum(_words(_text(m)) for m in messages)
        completion_tokens = _words(content) * n
        self._send(
            200,
            {
                "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test-lm"),
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                    for i in range(n)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent runs open connections at once
    owner: LMServer


class LMServer:
    """A threaded OpenAI-compatible server on ``127.0.0.1`` (a free port unless given).

    ``latency`` is the delay (seconds) before each answer. ``responder``
    (optional) replaces the default answer: ``responder(messages) -> (text, fields)``.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Callable[[list[dict[str, Any]]], tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0, got {latency!r}")
        self.latency = float(latency)
        self.responder = responder
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LMServer:
        if self._server is not None:
            return self
        server = _HTTPServer((self._host, self._port), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name=f"lm-server-{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the LM server is not running (call start())")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    def lm_config(self, model: str = "test-lm", **extra: Any) -> dict[str, Any]:
        """An ``lm=`` mapping for ``Context.start`` pointing at this server."""
        return {"model": model, "api_base": self.url, "api_key": "test-key", **extra}

    # ------------------------------------------------------------------ recording

    def _record(self, body: dict[str, Any], headers: Any) -> None:
        entry = {
            "model": body.get("model"),
            "temperature": body.get("temperature"),
            "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
            "messages": body.get("messages"),
            "authorized": bool(headers.get("Authorization")),
            "time": time.time(),
        }
        with self._lock:
            self._requests.append(entry)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<LMServer {where} latency={self.latency}s requests={len(self._requests)}>"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible test LM for DSPy.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args(argv)
    server = LMServer(latency=args.latency, host=args.host, port=args.port).start()
    print(f"READY {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
