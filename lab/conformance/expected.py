"""The verdicts we expect, per implementation and row: passes, and known departures.

A keepalived or FRR fail is a finding about that implementation, not a broken harness: it is
recorded here with its reason (and explained in ``docs/conformance.md`` with the RFC section,
what the implementation does instead, and the source that confirms it), so that
``tests/conformance/test_rows.py`` stays green while the finding holds and goes red the day it
changes (a fix upstream, a regression, a new departure). ``contains`` is a phrase the verdict's
reason must carry, so a row that fails for a different reason is noticed too. Each address
family is pinned as well: a departure seen in one family only says so (``by_family``), so a
departure that spreads to the other family, or goes away in one, is noticed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lab.conformance.rows import ROWS
from lab.conformance.verdict import Outcome


@dataclasses.dataclass(frozen=True)
class Expectation:
    """The expected outcome of one cell, why, and a phrase its reason must contain."""

    outcome: Outcome
    reason: str = ""
    contains: str = ""
    by_family: Mapping[str, Outcome] | None = None
    """Each family's outcome (``{"IPv4": "fail", "IPv6": "pass"}``) where they differ; None:
    every family the row is asked in has :attr:`outcome`."""

    def families(self, row: str) -> dict[str, Outcome]:
        """The outcome expected in each address family ``row`` is asked in."""
        if self.by_family is not None:
            return dict(self.by_family)
        return {f"IPv{family}": self.outcome for family in ROWS[row].families}


PASS = Expectation("pass")
#: A departure seen on IPv6 only, and one seen on IPv4 only.
IPV6_ONLY: Mapping[str, Outcome] = {"IPv4": "pass", "IPv6": "fail"}
IPV4_ONLY: Mapping[str, Outcome] = {"IPv4": "fail", "IPv6": "pass"}

#: Departures, by column, then row. Every cell not listed is expected to pass.
DEPARTURES: dict[str, dict[str, Expectation]] = {
    "keepalived": {
        "P07": Expectation(
            "fail",
            "2.2.7 does not discard an advert with Max Adver Int 0: a backup adopts interval 0 "
            "and takes over one Skew_Time later (RFC 9568 §7.1 / erratum 8301 say discard)",
            contains="interval 0: acted on",
        ),
        "P08": Expectation(
            "fail",
            "without use_vmac (its default) adverts leave from the physical MAC (RFC 5798 §7.2 "
            "wants the VMAC); with use_vmac they leave from the VMAC",
            contains="default config: from the physical MAC",
        ),
        "F01": Expectation(
            "fail",
            "a priority-255 instance with `state BACKUP` waits Master_Down_Interval; only "
            "`state MASTER` makes it master at once (keepalived.conf(5), `state`)",
            contains="state BACKUP: first advert",
        ),
        "F06": Expectation(
            "fail",
            "a master answers a lower-priority advert with an advert at once unless "
            "lower_prio_no_advert is set (keepalived.conf(5): default false): RFC 9568 "
            "behaviour, not RFC 5798's discard",
            contains="answered the losing advert at once",
        ),
        "B01": Expectation(
            "fail",
            "IPv6: 2.2.7 sends BFD with hop limit 64 unless `hoplimit` is configured "
            "(BFD_CONTROL_HOPLIMIT, set in bfd_parser.c bfd_end_handler), and checks received "
            "packets against that 64 (bfd.c bfd_check_packet_ttl: hop limit + max_hops >= 64), "
            "so it accepts 254 too; RFC 5881 §5 wants 255 both ways. IPv4 uses 255",
            contains="IPv6: sent: hop limit 64",
            by_family=IPV6_ONLY,
        ),
        "U01": Expectation(
            "fail",
            "unicast adverts from any source are accepted unless check_unicast_src (or "
            "min_ttl/max_ttl) is configured (keepalived.conf(5)); on IPv6 its unicast adverts "
            "also leave with the kernel's default hop limit 64 unless unicast_ttl is set",
            contains="from a non-peer: accepted",
        ),
    },
    "bundled": {
        "P08": Expectation(
            "fail",
            "keepalived-compatible: without use_vmac adverts leave from the physical MAC "
            "(docs/vrrp-daemon.md); with use_vmac from the VMAC",
            contains="default config: from the physical MAC",
        ),
    },
    "bundled-9568": {
        "P08": Expectation(
            "fail",
            "keepalived-compatible: without use_vmac adverts leave from the physical MAC "
            "(docs/vrrp-daemon.md); with use_vmac from the VMAC",
            contains="default config: from the physical MAC",
        ),
    },
    "frr": {
        # At every Backup -> Master on IPv6, vrrpd logs "Failed to find address to bind on
        # vrrp6-…" and sends no advert: it looks for its source, the macvlan's link-local, in
        # zebra's view of the macvlan, which is still in protodown (no carrier) at that
        # instant, although the kernel keeps the address through protodown (measured). Its
        # next advert goes out one Adver_Interval later, so the wire sees the takeover that
        # late; its MASTER decision is on time (the discard rows judge it and pass).
        "T01": Expectation(
            "fail",
            "IPv6: the first advert as master is never sent (vrrpd finds no source address on "
            "its macvlan, still in protodown), so the takeover on the wire comes one "
            "Adver_Interval after Master_Down_Interval",
            contains="IPv6: took over after",
            by_family=IPV6_ONLY,
        ),
        "T02": Expectation(
            "fail",
            "IPv6: the first advert as master is lost (see T01), one Adver_Interval late",
            contains="IPv6: v3: took over after",
            by_family=IPV6_ONLY,
        ),
        "F02": Expectation(
            "fail",
            "IPv6: the first advert as master is lost (see T01): Skew_Time + Adver_Interval",
            contains="IPv6: took over",
            by_family=IPV6_ONLY,
        ),
        "P07": Expectation(
            "fail",
            "vrrpd's packet parser (vrrp_pkt_parse_datagram) has no interval-0 check: a backup "
            "adopts Max Adver Int 0 and takes over one Skew_Time later",
            contains="interval 0: acted on",
        ),
        "F01": Expectation(
            "n/a",
            "vrrpd 8.4 cannot be an address owner: priorities are 1..254 and ownership by "
            "address is disabled (vrrp_is_owner() returns false); the driver refuses 255",
            contains="priority 255",
        ),
        "A02": Expectation(
            "fail",
            "the backup's VIP stays on its protodown macvlan, and the parent interface (kernel "
            "default arp_ignore=0) answers ARP for it with its own MAC, backup and master alike; "
            "on IPv6 only the interface holding the target answers an NS, so the row passes",
            contains="backup answered ARP",
            by_family=IPV4_ONLY,
        ),
        "A03": Expectation(
            "fail",
            "vrrpd does not implement Accept_Mode (FRR docs, VRRP: 'VRRP does not implement "
            "Accept_Mode'); the VIPs always accept traffic",
            contains="no_accept: the master answered an echo",
        ),
        "U01": Expectation(
            "n/a",
            "vrrpd is multicast only; the driver refuses unicast_peer",
            contains="multicast only",
        ),
        # The B rows ask bfdd, FRR's BFD daemon, which the driver runs as a peer.
        "B09": Expectation(
            "fail",
            "bfdd 8.4.4 accepts a packet with the A bit set although no authentication is "
            "configured (RFC 5880 §6.8.6 says discard): bfd_recv_cb (bfdd/bfd_packet.c) checks "
            "version, Detect Mult, Length and My Discriminator, and BFD_ABIT is defined but "
            "never tested; the other malformed packets are discarded",
            contains="A bit without authentication: accepted",
        ),
        # The K rows ask about keepalived's trackers: vrrpd has no health checks (the driver
        # refuses track_script rather than run a config whose VIP would not move), and no
        # preempt_delay (the driver would run without it).
        **{
            row: Expectation(
                "n/a",
                "vrrpd has no health checks; the driver refuses track_script",
                contains="track_script: FRR vrrpd has no health checks",
            )
            for row in ("K01", "K02", "K03", "K05", "K07")
        },
        "K04": Expectation(
            "n/a",
            "vrrpd has no sync groups; the driver refuses vrrp_sync_group",
            contains="vrrp_sync_group",
        ),
        "K06": Expectation(
            "n/a",
            "vrrpd has no preempt_delay; the driver would run without it",
            contains="preempt_delay (FRR has no such setting)",
        ),
    },
}

#: The columns the test suite runs (each is skipped where its program is missing).
COLUMNS = list(DEPARTURES)
#: The columns the suite asks the BFD rows of: bundled-9568 runs the bundled daemon's BFD.
BFD_COLUMNS = ["keepalived", "bundled", "frr"]
#: The columns the suite asks the tracker rows of: bundled-9568's RFC 9568 switch changes
#: nothing a tracker does.
TRACKER_COLUMNS = ["keepalived", "bundled", "frr"]


def expectation(column: str, row: str) -> Expectation:
    """What ``column`` is expected to score on ``row``."""
    if row not in ROWS:
        raise KeyError(f"no row {row!r}")
    return DEPARTURES.get(column, {}).get(row, PASS)
