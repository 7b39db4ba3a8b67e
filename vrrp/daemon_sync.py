"""The daemon's glue for keepalived's ``vrrp_sync_group``: the :class:`SyncGroupGlue` mixin of
:class:`vrrp.daemon.Daemon`, which asks the pure rules of :mod:`vrrp.sync_group` and moves the
members' machines accordingly.

Kept apart from :mod:`vrrp.daemon` only for size: these methods use the daemon's instances,
``_execute`` and notifier. The daemon asks them whether an instance is in FAULT or waits for
scripts (:meth:`_fault_reason`, :meth:`_pending`), re-assesses tracking through
:meth:`_reassess`, asks :meth:`_may_take_over` when a Backup member's Master_Down_Timer ends,
calls :meth:`_sync_transition` after a member's transition and :meth:`_settle_groups` after an
announcement, and tells the group of an accepted advert (``SyncGroupRun.want_backup``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vrrp.state import BecomeBackup, BecomeMaster, Reason, State
from vrrp.sync_group import MemberState, SyncGroups
from vrrp.tracking import scripts_pending

if TYPE_CHECKING:
    from vrrp.checks import ScriptChecks
    from vrrp.instance import Instance
    from vrrp.notify import Notifier
    from vrrp.spec import InstanceSpec
    from vrrp.state import Action

__all__ = ["SyncGroupGlue"]

log = logging.getLogger("vrrp")


class SyncGroupGlue:
    """The sync group methods of the daemon (a mixin: the attributes below are the daemon's)."""

    instances: dict[str, Instance]
    notifier: Notifier
    sync: SyncGroups
    _syncing: bool

    checks: ScriptChecks

    def _execute(self, inst: Instance, actions: list[Action], now: float) -> None:
        raise NotImplementedError  # the daemon's

    def _own_fault(self, ispec: InstanceSpec) -> str | None:
        raise NotImplementedError  # the daemon's: the instance's own trackers

    def _reassess_one(self, inst: Instance, now: float) -> None:
        raise NotImplementedError  # the daemon's

    def _fault_reason(self, ispec: InstanceSpec) -> str | None:
        """Why the instance is in FAULT: its own trackers, or another member of its sync group
        in FAULT of its own (``vrrp_sync_fault``)."""
        own = self._own_fault(ispec)
        group = self.sync.group_of(ispec.name)
        if own or group is None:
            return own
        faults = {
            peer: self._own_fault(self.instances[peer].spec)
            for peer in group.peers(ispec.name)
            if peer in self.instances
        }
        by = group.fault_by(ispec.name, faults)
        return f"sync group {group.name}: {by[0]} {by[1]}" if by else None

    def _pending(self, ispec: InstanceSpec) -> tuple[str, ...]:
        """The unweighted tracked scripts the instance waits for: its own, and in a sync group
        every member's (keepalived's ``num_member_init``)."""
        specs = [ispec]
        for peer in self.sync.with_peers(ispec.name)[1:]:
            if peer in self.instances:
                specs.append(self.instances[peer].spec)
        return tuple(name for spec in specs for name in scripts_pending(spec, self.checks.ok))

    def _reassess(self, inst: Instance, now: float) -> None:
        """Apply the state of what the instance tracks to it, and to the other members of its
        sync group (whose FAULT and start depend on it), then announce the group's state."""
        names = self.sync.with_peers(inst.name)
        if len(names) == 1:
            self._reassess_one(inst, now)
            return
        self._syncing = True
        try:
            for name in names:
                if name in self.instances:
                    self._reassess_one(self.instances[name], now)
        finally:
            self._syncing = False
        self._settle_groups()

    def _member_state(self, name: str) -> MemberState:
        inst = self.instances.get(name)
        if inst is None or inst.waiting:
            return "INIT"
        if inst.fault:
            return "FAULT"
        state = inst.machine.state
        return "INIT" if state is State.INITIALIZE else str(state)

    def _member_states(self, names: tuple[str, ...]) -> dict[str, MemberState]:
        return {name: self._member_state(name) for name in names}

    def _may_take_over(self, inst: Instance, now: float) -> bool:
        """Whether a Backup member whose Master_Down_Timer ended may take over; if not, it is
        held in Backup with its timer started again (``vrrp_sync_can_goto_master``)."""
        group = self.sync.group_of(inst.name)
        if group is None:
            return True
        group.want_master(inst.name)
        if group.can_goto_master(inst.name, self._member_states(group.members)):
            return True
        log.info(
            "(%s) held in BACKUP: not every member of VRRP_Group(%s) can take over",
            inst.name,
            group.name,
        )
        self._execute(inst, inst.machine.hold_backup(now), now)
        return False

    def _sync_transition(
        self, inst: Instance, became: BecomeMaster | BecomeBackup, now: float
    ) -> None:
        """Take the other members of the instance's sync group along: to MASTER with it
        (``vrrp_sync_master``), or from MASTER to BACKUP (``vrrp_sync_backup``)."""
        group = self.sync.group_of(inst.name)
        if group is None:
            return
        states = self._member_states(group.members)
        if isinstance(became, BecomeMaster):
            others, word = group.to_master(inst.name, states), "MASTER"
        elif became.reason is Reason.STARTUP:
            return
        else:
            others, word = group.to_backup(inst.name, states), "BACKUP"
        if others:
            log.info("VRRP_Group(%s) Syncing instances to %s state", group.name, word)
        self._syncing = True
        try:
            for name in others:
                other = self.instances[name]
                if word == "MASTER":
                    actions = other.machine.master_down(now, Reason.SYNC_GROUP)
                else:
                    actions = other.machine.step_down(now)
                self._execute(other, actions, now)
        finally:
            self._syncing = False
        self._settle_groups()

    def _settle_groups(self) -> None:
        """Announce each sync group whose state changed (``send_group_notifies``)."""
        for group in self.sync.groups.values():
            word = group.settle(self._member_states(group.members))
            if word is not None:
                log.info("VRRP_Group(%s) Entering %s STATE", group.name, word)
                self.notifier.notify_group(group.spec, word)
