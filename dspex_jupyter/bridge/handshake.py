"""The READY handshake: a child process says where it serves in one stdout line.

A server child (``python -m dspex_jupyter.bridge serve``, the test LM server,
the benchmarks' helpers) prints exactly ``READY <address>``, flushed, once it
serves. The parent reads that line with a deadline, so a child that hangs,
crashes or prints something else fails fast with what it did print instead of
blocking the parent forever.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any

from ..errors import BridgeUnavailable

__all__ = ["READY", "announce", "wait_ready"]

READY = "READY"
_POLL_S = 0.5  # how often a silent child is checked for having exited


def announce(address: str) -> None:
    """Print the READY line for ``address`` on stdout (the child's side)."""
    print(f"{READY} {address}", file=sys.stdout, flush=True)


def wait_ready(process: subprocess.Popen[Any], timeout: float, what: str = "the server") -> str:
    """The address of ``process``'s ``READY <address>`` line, read within ``timeout`` s.

    ``process.stdout`` must be a pipe (text or binary: the raw descriptor is
    read). ``BridgeUnavailable`` if the child exits, closes its stdout, prints
    another line or stays silent past the deadline; the message has its exit
    code and what it printed.
    """
    stdout = process.stdout
    if stdout is None:
        raise BridgeUnavailable(f"{what}: its stdout is not a pipe; cannot read READY")
    deadline = time.monotonic() + timeout
    line, eof = b"", False
    while b"\n" not in line:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        readable, _, _ = select.select([stdout], [], [], min(remaining, _POLL_S))
        if readable:
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:  # end of file: the child closed its stdout or exited
                eof = True
                break
            line += chunk
        elif process.poll() is not None:
            break
    first = line.split(b"\n", 1)[0].decode(errors="replace")
    address = first[len(READY) + 1 :].strip() if first.startswith(f"{READY} ") else ""
    if b"\n" in line and address:
        return address
    try:  # a child that closed its stdout is usually exiting: give it a moment
        code = process.wait(1.0) if eof else process.poll()
    except subprocess.TimeoutExpired:
        code = None
    if code is not None:
        why = f" (exit code {code})"
    elif eof:
        why = " (it closed its stdout)"
    else:
        why = f" within {timeout:g} s"
    raise BridgeUnavailable(
        f"{what} did not start{why}" + (f"; it printed {first!r}" if first else "")
    )
