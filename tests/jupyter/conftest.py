"""Fixtures of the Jupyter-layer tests: a fresh context, a real IPython shell."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from dspex_jupyter import Context


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (generous timeout: 2 shared cores)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def ctx() -> Iterator[Context]:
    context = Context.start(name="test")
    context.defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
    context.defvariable("steps", "int", initial=3, constraints={"min": 1})
    context.defvariable(
        "model", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "claude-3"]}
    )
    context.defvariable("verbose", "bool", initial=False)
    context.defvariable("prompt", "str", initial="hello", constraints={"max_length": 10})
    yield context
    context.stop()


@pytest.fixture(scope="session")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    result = ip.run_cell("%load_ext dspex_jupyter")
    assert result.success
    return ip


@pytest.fixture
def ip(shell, ctx):
    """The shell, with the magics acting on this test's context."""
    shell.user_ns["ctx"] = ctx
    run(shell, "%dspex context use ctx")
    return shell


def run(shell, source: str):
    """Run a cell; fail the test with the error if it did not succeed."""
    result = shell.run_cell(source)
    if not result.success:
        raise AssertionError(
            f"{source!r} failed: {result.error_in_exec or result.error_before_exec!r}"
        )
    return result.result


def run_error(shell, source: str) -> BaseException:
    """Run a cell that must fail; return its exception."""
    result = shell.run_cell(source)
    assert not result.success, f"{source!r} unexpectedly succeeded"
    return result.error_in_exec or result.error_before_exec
