"""The K rows without a lab: their row set, the matrix's title, the stand-ins that break them,
and how a driver that would run without a row's keyword refuses it (n/a, not a fail)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from lab.conformance import ROWS, parse_rows
from lab.conformance.cli import matrix_title
from lab.conformance.expected import TRACKER_COLUMNS, expectation
from lab.conformance.rows import BFD_ROWS, TRACKER_ROWS, VRRP_ROWS
from lab.errors import Unsupported
from lab.routers.base import Router
from lab.routers.frr import translate
from tests.conformance.mutant import FLAWS


def test_the_tracker_rows_are_a_set_of_their_own() -> None:
    assert [f"K0{i}" for i in range(1, 8)] == TRACKER_ROWS
    assert not set(TRACKER_ROWS) & (set(VRRP_ROWS) | set(BFD_ROWS))
    assert parse_rows(None) == VRRP_ROWS  # the default matrix stays RFC 5798's 22 rows
    assert parse_rows("trackers") == TRACKER_ROWS
    assert parse_rows("k03,trackers") == ["K03", *[r for r in TRACKER_ROWS if r != "K03"]]
    assert set(parse_rows("all")) == set(ROWS)
    assert all(ROWS[row].families == (4,) for row in TRACKER_ROWS)


def test_the_matrix_title_names_what_its_rows_check_against() -> None:
    assert matrix_title(VRRP_ROWS) == "Conformance: VRRP (RFC 5798 / 9568), IPv4 and IPv6"
    assert matrix_title(["K01", "K03"]) == "Conformance: trackers (keepalived.conf(5)), IPv4"
    assert matrix_title(["P01", "B01", "K01"]) == (
        "Conformance: VRRP (RFC 5798 / 9568), BFD (RFC 5880 / 5881), trackers "
        "(keepalived.conf(5)), IPv4 and IPv6"
    )


def test_every_tracker_row_has_a_mutant_and_an_expectation() -> None:
    assert sorted(row for row in FLAWS.values() if row) == TRACKER_ROWS
    for column in TRACKER_COLUMNS:
        for row in TRACKER_ROWS:
            want = expectation(column, row)
            # keepalived is the reference the bundled daemon follows; FRR has no trackers.
            assert want.outcome == ("n/a" if column == "frr" else "pass"), (column, row)


class _Ignoring(Router):
    """A driver whose daemon would run without some of its config's settings."""

    impl: ClassVar[str] = "ignoring"
    notes: tuple[str, ...] = ()

    def command(self) -> list[str]:  # pragma: no cover - never run
        return []

    @property
    def ignored(self) -> tuple[str, ...]:
        return self.notes


def _driver(*notes: str) -> Router:
    driver = _Ignoring.__new__(_Ignoring)  # no node: only require() is asked
    driver.notes = notes
    return driver


def test_a_driver_refuses_a_keyword_it_would_run_without() -> None:
    frr = translate(
        "vrrp_instance v { interface eth0\n virtual_router_id 1\n priority 100\n"
        " preempt_delay 1\n virtual_ipaddress { 192.0.2.100 }\n}\n"
    )
    assert any("preempt_delay" in note for note in frr.ignored)
    with pytest.raises(Unsupported, match="ignoring runs without v: preempt_delay"):
        _driver(*frr.ignored).require(("preempt_delay",))
    _driver(*frr.ignored).require(("notify",))  # not ignored: no refusal
    _driver().require(("preempt_delay", "notify"))  # a daemon that runs every setting
