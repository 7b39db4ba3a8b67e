"""The conformance rows: stable ids, what each checks, where the RFC says so.

The harness as a whole: docs/architecture.md#conformance.

A row is a question about one rule of RFC 5798 (VRRPv3) or RFC 9568 (its update), or, for the
B rows, of BFD: RFC 5880 (asynchronous mode) over RFC 5881 (single hop). The ids are stable:
reports, the expected-verdict table and ``docs/conformance.md`` all key on them.

``vrrp-lab conformance`` without ``--rows`` runs the VRRP rows (:data:`VRRP_ROWS`); the B rows
run when asked for (``--rows bfd``, ``--rows B01,B05``, or ``--rows all``): they need an
implementation built with BFD, and keep the default matrix's run time as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD"]
Family = Literal[4, 6]


@dataclass(frozen=True)
class Row:
    """One row of the matrix."""

    id: str
    title: str
    section: str
    """Where RFC 5798 (or RFC 9568 where it differs) states the rule; for a K row, where
    ``keepalived.conf(5)`` documents the keyword (no RFC covers trackers)."""
    level: Level
    families: tuple[Family, ...] = (4, 6)
    """The address families the rule applies to; the check asks its question in each."""
    group: str = ""
    """UNH-IOL style group: transmission, reception, timers, state machine, ARP/ND, unicast;
    BFD for the B rows; trackers for the K rows."""
    rfc9568: bool = False
    """Whether RFC 9568 changes what the check measures: the checksum's form, Skew_Time under
    a master whose interval differs from the IUT's own, the answer to a losing advert. On the
    other rows an RFC 9568 mode runs the code RFC 5798's does, to the same figures."""

    @property
    def bfd(self) -> bool:
        """Whether the row asks about BFD (RFC 5880/5881) rather than VRRP."""
        return self.group == "BFD"

    @property
    def tracker(self) -> bool:
        """Whether the row asks about keepalived's trackers (a K row) rather than an RFC."""
        return self.group == "trackers"


