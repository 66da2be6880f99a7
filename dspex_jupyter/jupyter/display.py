"""Rich displays for what the magics return: run results, history, context info, watches.

Each object offers ``_repr_mimebundle_`` (``text/plain`` and ``text/html``), so
it looks right in JupyterLab, in a terminal IPython and in saved notebooks,
and keeps the underlying data in attributes for code to use.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..context import Context
from ..running.result import RunResult, usage_detail, usage_line
from ..variables.record import Variable, WatchEvent

__all__ = [
    "RunResultView",
    "HistoryView",
    "ContextInfo",
    "WatchLog",
    "LMInfo",
    "variable_html",
    "register_formatters",
]

_STYLE = "border-collapse:collapse;font-size:90%"
_CELL = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    head = "".join(f"<th style='{_CELL}'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='{_CELL}'>{html.escape(_short(c))}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table style='{_STYLE}'><tr>{head}</tr>{body}</table>"


def _text_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_short(c, 60) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))]
    lines += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in cells]
    return "\n".join(lines)


def _field(step: Any, name: str, default: Any = None) -> Any:
    if isinstance(step, Mapping):
        return step.get(name, default)
    return getattr(step, name, default)


class RunResultView:
    """A program run as shown by ``%dspex run``: outputs, the trace, LM usage.

    ``result`` is the Program DSL's result object; ``outputs`` and ``trace``
    are forwarded from it.
    """

    def __init__(self, result: Any, program: str = "program") -> None:
        self.result = result
        self.program = program

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(getattr(self.result, "outputs", {}) or {})

    @property
    def trace(self) -> list[Any]:
        return list(getattr(self.result, "trace", []) or [])

    def __getattr__(self, name: str) -> Any:  # anything else the result offers
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)

    def _trace_rows(self) -> list[list[Any]]:
        rows = []
        for step in self.trace:
            used = _field(step, "variables") or {}
            versions = ", ".join(
                f"{name}@v{_field(info, 'version', '?')}" for name, info in dict(used).items()
            )
            latency = _field(step, "latency_ms")
            usage = _field(step, "usage")
            rows.append(
                [
                    _field(step, "name", "?"),
                    _field(step, "kind", "?"),
                    _field(step, "inputs", {}),
                    _field(step, "outputs", {}),
                    versions or "-",
                    "" if latency is None else f"{float(latency):.1f} ms",
                    usage_line(usage) or "-",
                ]
            )
        return rows

    def _summary(self) -> str:
        parts = [f"status {getattr(self.result, 'status', 'ok')}"]
        latency = getattr(self.result, "latency_ms", None)
        if latency is not None:
            parts.append(f"{float(latency):.1f} ms")
        backend = getattr(self.result, "backend", None)
        if backend:
            parts.append(f"backend {backend}")
        usage = usage_line(getattr(self.result, "usage", None))
        if usage:
            parts.append(f"LM {usage}")
        local = getattr(self.result, "local_lm", None)
        if local:  # only the run that loaded the embedded model has it
            load = local.get("load_s")
            took = f" in {float(load):.2f} s" if isinstance(load, (int, float)) else ""
            parts.append(f"loaded the embedded model {local.get('file')}{took}")
        error = getattr(self.result, "error", None)
        if error:
            parts.append(f"error: {error}")
        return " · ".join(parts)

    _TRACE_HEADERS = [
        "module",
        "kind",
        "inputs",
        "outputs",
        "variables used",
        "latency",
        "LM usage",
    ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        outputs = [[k, v] for k, v in self.outputs.items()]
        trace = self._trace_rows()
        text = (
            f"{self.program}: {self._summary()}\noutputs\n{_text_table(['output', 'value'], outputs)}\n\n"
            f"trace\n{_text_table(self._TRACE_HEADERS, trace)}"
        )
        detail = html.escape(usage_detail(getattr(self.result, "usage", None)), quote=True)
        markup = (
            f"<div><b>{html.escape(self.program)}</b> &middot; "
            f"<span title='{detail}'>{html.escape(self._summary())}</span><br>outputs"
            f"{_table(['output', 'value'], outputs)}"
            f"<details><summary>trace ({len(trace)} module{'s' if len(trace) != 1 else ''})"
            f"</summary>{_table(self._TRACE_HEADERS, trace)}</details></div>"
        )
        return {"text/plain": text, "text/html": markup}

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


class HistoryView:
    """``%dspex history NAME``: every recorded version of a variable."""

    _HEADERS = ["version", "value", "source", "time"]

    def __init__(self, name: str, records: list[Variable]) -> None:
        self.name = name
        self.records = records

    def _rows(self) -> list[list[Any]]:
        import datetime

        return [
            [
                r.version,
                r.value,
                r.source,
                datetime.datetime.fromtimestamp(r.timestamp).strftime("%H:%M:%S.%f")[:-3],
            ]
            for r in self.records
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows = self._rows()
        return {
            "text/plain": f"history of {self.name}\n{_text_table(self._HEADERS, rows)}",
            "text/html": f"<b>history of {html.escape(self.name)}</b>{_table(self._HEADERS, rows)}",
        }

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


class ContextInfo:
    """``%dspex context info``: backend, session, address and variables of a context."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def _facts(self) -> list[list[Any]]:
        ctx = self.context
        facts: list[list[Any]] = [
            ["name", ctx.name],
            ["backend", ctx.backend],
            ["session", ctx.session_id],
        ]
        if not ctx.closed:
            facts.append(["address", ctx.address or "-"])
            facts.append(["variables", len(ctx.list())])
        return facts

    def _variables(self) -> list[list[Any]]:
        if self.context.closed:
            return []
        return [[v.name, v.type, v.value, f"v{v.version}", v.source] for v in self.context.list()]

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_()["text/html"]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        headers = ["name", "type", "value", "version", "source"]
        facts, variables = self._facts(), self._variables()
        return {
            "text/plain": _text_table(["", ""], facts) + "\n\n" + _text_table(headers, variables),
            "text/html": _table(["context", ""], facts) + _table(headers, variables),
        }

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


