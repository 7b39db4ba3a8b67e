"""One ``vrrp_instance`` at run time: the record the daemon keeps for it (:class:`Instance`),
the parameters its state machine is built with (:func:`params_for`), and the start phases
that keep instances sharing an advert interval from advertising in bursts
(:func:`spread_phases`).

Pure bookkeeping: nothing here opens a socket or reads the clock, except the record's
``since`` default (the wall-clock time the status reports).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vrrp.netio import RxSocket, TxSocket
from vrrp.packet import VRRP_GROUP_V4, VRRP_GROUP_V6, Counters, IPAddress
from vrrp.spec import InstanceSpec, Rfc9568, VipSpec
from vrrp.state import Params, StateMachine

__all__ = ["Instance", "params_for", "spread_phases"]


def params_for(spec: InstanceSpec, primary_ip: IPAddress, priority: int | None = None) -> Params:
    """The state machine's parameters for ``spec`` with the resolved primary address.

    ``priority`` overrides the configured one (``track_interface`` weights).
    """
    return Params(
        vrid=spec.vrid,
        priority=spec.priority if priority is None else priority,
        primary_ip=str(primary_ip),
        vips=tuple(str(v.address.ip) for v in spec.vips),
        advert_interval_cs=spec.advert_int_cs,
        preempt=spec.preempt,
        preempt_delay=spec.preempt_delay,
        accept_mode=spec.accept,
        version=spec.version,
        rfc9568=Rfc9568.BEHAVIOUR in spec.rfc9568,
    )


def spread_phases(instances: tuple[InstanceSpec, ...]) -> list[tuple[InstanceSpec, float]]:
    """Each instance with the start offset (seconds) that spreads its advert phase.

    Instances with the same advert interval that start together would also time out, take over
    and advertise together, forever: every period, one burst of N adverts, the last of which
    leaves a burst-length late. Python needs ~25 µs per advert, so 255 VRIDs would make a 6 ms
    burst, and preemption inside it would show as jitter. Starting the j-th of N such instances
    j·interval/N later (as if it had been started that much later: it still hears adverts from
    the first moment) puts every instance on its own phase of the period, so each timer wake-up
    sends one advert. The offsets are below one advert interval; a lone instance gets none.
    """
    groups: dict[int, list[InstanceSpec]] = {}
    for ispec in instances:
        groups.setdefault(ispec.advert_int_cs, []).append(ispec)
    offsets = {}
    for interval_cs, members in groups.items():
        for j, ispec in enumerate(members):
            offsets[ispec.name] = j * interval_cs / 100 / len(members)
    return [(ispec, offsets[ispec.name]) for ispec in instances]


@dataclass
class Instance:
    """The run-time side of one instance: its machine, sockets and bookkeeping."""

    spec: InstanceSpec
    machine: StateMachine
    primary_ip: IPAddress
    rx: RxSocket
    tx: TxSocket
    counters: Counters = field(default_factory=Counters)
    discards: dict[str, int] = field(default_factory=dict)
    checksum_forms: dict[str, int] = field(default_factory=dict)
    unicast_ttls: dict[int, int] = field(default_factory=dict)
    adverts_sent: int = 0
    send_errors: int = 0
    garps_sent: int = 0
    transitions: int = 0
    since: float = field(default_factory=time.time)
    last_master: str | None = None
    timer_gen: int = 0
    scheduled: float | None = None
    garp_gen: int = 0
    garp_next_repeat: int = 0
    """Messages per VIP in the GARP batch scheduled next (a second batch after becoming
    Master or hearing a losing advert, then refreshes)."""
    created_vmac: bool = False
    garp_mac: str | None = None
    fault: bool = False
    waiting: tuple[str, ...] = ()
    """The unweighted tracked scripts it waits on, not started, until each reports."""
    entering_fault: str = ""
    """While leaving for FAULT: why (for the log and the notify word); empty otherwise."""
    retired_vips: tuple[VipSpec, ...] = ()
    advert_cache: dict[tuple[int, int], list[tuple[bytes, IPAddress]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The ``vrrp_instance`` name."""
        return self.spec.name

    def destinations(self) -> tuple[IPAddress, ...]:
        """Where adverts go: each ``unicast_peer``, else the family's VRRP group."""
        if self.spec.peers:
            return self.spec.peers
        return (VRRP_GROUP_V4 if self.spec.family == 4 else VRRP_GROUP_V6,)