ROWS: dict[str, Row] = {
    row.id: row
    for row in (
        Row(
            "P01",
            "TTL / hop limit 255 on transmit",
            "5798 §5.1.1.3, §5.1.2.3",
            "MUST",
            group="transmission",
        ),
        Row("P02", "advert with TTL != 255 discarded", "5798 §7.1", "MUST", group="reception"),
        Row(
            "P03",
            "destination 224.0.0.18 / ff02::12, protocol 112",
            "5798 §5.1.1.2, §5.1.1.4",
            "MUST",
            group="transmission",
        ),
        Row(
            "P04",
            "version 3, type 1, reserved 0; unknown type, version or VRID discarded",
            "5798 §5.2.1, §5.2.2, §7.1",
            "MUST",
            group="reception",
        ),
        Row(
            "P05",
            "checksum valid (5798: with IPv4 pseudo-header; 9568: without); bad discarded",
            "5798 §5.2.8 / 9568 §5.2.8, §7.1",
            "MUST",
            group="reception",
            rfc9568=True,
        ),
        Row(
            "P06",
            "truncated packet or address-count mismatch discarded",
            "5798 §7.1",
            "MUST",
            group="reception",
        ),
        Row(
            "P07",
            "Max Adver Int matches configuration; interval 0 rejected",
            "5798 §5.2.7 / 9568 §7.1",
            "MUST",
            group="transmission",
            rfc9568=True,
        ),
        Row(
            "P08",
            "source MAC is the VMAC 00-00-5E-00-01-{VRID} (02 for IPv6)",
            "5798 §7.2, §7.3",
            "MUST",
            group="transmission",
        ),
        Row(
            "P09",
            "source IP is the primary address (IPv6: link-local)",
            "5798 §5.1.1.1, §5.1.2.1",
            "MUST",
            group="transmission",
        ),
        Row(
            "T01",
            "Master_Down_Interval = 3·Adv + Skew_Time",
            "5798 §6.1, §6.4.2",
            "MUST",
            group="timers",
        ),
        Row(
            "T02",
            "backup adopts the master's interval (v3) / v2 discards a mismatch",
            "5798 §6.4.2 / 3768 §7.1",
            "MUST",
            group="timers",
            rfc9568=True,
        ),
        Row("T03", "advert period and jitter", "5798 §6.4.3", "SHOULD", group="timers"),
        Row(
            "F01",
            "owner (priority 255) goes master at once",
            "5798 §6.4.1",
            "MUST",
            group="state machine",
        ),
        Row(
            "F02",
            "priority 0 on shutdown; backup takes over after Skew_Time",
            "5798 §6.4.2, §6.4.3",
            "MUST",
            group="state machine",
        ),
        Row(
            "F03",
            "master answers a priority-0 advert at once",
            "5798 §6.4.3",
            "MUST",
            group="state machine",
        ),
        Row(
            "F04",
            "preempt on: a higher-priority backup takes over; off: it stays backup",
            "5798 §6.4.2",
            "MUST",
            group="state machine",
        ),
        Row(
            "F05",
            "equal priority: higher primary IP wins",
            "5798 §6.4.3",
            "MUST",
            group="state machine",
        ),
        Row(
            "F06",
            "losing advert discarded (5798) or answered at once (9568)",
            "5798 §6.4.3 / 9568 §6.4.3",
            "MUST",
            group="state machine",
            rfc9568=True,
        ),
        Row(
            "A01",
            "GARP / unsolicited NA per VIP with sender hardware address = VMAC",
            "5798 §6.4.1, §8.1.2",
            "MUST",
            group="ARP/ND",
        ),
        Row(
            "A02",
            "backup silent to ARP/NS for the VIPs; master answers with the VMAC",
            "5798 §6.4.2, §6.4.3, §8.1.2",
            "MUST",
            group="ARP/ND",
        ),
        Row(
            "A03",
            "Accept_Mode False: a non-owner master drops traffic to the VIPs",
            "5798 §6.1, §6.4.3",
            "MUST",
            group="ARP/ND",
        ),
        Row(
            "U01",
            "unicast: TTL 255, source in the peer list, multicast ignored",
            "9568 §6.4 (unicast is outside 5798; keepalived's unicast_peer)",
            "SHOULD",
            group="unicast",
        ),
        Row(
            "K01",
            "check of weight 0 failing: FAULT at the failing run, no advert after it",
            "keepalived.conf(5) vrrp_script weight",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K02",
            "negative weight lowers the advertised priority (clamped to 1); the peer takes over",
            "keepalived.conf(5) vrrp_script weight",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K03",
            "fall failing runs in a row to fail, rise succeeding runs to recover",
            "keepalived.conf(5) vrrp_script rise, fall",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K04",
            "sync group members transition together, and a held member stays backup",
            "keepalived.conf(5) vrrp_sync_group",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K05",
            "nopreempt holds after a FAULT too; a resigning master is still replaced",
            "keepalived.conf(5) nopreempt",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K06",
            "preempt_delay: no takeover from a lower-priority master before the delay",
            "keepalived.conf(5) preempt_delay",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "K07",
            "notify scripts run once per transition, in order",
            "keepalived.conf(5) notify_master, notify_backup, notify_fault, notify_stop",
            "MUST",
            families=(4,),
            group="trackers",
        ),
        Row(
            "B01", "TTL / hop limit 255 sent; 254 discarded (GTSM)", "5881 §5", "MUST", group="BFD"
        ),
        Row(
            "B02",
            "three-way handshake Down → Init → Up",
            "5880 §6.2, §6.8.6",
            "MUST",
            group="BFD",
        ),
        Row(
            "B03",
            "transmit interval = max(local Desired Min TX, remote Required Min RX), both ways",
            "5880 §6.8.2, §6.8.7",
            "MUST",
            group="BFD",
        ),
        Row(
            "B04",
            "Poll/Final: the change coming Up polled; a Poll answered by a Final at once",
            "5880 §6.5, §6.8.3, §6.8.7",
            "MUST",
            group="BFD",
        ),
        Row(
            "B05",
            "Detection Time = remote Detect Mult × agreed interval; Down with diagnostic 1",
            "5880 §6.8.4",
            "MUST",
            group="BFD",
        ),
        Row("B06", "slow rate (≥ 1 s) until Up", "5880 §6.8.3", "MUST", group="BFD"),
        Row(
            "B07",
            "remote AdminDown: Down with diagnostic 3, not a detection failure",
            "5880 §6.8.6, §6.8.16",
            "MUST",
            group="BFD",
        ),
        Row(
            "B08",
            "demultiplexing: a packet with an unknown Your Discriminator discarded",
            "5880 §6.8.6",
            "MUST",
            group="BFD",
        ),
        Row(
            "B09",
            "malformed packets discarded: version, Length, Detect Mult 0, My Discriminator 0, "
            "A bit without authentication",
            "5880 §6.8.6",
            "MUST",
            group="BFD",
        ),
    )
}
#: The VRRP rows of RFC 5798 / 9568: the default matrix.
VRRP_ROWS = [row for row, spec in ROWS.items() if not spec.bfd and not spec.tracker]
#: The BFD rows (RFC 5880/5881).
BFD_ROWS = [row for row, spec in ROWS.items() if spec.bfd]
#: The tracker rows (keepalived's health checks, preemption knobs, notify scripts).
TRACKER_ROWS = [row for row, spec in ROWS.items() if spec.tracker]
#: Words ``--rows`` takes for a set of rows.
ROW_SETS = {"vrrp": VRRP_ROWS, "bfd": BFD_ROWS, "trackers": TRACKER_ROWS, "all": list(ROWS)}


def parse_rows(text: str | None) -> list[str]:
    """Row ids from ``P01,T01,...``, where ``vrrp``, ``bfd`` and ``all`` stand for those sets
    (None or empty: the VRRP rows). Raises ValueError on an unknown id, naming the known ones."""
    if not text:
        return list(VRRP_ROWS)
    wanted: list[str] = []
    for item in (item.strip() for item in text.split(",")):
        if item.lower() in ROW_SETS:
            wanted += ROW_SETS[item.lower()]
        elif item:
            wanted.append(item.upper())
    unknown = [row for row in wanted if row not in ROWS]
    if unknown:
        raise ValueError(
            f"unknown row(s) {', '.join(unknown)}; known rows: {', '.join(ROWS)} "
            f"(or {', '.join(ROW_SETS)})"
        )
    return list(dict.fromkeys(wanted))
