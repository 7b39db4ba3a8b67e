"""keepalived's tracking rules: when an instance is in FAULT, and what the weights of its
``track_interface``, ``track_bfd``, ``track_script``, ``track_file`` and ``track_process`` entries
make of its priority; how a
``vrrp_script``'s results are counted (:class:`ScriptCounter`); and, ours, when a tracked BFD
session ends the Master_Down_Timer (``bfd_takeover``).

Pure: whether an interface is up is the caller's ``is_up`` (the daemon asks netlink once, then
follows link events), whether a BFD session is Up the caller's ``bfd_up`` (the state VRRP was
last told, :meth:`vrrp.bfd.endpoint.BfdEndpoint.is_up`), whether a script is good the caller's
``script_ok`` (None until its first result decides it, :meth:`vrrp.checks.ScriptChecks.ok`),
so the rules here are the same at start, on an event and on reload.

``track_script`` as keepalived 2.2.7 applies it (vrrp_track.c
``initialise_track_script_state``, ``process_script_update_priority``): a weight applies as a
``track_bfd`` weight does, with the script's success for the session's Up, and nothing while
the script is undecided. Weight 0: FAULT while the script fails (while it succeeds with
``reverse``), and until its first result the instance waits in INIT, neither FAULT nor
started (:func:`scripts_pending`).

``track_file`` as keepalived 2.2.7 applies it (track_file.c ``update_track_file_status``): the
number in the file times the weight (:func:`file_status`), read again whenever the file is
written, moved or deleted (a missing file holds 0; :mod:`vrrp.watch`).

``track_process`` as keepalived 2.2.7 applies it (vrrp_track.c
``initialise_process_tracking_priorities``, ``process_update_track_process_status``): the
block is up while it has quorum (:class:`vrrp.track_process.ProcessQuorum`), and its weights
apply by the same rule as a ``track_bfd``'s, with quorum for the session's Up. Weight 0: FAULT
while it has no quorum (while it has with ``reverse``), from the first count.

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
from vrrp.spec import InstanceSpec, TrackBfdSpec, TrackProcessSpec, TrackScriptSpec
from vrrp.state import OWNER_PRIORITY

__all__ = [
    "ScriptCounter",
    "bfd_faulted",
    "bfd_takeover_due",
    "bfd_weight",
    "fault_reason",
    "file_faulted",
    "file_status",
    "file_weight",
    "is_faulted",
    "process_faulted",
    "process_weight",
    "script_faulted",
    "script_weight",
    "scripts_pending",
    "tracked_priority",
]


def _never(_name: str) -> bool:
    return False


def _undecided(_name: str) -> bool | None:
    return None


def _zero(_name: str) -> int:
    return 0


def file_status(weight: int, reverse: bool, value: int) -> int | None:
    """What a tracked file holding ``value`` does to an instance tracking it with ``weight``
    and ``reverse`` (keepalived's ``update_track_file_status``): None for FAULT, else the change
    to its priority. Weight 0: FAULT while the value is non-zero (zero with ``reverse``).
    Otherwise value × weight (negated with ``reverse``), FAULT at -254 or less, at most 253."""
    if weight == 0:
        return None if (value != 0) != reverse else 0
    change = value * weight * (-1 if reverse else 1)
    return None if change <= -254 else min(change, 253)


def file_faulted(spec: InstanceSpec, file_value: Callable[[str], int] = _zero) -> str | None:
    """The tracked file that puts the instance in FAULT now, or None."""
    for track in spec.track_files:
        if file_status(track.weight, track.reverse, file_value(track.name)) is None:
            return track.name
    return None


def file_weight(spec: InstanceSpec, file_value: Callable[[str], int] = _zero) -> int:
    """The sum of the tracked files' changes to the priority (before clamping)."""
    changes = (file_status(t.weight, t.reverse, file_value(t.name)) for t in spec.track_files)
    return sum(change or 0 for change in changes)


class ScriptCounter:
    """keepalived's count of one ``vrrp_script``'s results (vrrp_scheduler.c
    ``vrrp_script_child_thread``): ``rise`` successes in a row make a failed script good,
    ``fall`` failures in a row make a good one fail.

    keepalived keeps one integer: 0..rise-1 is failed, rise..rise+fall-1 good. A script starts
    undecided at rise-1 (one result decides it either way), or failed at 0 with
    ``init_fail``. A success climbs one step, or jumps to the top once good; a failure falls one
    step while above rise, else drops to 0, so a failure resets a failed script's climb.
    """

    def __init__(self, rise: int = 1, fall: int = 1, init_fail: bool = False) -> None:
        """A counter for a script with these ``rise`` and ``fall`` counts."""
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be at least 1, got {rise} and {fall}")
        self.rise, self.fall = rise, fall
        self.result = 0 if init_fail else rise - 1
        self.decided = init_fail

    @property
    def ok(self) -> bool | None:
        """Whether the script is good; None while undecided."""
        return self.result >= self.rise if self.decided else None

    def record(self, success: bool) -> bool:
        """Count one run's result; True when it changed :attr:`ok` (from undecided too)."""
        before = self.ok
        if success:
            if self.result < self.rise - 1:
                self.result += 1
            else:
                self.result = self.rise + self.fall - 1
        elif self.result > self.rise:
            self.result -= 1
        else:
            self.result = 0
        # Undecided, the count sits at rise-1: any first result crosses a bound and decides.
        self.decided = True
        return self.ok != before


def script_faulted(
    spec: InstanceSpec, script_ok: Callable[[str], bool | None] = _undecided
) -> str | None:
    """The unweighted ``track_script`` that puts the instance in FAULT now, or None."""
    return _unweighted_failing(spec.track_scripts, script_ok)


def scripts_pending(
    spec: InstanceSpec, script_ok: Callable[[str], bool | None] = _undecided
) -> list[str]:
    """The unweighted tracked scripts still undecided: keepalived holds the instance in INIT,
    sending nothing, until each has reported."""
    return [t.name for t in spec.track_scripts if t.weight == 0 and script_ok(t.name) is None]


def _unweighted_failing(
    tracks: tuple[TrackScriptSpec, ...] | tuple[TrackProcessSpec, ...],
    good: Callable[[str], bool | None],
) -> str | None:
    """The first unweighted entry of ``tracks`` that is not good (good, with ``reverse``), or
    None: keepalived's FAULT rule for a script or a process; nothing while undecided."""
    for track in tracks:
        state = good(track.name)
        if track.weight == 0 and state is not None and state == track.reverse:
            return track.name
    return None


def _weights(
    tracks: tuple[TrackBfdSpec, ...] | tuple[TrackScriptSpec, ...] | tuple[TrackProcessSpec, ...],
    good: Callable[[str], bool | None],
) -> int:
    """The sum of the weights that apply now, by keepalived's one rule for a tracked session,
    script or process: a positive weight while it is good (a session Up, a script succeeding,
    a process with quorum), a negative one while it is not, negated with ``reverse``; nothing
    while it is undecided (None)."""
    total = 0
    for track in tracks:
        state = good(track.name)
        if track.weight and state is not None and state == (track.weight > 0):
            total += -track.weight if track.reverse else track.weight
    return total


def script_weight(spec: InstanceSpec, script_ok: Callable[[str], bool | None] = _undecided) -> int:
    """The sum of the ``track_script`` weights that apply now (before clamping)."""
    return _weights(spec.track_scripts, script_ok)


def process_faulted(
    spec: InstanceSpec, process_up: Callable[[str], bool | None] = _undecided
) -> str | None:
    """The unweighted ``track_process`` that puts the instance in FAULT now, or None (an
    uncounted block, None, faults nothing: the daemon counts before it starts instances)."""
    return _unweighted_failing(spec.track_processes, process_up)


def process_weight(
    spec: InstanceSpec, process_up: Callable[[str], bool | None] = _undecided
) -> int:
    """The sum of the ``track_process`` weights that apply now (before clamping)."""
    return _weights(spec.track_processes, process_up)


def bfd_faulted(spec: InstanceSpec, bfd_up: Callable[[str], bool]) -> bool:
    """FAULT because of an unweighted ``track_bfd`` (never with ``bfd_takeover``, whose
    sessions take over instead of faulting, at start too)."""
    if spec.bfd_takeover:
        return False
    return any(t.weight == 0 and bfd_up(t.name) == t.reverse for t in spec.track_bfds)


def bfd_weight(spec: InstanceSpec, bfd_up: Callable[[str], bool]) -> int:
    """The sum of the ``track_bfd`` weights that apply now (before clamping)."""
    return _weights(spec.track_bfds, bfd_up)


def fault_reason(
    spec: InstanceSpec,
    is_up: Callable[[str], bool],
    bfd_up: Callable[[str], bool] = _never,
    script_ok: Callable[[str], bool | None] = _undecided,
    file_value: Callable[[str], int] = _zero,
    process_up: Callable[[str], bool | None] = _undecided,
) -> str | None:
    """Why the instance is in FAULT now (for the log), or None: the interface, or a tracked
    interface without a weight, is down, or an unweighted ``track_bfd``, ``track_script`` or
    ``track_process``, or a tracked file, says so."""
    if not is_up(spec.interface):
        return "interface down"
    if any(t.weight is None and not is_up(t.name) for t in spec.track_interfaces):
        return "interface down"
    if bfd_faulted(spec, bfd_up):
        return "tracked BFD down"
    script = script_faulted(spec, script_ok)
    if script is not None:
        return f"tracked script {script} failed"
    tracked = file_faulted(spec, file_value)
    if tracked is not None:
        return f"tracked file {tracked} holds {file_value(tracked)}"
    process = process_faulted(spec, process_up)
    if process is not None:
        return f"tracked process {process} quorum {'gained' if process_up(process) else 'lost'}"
    return None


def is_faulted(
    spec: InstanceSpec,
    is_up: Callable[[str], bool],
    bfd_up: Callable[[str], bool] = _never,
    script_ok: Callable[[str], bool | None] = _undecided,
    file_value: Callable[[str], int] = _zero,
    process_up: Callable[[str], bool | None] = _undecided,
) -> bool:
    """Whether the instance is in FAULT now (:func:`fault_reason`)."""
    return fault_reason(spec, is_up, bfd_up, script_ok, file_value, process_up) is not None


def tracked_priority(
    spec: InstanceSpec,
    is_up: Callable[[str], bool],
    bfd_up: Callable[[str], bool] = _never,
    script_ok: Callable[[str], bool | None] = _undecided,
    file_value: Callable[[str], int] = _zero,
    process_up: Callable[[str], bool | None] = _undecided,
) -> int:
    """The configured priority plus the weights of tracked interfaces, BFD sessions, scripts,
    files and processes that apply now, clamped to 1..254 (the owner's 255 is not for tracking to
    change)."""
    if spec.priority == OWNER_PRIORITY:
        return spec.priority
    priority = spec.priority
    for track in spec.track_interfaces:
        if track.weight is not None and is_up(track.name) == track.reverse:
            priority += track.weight
    priority += bfd_weight(spec, bfd_up)
    priority += script_weight(spec, script_ok)
    priority += file_weight(spec, file_value)
    priority += process_weight(spec, process_up)
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
