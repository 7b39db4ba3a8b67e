"""The conformance harness's own logic, without a lab: verdicts per family, the expected-verdict
table, the matrix's cells, the discard rows' timing judgement and the command line's bad-input
errors."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from lab.cli import main
from lab.conformance import ROWS, iut
from lab.conformance.cli import cell, run_matrix, summary
from lab.conformance.expected import COLUMNS, DEPARTURES, PASS, expectation
from lab.conformance.procedures import discard_timing
from lab.conformance.verdict import Findings, Verdict, combine
from lab.routers import Router, base


def _findings(family: int, *, ok: bool | None) -> Findings:
    """A family's findings that passed (True), failed (False) or could not be asked (None)."""
    found = Findings(family)
    if ok is None:
        found.na("control failed")
    else:
        found.check(ok, "held", "broke")
    found.measure("took (s)", 0.361)
    found.frame("first advert", 7)
    return found


def test_ipv6_findings_are_prefixed_so_both_families_share_a_verdict() -> None:
    verdict = combine("T01", "x", [_findings(4, ok=True), _findings(6, ok=True)])
    assert verdict.outcome == "pass"
    assert verdict.reason == "held; IPv6: held"
    assert verdict.evidence == {"took (s)": 0.361, "IPv6: took (s)": 0.361}
    assert verdict.frames == {"first advert": 7, "IPv6: first advert": 7}
    assert verdict.families == {"IPv4": "pass", "IPv6": "pass"}


def test_a_fail_in_one_family_fails_the_row_and_says_which() -> None:
    verdict = combine("T01", "x", [_findings(4, ok=True), _findings(6, ok=False)])
    assert verdict.outcome == "fail"
    assert verdict.reason == "IPv6: broke"
    assert verdict.families == {"IPv4": "pass", "IPv6": "fail"}


def test_a_family_that_could_not_be_asked_stays_visible_in_a_pass() -> None:
    verdict = combine("T01", "x", [_findings(4, ok=True), _findings(6, ok=None)])
    assert verdict.outcome == "pass"
    assert verdict.reason == "held; n/a: IPv6: control failed"
    assert verdict.families == {"IPv4": "pass", "IPv6": "n/a"}


def test_no_family_asked_is_na() -> None:
    verdict = combine("T01", "x", [_findings(4, ok=None), _findings(6, ok=None)])
    assert verdict.outcome == "n/a"
    assert verdict.reason == "control failed; IPv6: control failed"


def test_a_note_never_changes_the_outcome() -> None:
    found = _findings(4, ok=True)
    found.note("its default accepts traffic")
    assert found.verdict("A03", "x").reason == "held [its default accepts traffic]"
    assert found.verdict("A03", "x").outcome == "pass"


def test_the_matrix_cell_shows_each_family_where_they_differ() -> None:
    both = Verdict("A02", "frr", "fail", "", families={"IPv4": "fail", "IPv6": "fail"})
    split = Verdict("A02", "frr", "fail", "", families={"IPv4": "fail", "IPv6": "pass"})
    assert "v4" not in cell(both)
    assert cell(split).endswith("(v4 [bold red]FAIL[/], v6 pass)")


def test_summary_counts_and_names_the_failed_must_rows() -> None:
    verdicts = [
        Verdict("P01", "k", "pass", "", seconds=2.0),
        Verdict("P07", "k", "fail", "", seconds=3.0),
        Verdict("U01", "k", "fail", "", seconds=1.0),
        Verdict("F01", "k", "n/a", "", seconds=0.5),
    ]
    assert summary(verdicts, "k") == (
        "k: 1 pass, 2 fail, 1 n/a of 4 rows in 6s; MUST rows failed: P07; SHOULD rows failed: U01"
    )


def test_every_departure_names_a_row_a_reason_and_a_phrase() -> None:
    for column, rows in DEPARTURES.items():
        for row, want in rows.items():
            assert row in ROWS, (column, row)
            assert want.outcome != "pass" and want.reason and want.contains, (column, row)
            families = want.families(row)
            assert set(families) == {f"IPv{f}" for f in ROWS[row].families}, (column, row)
            # The row's outcome is what its families combine to.
            outcomes = set(families.values())
            combined = "fail" if "fail" in outcomes else "pass" if "pass" in outcomes else "n/a"
            assert combined == want.outcome, (column, row, families)


