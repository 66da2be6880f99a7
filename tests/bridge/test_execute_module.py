"""ExecuteModule over the bridge: a real server, real DSPy workers, a local LM server."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest

from dspex_jupyter import Context
from dspex_jupyter.errors import ProgramError, ValidationError, VariableNotFound
from dspex_jupyter.modules import ChainOfThought
from dspex_jupyter.testing import LMServer

from .conftest import PYTHON, WAIT_S, child_pids, python_env, wait_until
from .test_faults import _alive

SECRET = "sk-bridge-test-SECRET-7f"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="module")
def lm():
    with LMServer() as server:
        yield server


def test_execute_module_resolves_bindings_in_the_session(server, lm):
    ctx = Context.start(bridge=server.address, token=server.token)
    try:
        ctx.defvariable("temperature", "float", initial=0.7)
        ctx.set("temperature", 0.4)
        module = ChainOfThought("question -> answer").bind_to_variable("temperature")
        spec = module.to_dict()
        config = {"model": "gpt-4", "api_base": lm.url, "api_key": SECRET}
        result = ctx.provider.execute_module(
            spec, {"question": "What is DSPex?"}, spec["bindings"], config
        )
        assert result["outputs"]["answer"] == "Test answer for: What is DSPex?"
        assert result["variables"]["temperature"]["version"] == 2
        assert lm.requests[-1]["temperature"] == 0.4
        assert SECRET not in repr(result)

        with pytest.raises(ProgramError):
            ctx.provider.execute_module({"type": "NoSuchModule"}, {}, {}, config)
        ctx.delete("temperature")
        with pytest.raises(VariableNotFound):
            ctx.provider.execute_module(spec, {"question": "q"}, spec["bindings"], config)
        with pytest.raises(ValidationError):
            ctx.provider.execute_module(spec, {"question": "q"}, {"temperature": 1}, config)
    finally:
        ctx.stop()


SPAWNER = """
import os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from dspex_jupyter import Context
from dspex_jupyter.bridge import launcher
from dspex_jupyter.modules import Predict
ctx = Context.start(backend="bridged")
spec = Predict("question -> answer").to_dict()
ctx.provider.execute_module(spec, {"question": "hi"}, {}, {"model": "m", "api_base": sys.argv[1], "api_key": "k"})
print(launcher.current().pid, flush=True)
sys.stdin.read()
"""


def test_kill9_of_the_kernel_after_a_module_run_leaves_no_orphans(lm):
    proc = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(SPAWNER), lm.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )
    line = proc.stdout.readline()
    assert line.strip(), proc.stderr.read() if proc.poll() is not None else "no pid"
    server_pid = int(line)
    worker_pids = child_pids(server_pid)
    assert worker_pids, "the module ran in no worker process"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(WAIT_S)
    # the condition, not a clock: the server must go by itself however loaded the machine
    assert wait_until(lambda: not _alive(server_pid)), "the private server outlived its kernel"
    for pid in worker_pids:
        assert wait_until(lambda pid=pid: not _alive(pid)), f"worker {pid} was orphaned"


def test_kill9_of_a_worker_mid_run_fails_only_that_run(server):
    """Through the whole stack: Program.run -> gRPC -> server -> worker process."""
    from concurrent.futures import ThreadPoolExecutor

    from dspex_jupyter import Program, Variables
    from dspex_jupyter.errors import ModuleExecutionError

    with LMServer(latency=30.0) as slow_lm:
        ctx = Context.start(
            bridge=server.address, token=server.token, lm=slow_lm.lm_config(api_key=SECRET)
        )
        try:
            spec = (
                Program.new("crash")
                .defvariable("temperature", "float", initial=0.3)
                .chain([ChainOfThought("question -> answer").bind_to_variable("temperature")])
            )
            Variables.defvariable(ctx, "temperature", "float", initial=0.3)
            Variables.set(ctx, "temperature", 0.5)
            before = ctx.list()
            with ThreadPoolExecutor(1) as runner:
                doomed = runner.submit(Program.run, spec, {"question": "q"}, context=ctx)
                assert wait_until(lambda: slow_lm.requests), "the run never reached the LM"
                workers = child_pids(server.pid)
                assert workers, "no worker process under the server"
                for pid in workers:
                    os.kill(pid, signal.SIGKILL)
                with pytest.raises(ModuleExecutionError) as info:
                    doomed.result(WAIT_S)
            assert SECRET not in str(info.value)
            assert server.process.poll() is None  # the server survived
            assert ctx.list() == before  # and the session's variables are intact
            slow_lm.latency = 0.0
            result = Program.run(spec, {"question": "again?"}, context=ctx)
            assert result.outputs["answer"] == "Test answer for: again?"
            assert result.trace[-1].variables["temperature"]["version"] == before[0].version
        finally:
            ctx.stop()


def test_prewarm_starts_the_workers_before_any_module_run(lm):
    from dspex_jupyter.bridge.testing import ServerProcess

    warm = ServerProcess("memory", extra_args=["--prewarm"])
    cold = ServerProcess("memory")
    try:
        assert wait_until(lambda: child_pids(warm.pid)), "--prewarm started no worker"
        assert child_pids(cold.pid) == []  # without it, workers wait for the first run
        ctx = Context.start(bridge=warm.address, token=warm.token, lm=lm.lm_config())
        try:
            spec = ChainOfThought("question -> answer").to_dict()
            result = ctx.provider.execute_module(spec, {"question": "warm?"}, {}, ctx.lm_config)
            assert result["outputs"]["answer"] == "Test answer for: warm?"
            assert result["worker"]["pid"] in child_pids(warm.pid)
        finally:
            ctx.stop()
    finally:
        warm.stop()
        cold.stop()