class LMInfo:
    """``%dspex lm``: which LM bridged modules run on (``info`` is ``ctx.lm_info()``)."""

    _ORDER = ("kind", "model", "api_base", "file", "loaded", "load_s", "n_parallel", "address")

    def __init__(self, info: Mapping[str, Any]) -> None:
        self.info = dict(info)

    def headline(self) -> str:
        info = self.info
        if info.get("kind") != "local":
            return f"configured LM {info.get('model') or '(no model)'}" + (
                f" at {info['api_base']}" if info.get("api_base") else ""
            )
        if info.get("loaded"):
            load = info.get("load_s")
            took = f" in {float(load):.2f} s" if isinstance(load, (int, float)) else ""
            return (
                f"embedded model {info.get('file')}, loaded{took}, "
                f"{info.get('n_parallel')} parallel slots"
            )
        if info.get("available"):
            return f"embedded model {info.get('file')}, loads on the first bridged run"
        return f"embedded model unavailable: {info.get('problem')}"

    def _facts(self) -> list[list[Any]]:
        keys = [k for k in self._ORDER if k in self.info]
        keys += sorted(k for k in self.info if k not in self._ORDER and k != "problem")
        return [[k, self.info[k]] for k in keys if self.info[k] is not None]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        facts = self._facts()
        return {
            "text/plain": f"{self.headline()}\n{_text_table(['', ''], facts)}",
            "text/html": f"<b>{html.escape(self.headline())}</b>{_table(['LM', ''], facts)}",
        }

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]


class WatchLog:
    """``%dspex watch NAME...``: a live log of changes, shown as a widget.

    The watcher's dispatcher thread appends one line per event; ``lines``
    holds them (the last ``limit``), ``stop()`` ends the watch.
    """

    def __init__(self, context: Context, names: list[str] | None, limit: int = 50) -> None:
        import ipywidgets as w

        self.context = context
        self.names = names
        self.limit = limit
        self.lines: list[str] = []
        self._lock = threading.Lock()
        label = "all variables" if names is None else ", ".join(names)
        self._title = f"watching {label}"
        self.widget = w.HTML(value=self._render())
        self.subscription = context.watch(names, self._on_event)

    def _on_event(self, event: WatchEvent) -> None:
        if event.kind == "deleted":
            line = f"{event.name} deleted (by {event.source})"
        elif event.kind == "registered":
            line = f"{event.name} defined = {event.new_value!r} (v{event.version}, {event.source})"
        else:
            line = (
                f"{event.name}: {event.old_value!r} -> {event.new_value!r} "
                f"(v{event.version}, {event.source})"
            )
        with self._lock:
            self.lines.append(line)
            del self.lines[: -self.limit]
            self.widget.value = self._render()

    def _render(self) -> str:
        body = "<br>".join(html.escape(line) for line in self.lines) or "<i>no change yet</i>"
        return f"<div><b>{html.escape(self._title)}</b><br><code>{body}</code></div>"

    def stop(self) -> None:
        """Stop watching (the log keeps what it showed)."""
        if self.subscription.active:
            try:
                self.context.unwatch(self.subscription)
            except Exception:
                self.subscription.close()
            self._title += " (stopped)"
            self.widget.value = self._render()

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every change so far is in the log."""
        return self.subscription.flush(timeout)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        render = getattr(self.widget, "_repr_mimebundle_", None)  # None once closed
        bundle = dict(render(include=include, exclude=exclude) or {}) if render else {}
        bundle["text/plain"] = self._title + "\n" + "\n".join(self.lines)
        return bundle

    def __repr__(self) -> str:
        return self._title + "\n" + "\n".join(self.lines)


def variable_html(record: Variable) -> str:
    """One variable on one line: name, type, value, version, who wrote it, constraints."""
    constraints = ", ".join(f"{k}={v!r}" for k, v in record.constraints.items())
    facts = [f"v{record.version}", f"set by {record.source}"] + (
        [constraints] if constraints else []
    )
    return (
        f"<span class='dspex-variable'><code><b>{html.escape(record.name)}</b></code>: "
        f"{html.escape(record.type)} = <code>{html.escape(_short(record.value))}</code> "
        f"<small>{html.escape(' · '.join(facts))}</small></span>"
    )


def _context_html(ctx: Context) -> str:
    return ContextInfo(ctx)._repr_mimebundle_()["text/html"]


def _run_result_html(result: RunResult) -> str:
    return result._repr_html_()


def register_formatters(ipython: Any) -> None:
    """Rich HTML for ``Context``, ``Variable`` and ``RunResult`` in this shell.

    ``Context`` and ``Variable`` live below the Jupyter layer and build no HTML,
    so their rich display is registered here, with IPython's own formatter
    (``for_type``), when the extension or the lab panel is loaded. Idempotent.
    """
    formatters = getattr(getattr(ipython, "display_formatter", None), "formatters", None)
    if not formatters or "text/html" not in formatters:
        return
    html_formatter = formatters["text/html"]
    html_formatter.for_type(Context, _context_html)
    html_formatter.for_type(Variable, variable_html)
    html_formatter.for_type(RunResult, _run_result_html)
