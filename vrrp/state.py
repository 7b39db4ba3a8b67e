"""The VRRP router state machine of RFC 5798 §6.4 (and RFC 9568 / RFC 3768), as pure code.

The machine owns no socket, thread, timer or clock. A driver (the daemon, or a test) feeds it
events together with the current time and executes the actions it returns, in order::

    machine = StateMachine(Params(vrid=51, priority=100, primary_ip="10.0.0.1",
                                  vips=("10.0.0.100",)))
    run(machine.startup(now))
    while True:
        wait until machine.next_deadline() or until an advert arrives
        run(machine.tick(now))                      # on wake-up
        run(machine.advert_received(now, prio, max_adver_int_cs, src_ip))   # on receipt

Times are float seconds on whatever monotonic clock the driver uses; intervals in the protocol
are centiseconds (the unit of the v3 Max Adver Int field), so parameters take centiseconds and
the timer properties report seconds.

Scope: this module implements the §6.4 transitions; the §6.1 timer arithmetic, per RFC, is
:mod:`vrrp.timers`. Packet validation (§7.1: TTL, checksum, VRID, address lists) belongs to
the receive path, except the two checks that need the machine's own state: RFC 3768 §7.1's
interval match for v2, and ignoring our own looped-back adverts. RFC 5798 §7.1 also tells an
address owner to discard every advert; RFC 9568 erratum 8298 lowered that to "SHOULD log", and
this machine follows §6.4, which does process them (two misconfigured owners then settle by the
§6.4.3 address tie-break).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from vrrp import timers

__all__ = [
    "OWNER_PRIORITY",
    "Action",
    "AddVips",
    "BecomeBackup",
    "BecomeInitialize",
    "BecomeMaster",
    "DiscardAdvert",
    "DiscardReason",
    "Params",
    "Reason",
    "RemoveVips",
    "SendAdvert",
    "SendGratuitous",
    "State",
    "StateMachine",
]

#: RFC 5798 §5.2.4: the router that owns the virtual addresses uses priority 255.
OWNER_PRIORITY = 255
#: RFC 5798 §5.2.4: priority 0 means "the current Master has stopped participating".
SHUTDOWN_PRIORITY = 0
#: RFC 5798 §5.2.7: Max Adver Int is a 12-bit field in centiseconds.
MAX_V3_INTERVAL_CS = 4095
#: RFC 3768 §5.3.7: the v2 Adver Int is an 8-bit field in seconds.
MAX_V2_INTERVAL_CS = 255 * 100


class State(enum.StrEnum):
    """The three states of RFC 5798 §6.4.

    The values are the words keepalived writes in its notify lines
    (``INSTANCE "name" MASTER 200``), so ``str(state)`` can go straight into one.
    RFC 9568 renames Master to Active; the notify vocabulary did not follow, so neither do we.
    """

    INITIALIZE = "INITIALIZE"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


class Reason(enum.StrEnum):
    """Why a state transition happened, carried by the ``Become*`` actions for logs and reports."""

    #: §6.4.1: Startup event, not the address owner.
    STARTUP = "startup"
    #: §6.4.1: Startup event with priority 255.
    OWNER_STARTUP = "owner-startup"
    #: §6.4.2: Master_Down_Timer fired (no advert heard, or Skew_Time after a priority-0 one).
    MASTER_DOWN_TIMER = "master-down-timer"
    #: §6.4.2's Master_Down_Timer fire, brought forward by the driver: something faster than
    #: adverts (a BFD session to the Master) saw the Master die (:meth:`StateMachine.master_down`).
    MASTER_DOWN = "master-down"
    #: Not an RFC event: another member of the instance's keepalived ``vrrp_sync_group`` changed
    #: state, and the group moves together (:meth:`StateMachine.master_down`,
    #: :meth:`StateMachine.step_down`).
    SYNC_GROUP = "sync-group"
    #: §6.4.3: an advert with a higher priority than ours arrived while Master.
    HIGHER_PRIORITY = "higher-priority"
    #: §6.4.3: an advert with our priority and a higher primary address arrived while Master.
    EQUAL_PRIORITY_HIGHER_IP = "equal-priority-higher-ip"
    #: §6.4.2 / §6.4.3: Shutdown event.
    SHUTDOWN = "shutdown"


class DiscardReason(enum.StrEnum):
    """Why a received advert was discarded (the driver logs and counts these)."""

    #: §6.4.1: a router in Initialize only waits for Startup.
    NOT_RUNNING = "not-running"
    #: RFC 3768 §7.1: v2 adverts must carry the locally configured Adver Int.
    INTERVAL_MISMATCH = "interval-mismatch"
    #: A v3 Max Adver Int of 0 would make Master_Down_Interval collapse to Skew_Time (row P07).
    ZERO_INTERVAL = "zero-interval"
    #: Our own advert looped back (multicast loopback); processing it would make a Master
    #: answer itself forever under RFC 9568.
    OWN_ADVERT = "own-advert"
    #: The sender's address family differs from ours: per RFC 5798 §1, IPv4 and IPv6 virtual
    #: routers are separate instances, so it is not our router's advert.
    FAMILY_MISMATCH = "family-mismatch"
    #: §6.4.2 (465)-(470): Backup with Preempt_Mode on, advert priority below ours.
    LOWER_PRIORITY = "lower-priority"
    #: §6.4.3 (770)-(775): Master, advert loses the priority / address comparison.
    LOSING_ADVERT = "losing-advert"


# --------------------------------------------------------------------------------------------
# Actions: what the driver must do, in the order returned.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one ADVERTISEMENT with this priority (0 when shutting down, §6.4.3).

    ``adver_int_cs`` is the interval to put in the packet: our own Advertisement_Interval,
    since a Master always advertises its configured interval (§6.1).
    """

    priority: int
    adver_int_cs: int