def test_unlisted_cells_are_expected_to_pass_in_every_family() -> None:
    assert expectation("bundled", "T01") is PASS
    assert PASS.families("T01") == {"IPv4": "pass", "IPv6": "pass"}
    assert expectation("frr", "A02").families("A02") == {"IPv4": "fail", "IPv6": "pass"}
    assert set(COLUMNS) == {"keepalived", "bundled", "bundled-9568", "frr"}
    with pytest.raises(KeyError):
        expectation("bundled", "Z99")


class _AbsentRouter(Router):
    """A driver whose program is not installed: its column is n/a without running a lab."""

    impl: ClassVar[str] = "absent-for-tests"
    program: ClassVar[str] = "/nonexistent/vrrp-lab-absent"
    install_hint: ClassVar[str] = "apt-get install nothing"

    def command(self) -> list[str]:
        return [self.program]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_missing_program_makes_its_column_na_in_row_order(
    jobs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered for this test only: other tests list the known drivers.
    monkeypatch.setitem(base._DRIVERS, _AbsentRouter.impl, _AbsentRouter)
    heard: list[str] = []
    verdicts = run_matrix(
        [iut("absent-for-tests")],
        ["T01", "P01"],
        tmp_path,
        progress=lambda v: heard.append(v.row),
        jobs=jobs,
    )
    assert [(v.row, v.outcome) for v in verdicts] == [("T01", "n/a"), ("P01", "n/a")]
    assert "/nonexistent/vrrp-lab-absent is not installed (apt-get install nothing)" in (
        verdicts[0].reason
    )
    assert sorted(heard) == ["P01", "T01"]


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--rows", "P01,X99"], "--rows: unknown row(s) X99; known rows: P01"),
        (["--impl", "nosuch"], "no router implementation 'nosuch'; known:"),
        (["--impl", "keepalived-9568"], "implementation 'keepalived' has no RFC 9568 mode"),
        (["--jobs", "0"], "'0' is not a whole number of at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conformance", *argv]) == 2
    err = capsys.readouterr().err
    assert complaint in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


# The bench's figures: Adv 0.1 s, priority 100 (Master_Down_Interval 0.3609 s), tolerance 20 ms,
# the tester's first broken advert one Adv after its last valid one, carrying the same interval.
_DOWN, _TOL, _FIRST_BAD = 0.3609, 0.020, 0.1


@pytest.mark.parametrize(
    ("took", "want"),
    [
        (_DOWN, "on time"),
        (_DOWN - _TOL, "on time"),
        (_DOWN + _TOL, "on time"),
        # Sooner: it took something from the broken adverts (an interval 0, say).
        (_DOWN - _TOL - 0.001, "acted on"),
        (_FIRST_BAD, "acted on"),
        # Late, but before any broken advert could have restarted its timer: its own lateness.
        (_DOWN + 0.033, "late"),
        # A Master_Down_Interval after a broken advert: it restarted its timer on one.
        (_FIRST_BAD + _DOWN - _TOL, "acted on"),
        (_FIRST_BAD + _DOWN, "acted on"),
        (3 * _FIRST_BAD + _DOWN, "acted on"),
    ],
)
def test_a_discard_is_judged_by_when_the_backup_took_over(took: float, want: str) -> None:
    assert (
        discard_timing(took, down=_DOWN, tol=_TOL, first_bad=_FIRST_BAD, restart_down=_DOWN) == want
    )


def test_a_broken_interval_0_leaves_no_room_for_lateness() -> None:
    """An advert with interval 0 could restart the timer to fire at once, so any takeover later
    than the tolerance may be its doing."""
    assert discard_timing(_DOWN + 0.021, down=_DOWN, tol=_TOL, first_bad=0.1, restart_down=0) == (
        "acted on"
    )


def test_a_row_whose_check_asks_for_rfc_9568_is_one_the_suite_asks_the_9568_column() -> None:
    # ``make test`` asks bundled-9568 only the rows marked rfc9568 (tests/conformance/
    # test_rows.py): a check that behaves differently in RFC 9568 mode must be among them.
    import inspect

    from lab.conformance.registry import CHECKS

    branches = {row for row, check in CHECKS.items() if "rfc9568" in inspect.getsource(check)}
    marked = {row.id for row in ROWS.values() if row.rfc9568}
    assert branches and branches <= marked, branches - marked
    assert not any(ROWS[row].bfd for row in marked)
