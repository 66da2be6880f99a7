"""What a module run may do on this server: registered tools only, the server's own LM.

A shared server never runs code a request names. ReAct tools are names the
server registered (``serve --tool NAME=package.module:function`` or the
``dspex_jupyter.tools`` entry-point group); a request naming anything else, an
unknown name or any dotted path, fails as a whole here, before a worker
imports anything. The client's LM ``api_base``/``api_key`` are refused unless
the server runs with ``--allow-client-lm``; otherwise the server's own
``--lm-model``/``--lm-api-base`` (key from ``DSPEX_LM_API_KEY``) are used.

Notebook-defined code (a custom module, a notebook function as a tool or a
metric, pickled by value: ``bridge/code.py``) runs code of the caller's choosing
in a worker, so it needs the ``execute`` right *and* a server started with
``--allow-code``; without the flag every such request is refused before a
worker loads anything.

A private server spawned by a kernel has exactly one client, the kernel that
owns it, so the launcher starts it with ``--allow-client-lm``,
``--allow-client-tools`` and ``--allow-code``: there the owner declares its
tools by dotted path, or as notebook functions, in its own requests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from ... import errors as E

__all__ = ["ENTRY_POINT_GROUP", "ExecutionPolicy", "parse_tool", "registered_tools"]

ENTRY_POINT_GROUP = "dspex_jupyter.tools"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
#: The LM settings that name where the worker sends requests, and with which key.
CLIENT_LM_KEYS = ("api_base", "api_key")


def parse_tool(text: str) -> tuple[str, str]:
    """``"NAME=package.module:function"`` -> ``(NAME, path)``; ``ValidationError`` if malformed."""
    name, sep, path = text.partition("=")
    if not sep or not _NAME.match(name) or not _PATH.match(path):
        raise E.ValidationError(
            f"--tool must be NAME=package.module:function (NAME a short identifier), got {text!r}"
        )
    return name, path


def registered_tools(flags: Iterable[str] = ()) -> dict[str, str]:
    """The entry points of ``dspex_jupyter.tools``, then the ``--tool`` flags (which win).

    Nothing is imported here: a worker imports a tool only when a run uses it.
    """
    tools = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for flag in flags:
        name, path = parse_tool(flag)
        tools[name] = path
    return tools


@dataclass(frozen=True)
class ExecutionPolicy:
    """The server's tool registry and LM rules, applied to every ``ExecuteModule``."""

    tools: Mapping[str, str] = field(default_factory=dict)
    allow_client_tools: bool = False
    allow_client_lm: bool = False
    allow_code: bool = False
    lm_model: str | None = None
    lm_api_base: str | None = None

    def check_code(self, what: str) -> None:
        """``AccessDenied`` unless this server runs notebook-defined code (``--allow-code``).

        The caller's ``execute`` right is checked by the RPC itself; this is the
        server-wide switch. ``what`` names the object in the refusal.
        """
        if not self.allow_code:
            raise E.AccessDenied(
                f"this bridge server does not run notebook-defined code ({what}); "
                "its owner can start it with --allow-code (a kernel's private server allows it)"
            )

    def resolve_spec(self, spec: Any) -> Any:
        """``spec`` with every ReAct tool NAME replaced by its registered path.

        ``AccessDenied`` for a dotted path (unless client tools are allowed),
        ``ProgramError`` for an unregistered name. The whole request fails:
        a tool is never silently dropped.
        """
        if not isinstance(spec, Mapping):
            return spec  # the module checks report the malformed spec
        options = spec.get("options")
        if not isinstance(options, Mapping) or "tools" not in options:
            return spec
        tools = options["tools"]
        if isinstance(tools, (str, bytes)) or not isinstance(tools, (list, tuple)):
            raise E.ProgramError(f"tools must be a list of registered tool names, got {tools!r}")
        paths = [self._resolve(tool) for tool in tools]
        return {**spec, "options": {**options, "tools": paths}}

    def _resolve(self, tool: Any) -> Any:
        if isinstance(tool, Mapping) and isinstance(tool.get("$code"), str):
            self.check_code(tool["$code"])  # a notebook function: code, already allowed
            return tool
        if not isinstance(tool, str):
            raise E.ProgramError(f"a tool must be a registered tool name, got {tool!r}")
        if tool in self.tools:
            return self.tools[tool]
        if "." in tool or ":" in tool:
            if self.allow_client_tools:
                return tool
            raise E.AccessDenied(
                f"this bridge server runs only the tools it registered, not a dotted path "
                f"({tool!r}); registered: {sorted(self.tools)}"
            )
        raise E.ProgramError(
            f"no tool named {tool!r} is registered on this bridge server; "
            f"registered: {sorted(self.tools)}"
        )

    def lm_config(self, client: Mapping[str, Any]) -> dict[str, Any]:
        """The LM configuration a run uses: the client's, or the server's own endpoint."""
        if self.allow_client_lm:
            return dict(client)
        sent = [key for key in CLIENT_LM_KEYS if client.get(key)]
        if sent:
            raise E.AccessDenied(
                f"this bridge server does not accept a client's LM {', '.join(sent)}; "
                "it uses its own LM (serve --lm-model/--lm-api-base), or runs with "
                "--allow-client-lm"
            )
        config = {k: v for k, v in client.items() if k not in ("model", *CLIENT_LM_KEYS)}
        if self.lm_model:
            config["model"] = self.lm_model
        if self.lm_api_base:
            config["api_base"] = self.lm_api_base
        key = os.environ.get("DSPEX_LM_API_KEY")
        if key:
            config["api_key"] = key
        return config
