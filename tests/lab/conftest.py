"""Fixtures shared by the lab tests."""

from __future__ import annotations

import pytest

from tests.support.hoststate import HostState


@pytest.fixture
def host_state() -> HostState:
    """The root namespace as it was before the test. Function scope; no dependencies."""
    return HostState.take()
