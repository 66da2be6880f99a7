"""A real IPython kernel (the venv's python, ipykernel) and a panel-side comm client.

The client speaks the ``dspex:panel`` protocol exactly as the JupyterLab panel
does: it sends ``comm_open``/``comm_msg`` on the shell channel and reads the
kernel's ``comm_msg`` on IOPub. Every message in either direction is validated
against ``docs/panel-protocol.schema.json``.
"""

from __future__ import annotations

import ast
import json
import queue
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "panel-protocol.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
TIMEOUT = 60.0  # generous: the machine is shared


def validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = {**SCHEMA, "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


KERNEL_MESSAGE = validator("KernelMessage")
PANEL_MESSAGE = validator("PanelMessage")


def register_code() -> str:
    """The silent registration code, read from the TypeScript panel (so it is tested)."""
    source = (ROOT / "labextension" / "src" / "link.ts").read_text()
    block = re.search(r"REGISTER_CODE = \[(.*?)\]\.join\('\\n'\)", source, re.S)
    assert block, "REGISTER_CODE not found in link.ts"
    lines = re.findall(r"^\s*'(.*)',?\s*$", block.group(1), re.M)
    return "\n".join(line.replace("\\'", "'") for line in lines)


def start_kernel(tmp: Path) -> KernelManager:
    kernels = tmp / "kernels" / "dspex-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "dspex test",
                "language": "python",
                "env": {"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            }
        )
    )
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    km = KernelManager(kernel_name="dspex-test", kernel_spec_manager=ksm)
    km.start_kernel(cwd=str(tmp))
    return km


class KernelSession:
    """A started kernel with a client; iopub is read on a thread and sorted by comm."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="dspex-panel-")
        self.km = start_kernel(Path(self._tmp.name))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT)
        self._lock = threading.Lock()
        self._comm_queues: dict[str, queue.Queue] = {}
        self._closed_comms: set[str] = set()
        self._replies: dict[str, queue.Queue] = {}
        #: every display_data / update_display_data the kernel published, in order
        self.displays: list[dict] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_iopub, daemon=True)
        self._reader.start()

    def _read_iopub(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                return
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind in ("display_data", "update_display_data"):
                with self._lock:
                    self.displays.append({"msg_type": kind, **content})
            if kind == "comm_msg":
                with self._lock:
                    q = self._comm_queues.get(content["comm_id"])
                if q is not None:
                    q.put(content["data"])
            elif kind == "comm_close":
                with self._lock:
                    self._closed_comms.add(content["comm_id"])
                    q = self._comm_queues.get(content["comm_id"])
                if q is not None:
                    q.put({"type": "__closed__"})

    def execute(self, code: str, timeout: float = TIMEOUT, silent: bool = False) -> dict:
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            raise AssertionError(
                f"cell failed: {content.get('ename')}: {content.get('evalue')}\n{code}"
            )
        return content

    def execute_error(self, code: str, timeout: float = TIMEOUT) -> dict:
        """Run ``code``, which must fail; the error reply (ename, evalue, traceback)."""
        msg_id = self.kc.execute(code)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "error", f"expected an error from:\n{code}"
        return reply["content"]

    def evaluate(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """The JSON value of ``expression`` in the kernel (via user_expressions)."""
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"v": f"__import__('json').dumps({expression})"},
        )
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result = reply["content"]["user_expressions"]["v"]
        assert result["status"] == "ok", result
        return json.loads(ast.literal_eval(result["data"]["text/plain"]))

    def open_panel(self) -> PanelComm:
        return PanelComm(self)

    def close(self) -> None:
        self._stop.set()
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
            self._tmp.cleanup()


class PanelComm:
    """The panel end of one ``dspex:panel`` comm."""

    def __init__(self, session: KernelSession, target: str = "dspex:panel") -> None:
        self.session = session
        self.comm_id = uuid.uuid4().hex
        self.queue: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        with session._lock:
            session._comm_queues[self.comm_id] = self.queue
        data = {"type": "open", "protocol": 1}
        PANEL_MESSAGE.validate(data)
        self._shell_send(
            "comm_open", {"comm_id": self.comm_id, "target_name": target, "data": data}
        )

    def _shell_send(self, msg_type: str, content: dict) -> None:
        kc = self.session.kc
        msg = kc.session.msg(msg_type, content)
        kc.shell_channel.send(msg)

    def send(self, data: dict) -> None:
        PANEL_MESSAGE.validate(data)
        self._shell_send("comm_msg", {"comm_id": self.comm_id, "data": data})

    def close(self) -> None:
        self._shell_send("comm_close", {"comm_id": self.comm_id, "data": {}})

    @property
    def closed_by_kernel(self) -> bool:
        return self.comm_id in self.session._closed_comms

    def next(self, timeout: float = TIMEOUT) -> dict:
        data = self.queue.get(timeout=timeout)
        if data.get("type") != "__closed__":
            KERNEL_MESSAGE.validate(data)
            self.received.append(data)
        return data

    def wait_for(self, predicate, timeout: float = TIMEOUT) -> dict:
        """The first message (from now on) satisfying ``predicate``; earlier ones are kept."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no matching panel message within {timeout}s; got {self.received[-5:]}"
                )
            try:
                message = self.next(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(message):
                return message

    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.received]
