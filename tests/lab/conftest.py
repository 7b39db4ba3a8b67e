"""Fixtures shared by the lab tests."""

from __future__ import annotations

import pytest

from lab.host_state import HostState, snapshot


@pytest.fixture
def host_state() -> HostState:
    """The root namespace as it was before the test. Function scope; no dependencies."""
    return snapshot()
