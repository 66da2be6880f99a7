"""``BridgedState.compile_program``: the kernel's side of the ``CompileProgram`` stream.

Progress messages go to ``on_progress`` as they arrive; the last message is
the result. A ``KeyboardInterrupt`` (or any exception) while waiting cancels
the call, and the server then cancels the compile in its worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from ..errors import ModuleExecutionError
from . import convert
from ._proto import dspex_bridge_pb2 as pb
from .errors import error_from_rpc

if TYPE_CHECKING:
    from .client import BridgeClient

__all__ = ["CompileCalls"]


class CompileCalls:
    """A mixin of ``BridgedState``."""

    client: BridgeClient
    session_id: str

    def compile_program(
        self,
        job: Mapping[str, Any],
        lm_config: Mapping[str, Any],
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = 3600.0,
    ) -> dict[str, Any]:
        """Compile in the server's worker pool (see ``bridge/compiling.py``); the result."""
        request = pb.CompileProgramRequest(
            session_id=self.session_id,
            job_json=convert.dumps(dict(job)),
            lm_config_json=convert.dumps(dict(lm_config)),
            timeout_s=float(timeout_s),
        )
        stream = self.client.stub.CompileProgram(
            request, metadata=self.client.metadata, timeout=timeout_s + 30
        )
        try:
            for message in stream:
                if message.result_json:
                    return dict(convert.loads(message.result_json, "compile result"))
                if on_progress is not None and message.progress_json:
                    on_progress(convert.loads(message.progress_json, "compile progress"))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                raise ModuleExecutionError("the compile was cancelled") from None
            raise error_from_rpc(err, "CompileProgram") from None
        except BaseException:
            stream.cancel()  # Ctrl-C: the server cancels the compile in its worker
            raise
        raise ModuleExecutionError("the compile stream ended without a result")
