"""The conformance rows: stable ids, what each checks, where the RFC says so.

The harness as a whole: docs/architecture.md#conformance.

A row is a question about one rule of RFC 5798 (VRRPv3) or RFC 9568 (its update). The ids are
stable: reports, the expected-verdict table and ``docs/conformance.md`` all key on them.
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
    """Where RFC 5798 (or RFC 9568 where it differs) states the rule."""
    level: Level
    families: tuple[Family, ...] = (4, 6)
    """The address families the rule applies to; the check asks its question in each."""
    group: str = ""
    """UNH-IOL style group: transmission, reception, timers, state machine, ARP/ND, unicast."""


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
    )
}


def parse_rows(text: str | None) -> list[str]:
    """Row ids from ``P01,T01,...`` (None or empty: every row). Raises ValueError on an
    unknown id, naming the known ones."""
    if not text:
        return list(ROWS)
    wanted = [item.strip().upper() for item in text.split(",") if item.strip()]
    unknown = [row for row in wanted if row not in ROWS]
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}; known rows: {', '.join(ROWS)}")
    return wanted