@dataclass(frozen=True, slots=True)
class SendGratuitous:
    """Announce the virtual addresses: a gratuitous ARP per IPv4 VIP, or an unsolicited ND
    Neighbor Advertisement (R and O set, S clear) per IPv6 VIP, from the virtual MAC (§6.4.1,
    §6.4.2, RFC 9568 erratum 7949)."""

    vips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddVips:
    """Install the virtual addresses (so the kernel answers ARP/ND and, with Accept_Mode,
    accepts traffic for them). Returned before :class:`SendGratuitous` so the announcement
    never advertises an address nobody answers for yet."""

    vips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveVips:
    """Remove the virtual addresses: a Backup MUST NOT answer ARP/ND for them (§6.4.2)."""

    vips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BecomeMaster:
    """The machine entered MASTER. Returned last, after the VIPs are installed and announced,
    so a notify line written on it reports a finished transition."""

    state: ClassVar[State] = State.MASTER
    reason: Reason


@dataclass(frozen=True, slots=True)
class BecomeBackup:
    """The machine entered BACKUP (returned after any :class:`RemoveVips`)."""

    state: ClassVar[State] = State.BACKUP
    reason: Reason


@dataclass(frozen=True, slots=True)
class BecomeInitialize:
    """The machine went back to INITIALIZE (a Shutdown event)."""

    state: ClassVar[State] = State.INITIALIZE
    reason: Reason


@dataclass(frozen=True, slots=True)
class DiscardAdvert:
    """A received advert was discarded; nothing to do beyond logging or counting it."""

    reason: DiscardReason
    src_ip: str
    priority: int


