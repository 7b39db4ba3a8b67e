"""keepalived's interface tracking rules: when an instance is in FAULT, and what the weights of
its ``track_interface`` entries make of its priority.

Pure: whether an interface is up is the caller's ``is_up`` (the daemon asks netlink once, then
follows link events), so the rules here are the same at start, on a link event and on reload.
"""

from __future__ import annotations

from collections.abc import Callable

from vrrp.spec import InstanceSpec
from vrrp.state import OWNER_PRIORITY

__all__ = ["is_faulted", "tracked_priority"]


def is_faulted(spec: InstanceSpec, is_up: Callable[[str], bool]) -> bool:
    """FAULT while the interface, or a tracked interface without a weight, is down."""
    if not is_up(spec.interface):
        return True
    return any(t.weight is None and not is_up(t.name) for t in spec.track_interfaces)


def tracked_priority(spec: InstanceSpec, is_up: Callable[[str], bool]) -> int:
    """The configured priority plus the weights of tracked interfaces that apply now."""
    if spec.priority == OWNER_PRIORITY:
        return spec.priority  # the address owner's priority is not for tracking to change
    priority = spec.priority
    for track in spec.track_interfaces:
        if track.weight is not None and is_up(track.name) == track.reverse:
            priority += track.weight
    return max(1, min(OWNER_PRIORITY - 1, priority))
