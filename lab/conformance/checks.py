"""One check per conformance row: set up the IUT on a bench, provoke, observe, judge.

Every check observes the IUT from outside only: the adverts, ARP, ND and ICMP it puts on the
wire (the bench's capture, kernel-stamped), and the states it reports on its notify FIFO. A
check is written once and asked in each address family its row applies to (IPv4, then IPv6 on
the same bench): the bench's VIPs, group, VMAC and crafted frames follow :attr:`Bench.family`.

This module runs a row (:func:`run_row`) and gathers the checks. :mod:`lab.conformance.registry`
holds the registry, :mod:`lab.conformance.procedures` the procedures the checks share (and the
windows and tolerances they derive from the configured timers), and the checks are grouped as
the rows are:

* :mod:`lab.conformance.checks_transmission`: P01, P03–P09;
* :mod:`lab.conformance.checks_timers`: T01–T03;
* :mod:`lab.conformance.checks_state_machine`: F01–F06;
* :mod:`lab.conformance.checks_arp_nd`: A01–A03;
* :mod:`lab.conformance.checks_unicast`: U01;
* :mod:`lab.conformance.checks_reception`: P02, the last VRRP row registered;
* :mod:`lab.conformance.checks_bfd`: B01–B09 (BFD, over :mod:`lab.conformance.bfd_bench`);
* :mod:`lab.conformance.checks_trackers`: K01–K07 (keepalived's trackers).
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.conformance.bench import Bench, Iut
from lab.conformance.registry import CHECKS, Check
from lab.conformance.rows import ROWS, Family
from lab.conformance.verdict import Findings, Verdict, combine

# Importing a check module registers its rows, and CHECKS keeps that order (users see it, and
# P02 has always come last), so these imports stay in registration order rather than sorted.
# isort: off
from lab.conformance import checks_transmission  # noqa: F401
from lab.conformance import checks_timers  # noqa: F401
from lab.conformance import checks_state_machine  # noqa: F401
from lab.conformance import checks_arp_nd  # noqa: F401
from lab.conformance import checks_unicast  # noqa: F401
from lab.conformance import checks_reception  # noqa: F401
from lab.conformance import checks_bfd  # noqa: F401
from lab.conformance import checks_trackers  # noqa: F401

# isort: on

__all__ = ["CHECKS", "Check", "run_row"]


def run_row(
    iut: Iut, row: str, pcap_dir: Path, families: tuple[Family, ...] | None = None
) -> Verdict:
    """Run the check of ``row`` against ``iut`` in a fresh bench, once per address family the
    row applies to (or of ``families``); the verdict it reaches.

    Nothing is raised (but Ctrl-C): the matrix always completes, and the other family still
    counts. A family whose configuration the driver cannot express
    (:class:`lab.errors.Unsupported`) is ``n/a`` with the driver's reason; any other exception,
    of a check or of the bench's bring-up or teardown, is the harness's own and makes the verdict
    ``error``, with its traceback in the evidence (:meth:`Findings.raised`,
    :meth:`Verdict.broke`). A fail already found stands, and the error is told beside it.
    """
    began = time.monotonic()
    parts: list[Findings] = []
    pcap = None
    try:
        with Bench(iut, row, pcap_dir) as bench:
            pcap = bench.pcap
            for family in families or ROWS[row].families:
                findings = Findings(family, bench.witness)
                parts.append(findings)
                try:
                    bench.use_family(family)
                    CHECKS[row](bench, findings)
                except Exception as exc:  # reported in the verdict (n/a or error), not raised
                    findings.raised(exc)
        verdict = combine(row, iut.name, parts)
        verdict.stalls.update(bench.witness.summary())
        verdict.stalls["stalls"] = [s.as_dict() for s in bench.witness.stalls()]
    except Exception as exc:  # the bench itself did not come up (or down)
        verdict = combine(row, iut.name, parts)
        verdict.broke(exc)
    verdict.pcap = pcap
    verdict.seconds = round(time.monotonic() - began, 2)
    return verdict


assert set(CHECKS) == set(ROWS), set(ROWS) ^ set(CHECKS)
