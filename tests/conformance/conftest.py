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

BACKENDS = ["local"]

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


@pytest.fixture(params=BACKENDS)
def make_provider(request: pytest.FixtureRequest) -> Factory:
    return request.getfixturevalue(request.param.replace("-", "_") + "_factory")


@pytest.fixture
def provider(make_provider: Factory) -> StateProvider:
    return make_provider()
