"""Waiting without sleeping blind: poll a condition against a deadline.

Every wait in the lab goes through :func:`wait_until`, so every timeout says what was awaited
and what was last seen instead, in the spirit of FRR topotests' ``run_and_expect``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    accept: Callable[[T], bool] = bool,
    interval: float = 0.005,
    max_interval: float = 0.1,
) -> T:
    """Call ``probe`` until ``accept(result)`` holds, and return that result.

    The poll interval starts at ``interval`` and doubles up to ``max_interval``, so a condition
    that holds at once costs almost nothing and a slow one costs little CPU. On timeout,
    :class:`WaitTimeout` names ``what`` was awaited and the last value ``probe`` returned.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        seen = probe()
        if accept(seen):
            return seen
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting for {what}; last seen: {seen!r}"
            )
        # The only sleep in the lab: a bounded back-off between two polls of a real condition.
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, max_interval)
