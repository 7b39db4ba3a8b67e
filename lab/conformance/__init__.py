"""The VRRP conformance harness: the RFC rows (and BFD's B rows), checked against any router
driver.

Its map: docs/architecture.md#conformance.

``run_row(iut("keepalived"), "P01", pcap_dir)`` builds a bench (a lab with the IUT, a tester and
an observer, recorded to a pcap), runs the row's check and returns a :class:`Verdict`;
:func:`lab.conformance.cli.run_matrix` runs many. The rows are in :mod:`lab.conformance.rows`,
the checks in :mod:`lab.conformance.checks`, the expected verdicts in
:mod:`lab.conformance.expected`.
"""

from lab.conformance.bench import Iut, iut, iut_names
from lab.conformance.checks import CHECKS, run_row
from lab.conformance.rows import ROWS, Row, parse_rows
from lab.conformance.verdict import Verdict

__all__ = ["CHECKS", "ROWS", "Iut", "Row", "Verdict", "iut", "iut_names", "parse_rows", "run_row"]
