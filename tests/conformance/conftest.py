"""Backends under conformance test.

Every test in this folder takes ``make_provider`` (a factory of fresh, empty
providers of one backend) or ``provider`` (one such provider), and runs once
per backend listed in ``BACKENDS``. A backend joins the suite by adding its
name to ``BACKENDS`` and a fixture named ``<name>_factory`` (dashes become
underscores) that yields a zero-argument factory; the tests do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dspex_jupyter.state.local import LocalState
from dspex_jupyter.state.provider import StateProvider

BACKENDS = ["local", "bridged-memory", "bridged-sqlite"]

Factory = Callable[[], StateProvider]


@pytest.fixture
def local_factory() -> Iterator[Factory]:
    made: list[StateProvider] = []

    def make() -> StateProvider:
        made.append(LocalState())
        return made[-1]

    yield make
    for provider in made:
        provider.close()


# ---------------------------------------------------------------- bridged backends
# One real bridge server subprocess per store for the whole test session; each
# provider gets a fresh session on it (BridgedState with its own watch stream).


def _bridged_factory(server) -> Iterator[Factory]:
    import uuid

    from dspex_jupyter.bridge.client import BridgeClient
    from dspex_jupyter.bridge.state import BridgedState

    made: list[StateProvider] = []

    def make() -> StateProvider:
        client = BridgeClient(server.address, server.token)
        made.append(BridgedState(client, uuid.uuid4().hex, cleanup_on_close=True))
        return made[-1]

    yield make
    for provider in made:
        provider.close()


@pytest.fixture(scope="session")
def bridged_memory_server():
    from dspex_jupyter.bridge.testing import ServerProcess

    server = ServerProcess("memory")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bridged_sqlite_server(tmp_path_factory):
    from dspex_jupyter.bridge.testing import ServerProcess

    path = tmp_path_factory.mktemp("bridge-store") / "conformance.db"
    server = ServerProcess(f"sqlite:{path}")
    yield server
    server.stop()


@pytest.fixture
def bridged_memory_factory(bridged_memory_server) -> Iterator[Factory]:
    yield from _bridged_factory(bridged_memory_server)


@pytest.fixture
def bridged_sqlite_factory(bridged_sqlite_server) -> Iterator[Factory]:
    yield from _bridged_factory(bridged_sqlite_server)


@pytest.fixture(params=BACKENDS)
def make_provider(request: pytest.FixtureRequest) -> Factory:
    return request.getfixturevalue(request.param.replace("-", "_") + "_factory")


@pytest.fixture
def provider(make_provider: Factory) -> StateProvider:
    return make_provider()
