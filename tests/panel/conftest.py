from __future__ import annotations

import pytest

from .kernel_client import KernelSession


@pytest.fixture(scope="module")
def kernel():
    """One real kernel per test module (each test uses its own comm and names)."""
    session = KernelSession()
    try:
        yield session
    finally:
        session.close()