Action = (
    SendAdvert
    | SendGratuitous
    | AddVips
    | RemoveVips
    | BecomeMaster
    | BecomeBackup
    | BecomeInitialize
    | DiscardAdvert
)
"""Everything an event can return. The ``Become*`` ones carry a ``state`` class attribute."""


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    """The per-virtual-router parameters of RFC 5798 §6.1, plus keepalived's preempt_delay.

    Attributes:
        vrid: Virtual Router Identifier, 1..255.
        priority: 1..255; 255 marks the address owner (§6.1 Priority).
        primary_ip: this router's primary address on the interface, the source of its adverts
            and the §6.4.3 tie-breaker.
        vips: the virtual addresses, all of the primary address's family (§5.2.9).
        advert_interval_cs: Advertisement_Interval in centiseconds (default 100 = 1 s).
        preempt: Preempt_Mode (§6.1). The owner preempts regardless.
        preempt_delay: keepalived's ``preempt_delay`` in seconds (not in any RFC): after startup,
            or after first hearing a lower-priority Master, wait this long before preempting.
        accept_mode: Accept_Mode (§6.1): a non-owner Master accepts traffic to the VIPs.
        version: 3 (RFC 5798 / RFC 9568) or 2 (RFC 3768, IPv4 only).
        rfc9568: follow RFC 9568 where it differs from RFC 5798 (v3 only): recompute Skew_Time
            when a Backup adopts an interval, and re-advertise at once to a losing advert.
    """

    vrid: int
    priority: int
    primary_ip: str
    vips: tuple[str, ...] = ()
    advert_interval_cs: int = 100
    preempt: bool = True
    preempt_delay: float = 0.0
    accept_mode: bool = False
    version: int = 3
    rfc9568: bool = False

    def __post_init__(self) -> None:
        """Reject values the protocol cannot carry, so the machine never has to."""
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"vrid must be 1..255, got {self.vrid}")
        # Priority 0 is reserved for the shutdown advert (§5.2.4), never configured.
        if not 1 <= self.priority <= OWNER_PRIORITY:
            raise ValueError(f"priority must be 1..255, got {self.priority}")
        if self.version not in (2, 3):
            raise ValueError(f"version must be 2 or 3, got {self.version}")
        limit = MAX_V2_INTERVAL_CS if self.version == 2 else MAX_V3_INTERVAL_CS
        if not 1 <= self.advert_interval_cs <= limit:
            raise ValueError(
                f"advert_interval_cs must be 1..{limit} for VRRPv{self.version}, "
                f"got {self.advert_interval_cs}"
            )
        if self.preempt_delay < 0:
            raise ValueError(f"preempt_delay must be >= 0, got {self.preempt_delay}")
        primary = ipaddress.ip_address(self.primary_ip)
        if self.version == 2 and primary.version != 4:
            raise ValueError("VRRPv2 (RFC 3768) is IPv4 only")
        if self.rfc9568 and self.version != 3:
            raise ValueError("rfc9568 applies to VRRPv3 only")
        # A tuple keeps the dataclass hashable and the order stable for GARPs; accept a list
        # from callers and normalise it.
        object.__setattr__(self, "vips", tuple(self.vips))
        for vip in self.vips:
            if ipaddress.ip_address(vip).version != primary.version:
                raise ValueError(
                    f"VIP {vip} is not of the primary address's family (RFC 5798 §5.2.9)"
                )


def _ip_value(address: str) -> tuple[int, int]:
    """(family, integer value) of an address: RFC 5798 §6.4.3 compares addresses as unsigned
    integers in network byte order, never as strings ("10.0.0.9" < "10.0.0.10")."""
    parsed = ipaddress.ip_address(address)
    return parsed.version, int(parsed)


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


