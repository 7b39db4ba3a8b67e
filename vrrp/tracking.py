"""keepalived's tracking rules: when an instance is in FAULT, and what the weights of its
``track_interface`` and ``track_bfd`` entries make of its priority; and, ours, when a tracked
BFD session ends the Master_Down_Timer (``bfd_takeover``).

Pure: whether an interface is up is the caller's ``is_up`` (the daemon asks netlink once, then
follows link events), whether a BFD session is Up the caller's ``bfd_up`` (the state VRRP was
last told, :meth:`vrrp.bfd.endpoint.BfdEndpoint.is_up`), so the rules here are the same at
start, on an event and on reload.

``track_bfd`` as keepalived 2.2.7 applies it (vrrp_track.c ``initialise_track_bfd_state``,
vrrp_scheduler.c ``vrrp_handle_bfd_event``): only Up counts as up (Init and AdminDown are
down). Weight 0: FAULT while the session is not Up (while it is Up with ``reverse``), from the
start, so an instance waits in FAULT for its first Up. A positive weight is added while the
session is Up, a negative one while it is not; ``reverse`` negates it. The priority is clamped
to 1..254 after every weight, and the address owner's 255 never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address

from vrrp.packet import IPAddress
from vrrp.spec import InstanceSpec
from vrrp.state import OWNER_PRIORITY

__all__ = [
    "bfd_faulted",
    "bfd_takeover_due",
    "bfd_weight",
    "fault_reason",
    "is_faulted",
    "tracked_priority",
]


def _never(_name: str) -> bool:
    return False


def bfd_faulted(spec: InstanceSpec, bfd_up: Callable[[str], bool]) -> bool:
    """FAULT because of an unweighted ``track_bfd`` (never with ``bfd_takeover``, whose
    sessions take over instead of faulting, at start too)."""
    if spec.bfd_takeover:
        return False
    return any(t.weight == 0 and bfd_up(t.name) == t.reverse for t in spec.track_bfds)


def bfd_weight(spec: InstanceSpec, bfd_up: Callable[[str], bool]) -> int:
    """The sum of the ``track_bfd`` weights that apply now (before clamping)."""
    total = 0
    for track in spec.track_bfds:
        if track.weight and bfd_up(track.name) == (track.weight > 0):
            total += -track.weight if track.reverse else track.weight
    return total


def fault_reason(
    spec: InstanceSpec, is_up: Callable[[str], bool], bfd_up: Callable[[str], bool] = _never
) -> str | None:
    """Why the instance is in FAULT now (for the log), or None: the interface, or a tracked
    interface without a weight, is down, or an unweighted ``track_bfd`` says so."""
    if not is_up(spec.interface):
        return "interface down"
    if any(t.weight is None and not is_up(t.name) for t in spec.track_interfaces):
        return "interface down"
    if bfd_faulted(spec, bfd_up):
        return "tracked BFD down"
    return None


def is_faulted(
    spec: InstanceSpec, is_up: Callable[[str], bool], bfd_up: Callable[[str], bool] = _never
) -> bool:
    """Whether the instance is in FAULT now (:func:`fault_reason`)."""
    return fault_reason(spec, is_up, bfd_up) is not None


def tracked_priority(
    spec: InstanceSpec, is_up: Callable[[str], bool], bfd_up: Callable[[str], bool] = _never
) -> int:
    """The configured priority plus the weights of tracked interfaces and BFD sessions that
    apply now, clamped to 1..254 (the owner's 255 is not for tracking to change)."""
    if spec.priority == OWNER_PRIORITY:
        return spec.priority
    priority = spec.priority
    for track in spec.track_interfaces:
        if track.weight is not None and is_up(track.name) == track.reverse:
            priority += track.weight
    priority += bfd_weight(spec, bfd_up)
    return max(1, min(OWNER_PRIORITY - 1, priority))


def bfd_takeover_due(
    spec: InstanceSpec, name: str, neighbor: IPAddress | None, last_master: str | None
) -> bool:
    """Whether session ``name`` (to ``neighbor``) going Down ends this instance's
    Master_Down_Timer at once: ``bfd_takeover`` is on, the instance tracks it, and its
    neighbour is the address the current master advertises from (the source of the last
    advert accepted with a priority above 0). The state machine ignores it unless Backup."""
    if not spec.bfd_takeover or neighbor is None or last_master is None:
        return False
    if not any(t.name == name for t in spec.track_bfds):
        return False
    return ip_address(last_master) == neighbor
