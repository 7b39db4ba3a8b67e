"""The lab's one clock.

Every timestamp the lab records (probe sends and replies, router transitions, SDN controller
events, neighbour-table changes, captured frames) is in seconds on this clock, so that events
from different namespaces and processes order and subtract directly. It is CLOCK_REALTIME
because the kernel stamps captured frames with it; all namespaces share it, and a run lasts
seconds, so slewing does not matter at the millisecond scale the lab reports.
"""

from __future__ import annotations

import time


def now() -> float:
    """The current time on the lab clock, in seconds."""
    return time.time()


def ms(seconds: float) -> float:
    """Seconds to milliseconds, for reports."""
    return seconds * 1000.0