class StateMachine:
    """One VRRP router for one virtual router, driven by events with an injected clock.

    Every event method takes ``now`` (seconds) and returns the list of actions to execute in
    order. The machine holds at most one running timer: Adver_Timer in MASTER,
    Master_Down_Timer in BACKUP; :meth:`next_deadline` says when :meth:`tick` is due.
    """

    def __init__(self, params: Params) -> None:
        """Create a router in INITIALIZE; nothing happens until :meth:`startup`."""
        self._params = params
        self._state = State.INITIALIZE
        # §6.1: Master_Adver_Interval starts as our own interval; v3 Backups adopt the Master's.
        self._master_adver_interval_cs = params.advert_interval_cs
        # Skew_Time is stored, not derived on the fly: RFC 5798 §6.4.2 (450)-(460) adopts a new
        # Master_Adver_Interval without "Recompute the Skew_Time" (RFC 9568 adds that step), so
        # in RFC 5798 mode the skew can lag the adopted interval.
        self._skew_time = self._compute_skew_time()
        self._adver_timer: float | None = None
        self._master_down_timer: float | None = None
        # keepalived preempt_delay: preemption is held back until this time (None: no hold yet).
        self._preempt_hold_until: float | None = None

    # ---- read-only views --------------------------------------------------------------------

    @property
    def params(self) -> Params:
        """The current parameters (replace them with :meth:`reconfigure`)."""
        return self._params

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def priority(self) -> int:
        """Our configured priority (1..255)."""
        return self._params.priority

    @property
    def is_owner(self) -> bool:
        """True for the address owner (priority 255, RFC 5798 §6.1)."""
        return self._params.priority == OWNER_PRIORITY

    @property
    def advertisement_interval(self) -> float:
        """Our own Advertisement_Interval in seconds."""
        return self._params.advert_interval_cs / 100

    @property
    def master_adver_interval(self) -> float:
        """Master_Adver_Interval in seconds: for v3 the interval adopted from the Master's adverts
        (RFC 5798 §6.4.2), for v2 always the configured one (RFC 3768 has no adoption)."""
        return self._master_adver_interval_cs / 100

    @property
    def rfc(self) -> timers.Rfc:
        """The RFC whose timers this router follows (RFC 3768, RFC 5798 or RFC 9568)."""
        return timers.Rfc.of(self._params.version, self._params.rfc9568)

    @property
    def skew_time(self) -> float:
        """Skew_Time in seconds (§6.1): scaled by Master_Adver_Interval for v3 (RFC 5798), not
        for v2 (RFC 3768); see :func:`vrrp.timers.skew_time`."""
        return self._skew_time

    @property
    def master_down_interval(self) -> float:
        """Master_Down_Interval in seconds: 3 * Master_Adver_Interval + Skew_Time (§6.1).

        This is the RFC "theory" figure for detecting a silently dead Master.
        """
        return timers.master_down_interval(self._master_adver_interval_cs, self._skew_time)

    @property
    def adver_timer(self) -> float | None:
        """When Adver_Timer fires (MASTER only), or None."""
        return self._adver_timer

    @property
    def master_down_timer(self) -> float | None:
        """When Master_Down_Timer fires (BACKUP only), or None."""
        return self._master_down_timer

    @property
    def answers_arp(self) -> bool:
        """Whether this router answers ARP / ND Neighbor Solicitations for the VIPs.

        Only the Master does: §6.4.3 "MUST respond to ARP requests", §6.4.2 "MUST NOT respond".
        """
        return self._state is State.MASTER

    @property
    def accepts_vip_traffic(self) -> bool:
        """Whether packets addressed to the VIPs are accepted locally (§6.4.3, row A03).

        A Master accepts them if it is the address owner or Accept_Mode is on; a Backup never
        does (§6.4.2 "MUST NOT accept packets addressed to the IPvX address(es)").
        """
        return self._state is State.MASTER and (self.is_owner or self._params.accept_mode)

    def next_deadline(self) -> float | None:
        """The time at which :meth:`tick` must next be called, or None if no timer runs."""
        if self._state is State.MASTER:
            return self._adver_timer
        if self._state is State.BACKUP:
            return self._master_down_timer
        return None

    def __repr__(self) -> str:
        """Short form for logs and hypothesis failure reports."""
        return (
            f"StateMachine(vrid={self._params.vrid}, ip={self._params.primary_ip}, "
            f"prio={self._params.priority}, state={self._state}, deadline={self.next_deadline()})"
        )

    # ---- events -----------------------------------------------------------------------------

    def startup(self, now: float) -> list[Action]:
        """Startup event (§6.4.1). Ignored unless in INITIALIZE."""
        if self._state is not State.INITIALIZE:
            return []
        # Our own interval is the best guess of the Master's until an advert says otherwise.
        self._master_adver_interval_cs = self._params.advert_interval_cs
        self._skew_time = self._compute_skew_time()
        if self.is_owner:
            # §6.4.1: the owner does not wait to hear from anyone: it takes over at once (F01).
            return self._become_master(now, Reason.OWNER_STARTUP)
        # §6.4.1: "Set Master_Adver_Interval to Advertisement_Interval, set the
        # Master_Down_Timer to Master_Down_Interval, transition to Backup".
        self._state = State.BACKUP
        self._master_down_timer = now + self.master_down_interval
        self._preempt_hold_until = (
            now + self._params.preempt_delay if self._params.preempt_delay > 0 else None
        )
        return [BecomeBackup(Reason.STARTUP)]

    def shutdown(self, now: float) -> list[Action]:
        """Shutdown event (§6.4.2, §6.4.3). Ignored in INITIALIZE.

        A Master sends priority 0 so Backups take over after Skew_Time rather than
        Master_Down_Interval (row F02), and withdraws the VIPs.
        """
        del now  # Shutdown cancels timers; the time does not matter.
        if self._state is State.INITIALIZE:
            return []
        actions: list[Action] = []
        if self._state is State.MASTER:
            # §6.4.3: "Cancel the Adver_Timer, Send an ADVERTISEMENT with Priority = 0".
            actions.append(SendAdvert(SHUTDOWN_PRIORITY, self._params.advert_interval_cs))
            actions.append(RemoveVips(self._params.vips))
        # §6.4.2: a Backup just cancels the Master_Down_Timer.
        self._state = State.INITIALIZE
        self._adver_timer = None
        self._master_down_timer = None
        self._preempt_hold_until = None
        actions.append(BecomeInitialize(Reason.SHUTDOWN))
        return actions

    def tick(self, now: float) -> list[Action]:
        """Fire whichever timer has expired by ``now``; a no-op when called early."""
        if (
            self._state is State.MASTER
            and self._adver_timer is not None
            and now >= self._adver_timer
        ):
            # §6.4.3: "Send an ADVERTISEMENT, Reset the Adver_Timer to Advertisement_Interval".
            # The reset counts from now, not from the missed deadline: after a stall (SIGSTOP)
            # one advert goes out, not a burst of catch-up adverts.
            self._adver_timer = now + self.advertisement_interval
            return [self._advert()]
        if (
            self._state is State.BACKUP
            and self._master_down_timer is not None
            and now >= self._master_down_timer
        ):
            # §6.4.2: Master_Down_Timer fired: take over.
            return self._become_master(now, Reason.MASTER_DOWN_TIMER)
        return []

    def master_down(self, now: float, reason: Reason = Reason.MASTER_DOWN) -> list[Action]:
        """The Master is known to be down: end the Master_Down_Timer at once, as if it fired.

        Not an RFC 5798 event: the driver calls it when something faster than adverts saw the
        current Master die (the VRRP-BFD drafts' "critical path" BFD session going Down, the
        bundled daemon's ``bfd_takeover``). A Backup then does what §6.4.2 says for the
        Master_Down_Timer firing (advert, VIPs, gratuitous ARPs / NAs, MASTER) without waiting
        for Master_Down_Interval; in any other state this is a no-op.
        """
        if self._state is not State.BACKUP:
            return []
        return self._become_master(now, reason)

    def hold_backup(self, now: float) -> list[Action]:
        """Stay Backup although the Master_Down_Timer has expired: start it again.

        Not an RFC 5798 event: keepalived's sync group holds a member whose timer expired in
        Backup until every other member can take over too (vrrp_sync.c
        ``vrrp_sync_can_goto_master``: "ms_down_timer = VRRP_MS_DOWN_TIMER"). A no-op unless
        Backup.
        """
        if self._state is State.BACKUP:
            self._master_down_timer = now + self.master_down_interval
        return []

    def step_down(self, now: float) -> list[Action]:
        """Leave Master for Backup because another member of the sync group did.

        Not an RFC 5798 event: keepalived's ``vrrp_sync_backup`` calls
        ``vrrp_state_leave_master``, which removes the VIPs and starts the Master_Down_Timer
        without a priority-0 advert (the router that made the group step down is a Master
        already). A no-op unless Master.
        """
        if self._state is not State.MASTER:
            return []
        self._state = State.BACKUP
        self._adver_timer = None
        self._master_down_timer = now + self.master_down_interval
        self._preempt_hold_until = None
        return [RemoveVips(self._params.vips), BecomeBackup(Reason.SYNC_GROUP)]

    def advert_received(
        self, now: float, priority: int, max_adver_int_cs: int, src_ip: str
    ) -> list[Action]:
        """An ADVERTISEMENT for our VRID arrived (already validated per §7.1 by the caller).

        Args:
            now: arrival time, seconds.
            priority: the advert's Priority field, 0..255.
            max_adver_int_cs: its interval in centiseconds (v2: Adver Int seconds * 100).
            src_ip: its IP source address (the sender's primary address).
        """
        if not 0 <= priority <= 255:
            raise ValueError(f"advert priority must be 0..255, got {priority}")
        discard = self._precheck(priority, max_adver_int_cs, src_ip)
        if discard is not None:
            return [DiscardAdvert(discard, src_ip, priority)]
        if self._state is State.BACKUP:
            return self._backup_advert(now, priority, max_adver_int_cs, src_ip)
        return self._master_advert(now, priority, max_adver_int_cs, src_ip)

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """Change our priority (tracking scripts, reloads); see :meth:`reconfigure`."""
        return self.reconfigure(now, dataclasses.replace(self._params, priority=priority))

    def reconfigure(self, now: float, params: Params) -> list[Action]:
        """Adopt new parameters without a restart (a keepalived-style reload).

        The VRID and version identify the virtual router and cannot change in place.
        Effects:
          - Skew_Time is recomputed (it depends on the priority, §6.1);
          - as Master, VIPs added or removed are installed/announced or withdrawn, and a change
            of priority or interval is advertised at once (and Adver_Timer restarted), so a
            Backup that now outranks us can preempt without waiting a full interval;
          - as Backup, the running Master_Down_Timer is left alone: the next advert resets it.
        """
        old = self._params
        if params.vrid != old.vrid or params.version != old.version:
            raise ValueError("vrid and version cannot change without a restart")
        self._params = params
        if self._state is State.INITIALIZE or not self.rfc.adopts_master_interval:
            # v2 never adopts, so its Master_Adver_Interval is always the configured one.
            self._master_adver_interval_cs = params.advert_interval_cs
        self._skew_time = self._compute_skew_time()
        if params.preempt_delay == 0:
            self._preempt_hold_until = None
        if self._state is not State.MASTER:
            return []
        actions: list[Action] = []
        removed = tuple(v for v in old.vips if v not in params.vips)
        added = tuple(v for v in params.vips if v not in old.vips)
        if removed:
            actions.append(RemoveVips(removed))
        if added:
            actions.append(AddVips(added))
            actions.append(SendGratuitous(added))
        if params.priority != old.priority or params.advert_interval_cs != old.advert_interval_cs:
            actions.append(self._advert())
            self._adver_timer = now + self.advertisement_interval
        return actions

    # ---- internals --------------------------------------------------------------------------

    def _compute_skew_time(self) -> float:
        """Skew_Time in seconds for the current priority and Master_Adver_Interval."""
        return timers.skew_time(self.rfc, self._params.priority, self._master_adver_interval_cs)

    def _advert(self) -> SendAdvert:
        """An advert with our current priority and our own interval."""
        return SendAdvert(self._params.priority, self._params.advert_interval_cs)

    def _precheck(self, priority: int, max_adver_int_cs: int, src_ip: str) -> DiscardReason | None:
        """The checks that precede §6.4 processing; the reason to discard, or None."""
        if self._state is State.INITIALIZE:
            return DiscardReason.NOT_RUNNING
        family, value = _ip_value(src_ip)
        own_family, own_value = _ip_value(self._params.primary_ip)
        if family != own_family:
            return DiscardReason.FAMILY_MISMATCH
        if value == own_value:
            return DiscardReason.OWN_ADVERT
        if self._params.version == 2:
            # RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as
            # the locally configured for this virtual router" (priority-0 adverts included:
            # validation comes before the state machine).
            if max_adver_int_cs != self._params.advert_interval_cs:
                return DiscardReason.INTERVAL_MISMATCH
        elif max_adver_int_cs <= 0 and priority != SHUTDOWN_PRIORITY:
            # Adopting 0 would make a Backup declare the Master dead after Skew_Time alone.
            # A priority-0 advert adopts nothing, so its interval does not matter.
            return DiscardReason.ZERO_INTERVAL
        return None

    def _backup_advert(
        self, now: float, priority: int, max_adver_int_cs: int, src_ip: str
    ) -> list[Action]:
        """§6.4.2 "If an ADVERTISEMENT is received" in the Backup state."""
        if priority == SHUTDOWN_PRIORITY:
            # §6.4.2 (425)-(430): the Master is leaving: "Set the Master_Down_Timer to
            # Skew_Time", so the highest-priority Backup (smallest skew) takes over first.
            self._master_down_timer = now + self._skew_time
            return []
        mine = self._params.priority
        # §6.1 Preempt_Mode note: "the router that owns the IPvX address(es) associated with
        # the virtual router always preempts independent of the setting of this flag".
        preempt = self._params.preempt or self.is_owner
        if priority < mine and preempt and self._preempt_held(now):
            # keepalived preempt_delay: within the hold we behave as if preempt were off.
            preempt = False
        if not preempt or priority >= mine:
            # §6.4.2 (445)-(460): accept this Master: adopt its interval (v3 only) and restart
            # the Master_Down_Timer.
            if priority >= mine:
                # A Master we would not preempt anyway: a later lower-priority one restarts
                # the preempt_delay hold, as keepalived does ("after seeing a lower priority
                # master").
                self._preempt_hold_until = None
            if self.rfc.adopts_master_interval:
                self._master_adver_interval_cs = max_adver_int_cs
                if self.rfc.recomputes_skew_on_adoption:
                    # RFC 9568 §6.4.2 adds "Recompute the Skew_Time" here; RFC 5798 (455)
                    # recomputes only Master_Down_Interval, keeping the old Skew_Time.
                    self._skew_time = self._compute_skew_time()
            self._master_down_timer = now + self.master_down_interval
            return []
        # §6.4.2 (465)-(470): preempting: let the Master_Down_Timer run out.
        return [DiscardAdvert(DiscardReason.LOWER_PRIORITY, src_ip, priority)]

    def _preempt_held(self, now: float) -> bool:
        """Whether keepalived's preempt_delay still holds preemption back at ``now``.

        The hold starts at startup, or when a lower-priority Master is first heard after a
        Master we accept; the owner is never held (it "always preempts", §6.1).
        """
        delay = self._params.preempt_delay
        if delay <= 0 or self.is_owner:
            return False
        if self._preempt_hold_until is None:
            self._preempt_hold_until = now + delay
        return now < self._preempt_hold_until

    def _master_advert(
        self, now: float, priority: int, max_adver_int_cs: int, src_ip: str
    ) -> list[Action]:
        """§6.4.3 "If an ADVERTISEMENT is received" in the Master state.

        Preempt_Mode plays no part here (§6.4.3 note): a Master always yields to a better one.
        """
        if priority == SHUTDOWN_PRIORITY:
            # §6.4.3 (705)-(715): another router is leaving: reassert at once so the Backups
            # do not take over after Skew_Time (row F03).
            self._adver_timer = now + self.advertisement_interval
            return [self._advert()]
        mine = self._params.priority
        if priority > mine:
            reason = Reason.HIGHER_PRIORITY
        elif priority == mine and _ip_value(src_ip)[1] > _ip_value(self._params.primary_ip)[1]:
            # §6.4.3 (735): equal priority, "the primary IPvX address of the sender is greater
            # than the local primary IPvX address" as unsigned integers (row F05).
            reason = Reason.EQUAL_PRIORITY_HIGHER_IP
        else:
            # §6.4.3 (770)-(775): we win: "Discard ADVERTISEMENT" (row F06).
            actions: list[Action] = [DiscardAdvert(DiscardReason.LOSING_ADVERT, src_ip, priority)]
            if self._params.rfc9568:
                # RFC 9568 §6.4.3 adds: "Send an ADVERTISEMENT immediately to assert the
                # {Active} state to the sending VRRP Router and to update any learning bridges
                # with the correct Active VRRP Router path." It does not say to reset the
                # Adver_Timer (unlike the priority-0 case), so the periodic schedule stands.
                actions.append(self._advert())
            return actions
        # §6.4.3 (740)-(765): cancel Adver_Timer, adopt the interval, recompute Skew_Time and
        # Master_Down_Interval, set Master_Down_Timer, go Backup. RFC 3768 §6.4.3 only sets the
        # Master_Down_Timer: v2 has no interval to adopt.
        if self.rfc.adopts_master_interval:
            self._master_adver_interval_cs = max_adver_int_cs
        self._skew_time = self._compute_skew_time()
        self._state = State.BACKUP
        self._adver_timer = None
        self._master_down_timer = now + self.master_down_interval
        self._preempt_hold_until = None
        return [RemoveVips(self._params.vips), BecomeBackup(reason)]

    def _become_master(self, now: float, reason: Reason) -> list[Action]:
        """The common tail of §6.4.1 (owner) and §6.4.2 (Master_Down_Timer fired)."""
        self._state = State.MASTER
        self._master_down_timer = None
        self._preempt_hold_until = None
        # "Set the Adver_Timer to Advertisement_Interval".
        self._adver_timer = now + self.advertisement_interval
        vips = self._params.vips
        # RFC order: send an ADVERTISEMENT, then the gratuitous ARPs / unsolicited NAs. The VIPs
        # go in between so the router answers for them by the time anyone reacts to the GARP.
        return [self._advert(), AddVips(vips), SendGratuitous(vips), BecomeMaster(reason)]
