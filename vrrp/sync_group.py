"""keepalived's sync groups at run time (``vrrp_sync_group``), as pure rules: the members of a
group move together.

keepalived 2.2.7 (keepalived/vrrp/vrrp_sync.c, called from vrrp_scheduler.c's transition
table ``VRRP_TSM`` and from vrrp.c / vrrp_track.c):

* A member whose Master_Down_Timer expires wants MASTER (its ``wantstate``), and goes MASTER
  only if the group is MASTER already or every other member wants MASTER too
  (``vrrp_sync_can_goto_master``); otherwise it stays BACKUP and its Master_Down_Timer starts
  again, so the group takes over when its *last* member's timer expires. A held member that
  then accepts an advert wants BACKUP again (vrrp.c ``vrrp_state_backup``: "We might have been
  held in backup by a sync group").
* A member going MASTER takes every other member to MASTER at once (``vrrp_sync_master``,
  through ``vrrp_state_goto_master``: advert, VIPs, GARPs).
* A MASTER member going BACKUP (it heard a better master) takes every other member to BACKUP
  (``vrrp_sync_backup``, through ``vrrp_state_leave_master``: the VIPs go, no priority-0
  advert, and the Master_Down_Timer starts).
* A member in FAULT takes every other member to FAULT (``vrrp_sync_fault``: a master among them
  sends priority 0, as ``vrrp_state_leave_master`` does for FAULT), and the group stays in
  FAULT until no member has a fault of its own (vrrp_track.c ``down_instance`` and
  vrrp_scheduler.c ``try_up_instance`` count ``num_member_fault``); the members then start
  again as BACKUP. Likewise no member starts while another waits for its scripts' first
  result (``num_member_init``).
* The group's state is announced (notify FIFO ``GROUP "name" STATE 0``, the group's notify
  scripts) when it changes: FAULT as soon as a member is in FAULT, MASTER once every member is,
  BACKUP once every member is (``send_group_notifies`` after each sync, and at start for a
  group in BACKUP or FAULT), and STOP at shutdown.

This module keeps, per group, the members that want MASTER and the state announced last; what
each member's machine does is the daemon's (:mod:`vrrp.daemon`), which asks here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vrrp.spec import SyncGroupSpec

__all__ = ["MemberState", "SyncGroupRun", "SyncGroups"]

MemberState = str
"""A member's state as the group sees it: ``"MASTER"``, ``"BACKUP"``, ``"FAULT"`` or
``"INIT"`` (not started: waiting for its scripts, or stopped)."""


@dataclass
class SyncGroupRun:
    """One group at run time: its members that want MASTER, and the state last announced."""

    spec: SyncGroupSpec
    announced: str | None = None
    """The group state last notified (None before the first)."""
    wanting: set[str] = field(default_factory=set)
    """The members whose Master_Down_Timer expired and that have heard no master since
    (keepalived's ``wantstate`` MASTER)."""

    @property
    def name(self) -> str:
        """The ``vrrp_sync_group`` name."""
        return self.spec.name

    @property
    def members(self) -> tuple[str, ...]:
        """The member instances, in the group's order."""
        return self.spec.members

    def peers(self, member: str) -> tuple[str, ...]:
        """The other members."""
        return tuple(m for m in self.spec.members if m != member)

    def want_master(self, member: str) -> None:
        """``member``'s Master_Down_Timer expired: it would be MASTER but for the group."""
        self.wanting.add(member)

    def want_backup(self, member: str) -> None:
        """``member`` accepted a master's advert: it wants BACKUP again."""
        self.wanting.discard(member)

    def can_goto_master(self, member: str, states: Mapping[str, MemberState]) -> bool:
        """Whether ``member`` may go MASTER now (``vrrp_sync_can_goto_master``): the group is
        MASTER already, or every other member is MASTER or wants to be."""
        if self.announced == "MASTER":
            return True
        return all(
            states.get(peer) == "MASTER" or (peer in self.wanting and states.get(peer) == "BACKUP")
            for peer in self.peers(member)
        )

    def to_master(self, member: str, states: Mapping[str, MemberState]) -> list[str]:
        """``member`` went MASTER: the other members to take to MASTER now
        (``vrrp_sync_master``: those not MASTER, which are BACKUP when it could go)."""
        return [p for p in self.peers(member) if states.get(p) == "BACKUP"]

    def to_backup(self, member: str, states: Mapping[str, MemberState]) -> list[str]:
        """``member`` left MASTER for BACKUP: the other members to take from MASTER to BACKUP
        (``vrrp_sync_backup``). No member wants MASTER any more."""
        self.wanting.clear()
        return [p for p in self.peers(member) if states.get(p) == "MASTER"]

    def fault_by(self, member: str, own_faults: Mapping[str, str | None]) -> tuple[str, str] | None:
        """The other member whose own fault puts ``member`` in FAULT, and why; or None
        (``vrrp_sync_fault``, ``num_member_fault``)."""
        for peer in self.peers(member):
            reason = own_faults.get(peer)
            if reason:
                return peer, reason
        return None

    def settle(self, states: Mapping[str, MemberState]) -> str | None:
        """The group state to announce now, or None if it is unchanged: FAULT while a member
        is in FAULT, MASTER once every member is MASTER, BACKUP once every member is BACKUP
        (a group half way through a sync keeps what it announced)."""
        words = [states.get(m, "INIT") for m in self.spec.members]
        if "FAULT" in words:
            new = "FAULT"
        elif all(w == "MASTER" for w in words):
            new = "MASTER"
        elif all(w == "BACKUP" for w in words):
            new = "BACKUP"
        else:
            return None
        if new == self.announced:
            return None
        self.announced = new
        if new != "BACKUP":
            self.wanting.clear()
        return new


class SyncGroups:
    """Every sync group of a configuration, and which group each member is in."""

    def __init__(
        self, specs: Sequence[SyncGroupSpec] = (), previous: SyncGroups | None = None
    ) -> None:
        """The groups of ``specs``; on a reload, a group of ``previous`` with the same name and
        members keeps what it announced (so an unchanged group is not announced again)."""
        self.groups: dict[str, SyncGroupRun] = {}
        self.of: dict[str, SyncGroupRun] = {}
        for spec in specs:
            run = SyncGroupRun(spec)
            old = previous.groups.get(spec.name) if previous is not None else None
            if old is not None and old.spec.members == spec.members:
                run.announced = old.announced
            self.groups[spec.name] = run
            for member in spec.members:
                self.of[member] = run

    def group_of(self, member: str) -> SyncGroupRun | None:
        """The group ``member`` is in, or None."""
        return self.of.get(member)

    def with_peers(self, member: str) -> tuple[str, ...]:
        """``member`` first, then the other members of its group (if it is in one)."""
        group = self.of.get(member)
        return (member, *group.peers(member)) if group is not None else (member,)

    def status(self) -> dict[str, dict[str, object]]:
        """Per group: its members, the state announced and the members wanting MASTER."""
        return {
            name: {
                "members": list(run.members),
                "state": run.announced,
                "want_master": sorted(run.wanting),
            }
            for name, run in self.groups.items()
        }
