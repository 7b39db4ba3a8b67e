"""The four outcomes of a conformance cell, without a lab: only the driver's unsupported-config
error is n/a; anything else a check or the bench raises is the harness's ``error``, with its
traceback in the evidence, and it is counted, printed and exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from lab.cli import main
from lab.conformance import checks
from lab.conformance import cli as conformance_cli
from lab.conformance.bench import Bench, Iut
from lab.conformance.cli import CELL, EXIT_HARNESS_ERROR, cell, exit_code, summary
from lab.conformance.verdict import (
    TRACEBACK_KEY,
    Findings,
    HarnessError,
    Verdict,
    classify,
    combine,
)
from lab.errors import Unsupported, UsageError
from lab.routers.frr import OWNER_REFUSAL, UnsupportedConfig
from lab.stalls import Stall, StallWitness

TOL = 0.020


def _raised(exc: Exception) -> Exception:
    """``exc`` as raised (with a traceback), as a check's exception reaches the harness."""
    try:
        raise exc
    except Exception as caught:
        return caught


def _broken_check(family: int, exc: Exception) -> Findings:
    found = Findings(family)
    found.raised(_raised(exc))
    return found


def _passed(family: int) -> Findings:
    found = Findings(family)
    found.check(True, "held", "broke")
    return found


# --- the classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "want"),
    [
        (UnsupportedConfig(f"vrrp_instance vrrp_1: {OWNER_REFUSAL}"), "n/a"),
        (Unsupported("a driver cannot express this"), "n/a"),
        # The harness's own usage errors (an unknown node, a bad fault) are bugs of a check.
        (UsageError("no router runs in 'iut'"), "error"),
        (RuntimeError("boom"), "error"),
        (ValueError("priority: 0 is outside 1..255"), "error"),
        (KeyError("P99"), "error"),
    ],
)
def test_only_the_drivers_unsupported_error_is_na(exc: Exception, want: str) -> None:
    assert classify(exc) == want


def test_frrs_refusal_is_the_drivers_unsupported_error() -> None:
    assert issubclass(UnsupportedConfig, Unsupported)
    assert issubclass(Unsupported, UsageError)  # `vrrp-lab up` still exits 2 on it


def test_a_check_that_raises_is_an_error_with_its_traceback_not_na() -> None:
    found = _broken_check(6, RuntimeError("boom"))
    assert found.outcome == "error"
    assert found.unusable is None
    assert found.errors == ["IPv6: check raised RuntimeError: boom"]
    trace = found.evidence[f"IPv6: {TRACEBACK_KEY}"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "in _raised" in trace and trace.rstrip().endswith("RuntimeError: boom")


def test_a_harness_usage_error_is_an_error_too() -> None:
    found = _broken_check(4, UsageError("no single port matches 'eth9'"))
    assert found.outcome == "error"
    assert found.errors == ["check raised UsageError: no single port matches 'eth9'"]


def test_the_drivers_unsupported_error_is_still_na_with_its_reason() -> None:
    found = _broken_check(4, UnsupportedConfig("unicast_peer: FRR vrrpd is multicast only"))
    assert found.outcome == "n/a"
    assert found.errors == [] and TRACEBACK_KEY not in found.evidence
    verdict = found.verdict("U01", "frr")
    assert verdict.outcome == "n/a"
    assert verdict.reason == (
        "cannot be configured for this row: unicast_peer: FRR vrrpd is multicast only"
    )
    verdict.raise_if_error()  # n/a is no harness error


# --- combining the families ---------------------------------------------------------------


def test_an_error_in_one_family_makes_the_row_an_error() -> None:
    verdict = combine("T01", "x", [_passed(4), _broken_check(6, RuntimeError("boom"))])
    assert verdict.outcome == "error"
    assert verdict.reason == "IPv6: check raised RuntimeError: boom"
    assert verdict.families == {"IPv4": "pass", "IPv6": "error"}
    assert list(verdict.tracebacks) == [f"IPv6: {TRACEBACK_KEY}"]
    assert verdict.as_dict()["evidence"][f"IPv6: {TRACEBACK_KEY}"].startswith("Traceback")


def test_an_error_beside_an_na_family_is_an_error_and_tells_the_na() -> None:
    unusable = Findings(4)
    unusable.na("control failed")
    verdict = combine("P02", "x", [unusable, _broken_check(6, KeyError("x"))])
    assert verdict.outcome == "error"
    assert verdict.reason == "IPv6: check raised KeyError: 'x'; n/a: control failed"


def test_a_fail_already_found_stands_and_the_error_is_told() -> None:
    found = Findings(4)
    found.check(False, "", "TTL 254")
    found.raised(_raised(RuntimeError("boom")))  # a later case of the same family broke
    assert found.outcome == "fail"
    verdict = combine("P01", "x", [found, _broken_check(6, RuntimeError("bang"))])
    assert verdict.outcome == "fail"
    assert verdict.families == {"IPv4": "fail", "IPv6": "error"}
    assert verdict.reason == (
        "TTL 254; error: check raised RuntimeError: boom; "
        "error: IPv6: check raised RuntimeError: bang"
    )
    assert set(verdict.tracebacks) == {TRACEBACK_KEY, f"IPv6: {TRACEBACK_KEY}"}
    verdict.raise_if_error()  # the finding stands: a fail is compared, not raised


def test_an_error_outranks_a_stall_and_tells_it() -> None:
    witness = StallWitness(host=False)  # not started: it holds only what it is given
    witness.add(Stall(100.1, 100.2, "cpu1"))
    spoiled = Findings(4, witness)
    spoiled.timing(True, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01")
    assert spoiled.outcome == "inconclusive"
    verdict = combine("T01", "x", [spoiled, _broken_check(6, RuntimeError("boom"))])
    assert verdict.outcome == "error"
    assert verdict.reason.startswith("IPv6: check raised RuntimeError: boom; inconclusive: T01")
    with pytest.raises(HarnessError, match="boom"):
        verdict.raise_if_error()


def test_without_an_error_inconclusive_is_as_before() -> None:
    witness = StallWitness(host=False)
    witness.add(Stall(100.1, 100.2, "cpu1"))
    spoiled = Findings(6, witness)
    spoiled.timing(False, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01")
    verdict = combine("T01", "x", [_passed(4), spoiled])
    assert verdict.outcome == "inconclusive"
    assert verdict.families == {"IPv4": "pass", "IPv6": "inconclusive"}
    verdict.raise_if_error()


def test_raise_if_error_carries_every_traceback() -> None:
    verdict = _broken_check(4, RuntimeError("boom")).verdict("P01", "bundled")
    with pytest.raises(HarnessError) as caught:
        verdict.raise_if_error()
    text = str(caught.value)
    assert text.startswith("P01 bundled: error (check raised RuntimeError: boom)")
    assert f"--- {TRACEBACK_KEY} ---\nTraceback (most recent call last):" in text


# --- the bench breaking -----------------------------------------------------------------------


def test_a_bench_that_broke_after_a_pass_is_an_error() -> None:
    verdict = combine("P01", "x", [_passed(4), _passed(6)])
    verdict.broke(_raised(RuntimeError("teardown failed")))
    assert verdict.outcome == "error"
    assert verdict.reason == "bench could not run: teardown failed"
    assert verdict.tracebacks["bench: traceback"].rstrip().endswith("teardown failed")
    assert verdict.families == {"IPv4": "pass", "IPv6": "pass"}


def test_a_bench_that_never_came_up_is_an_error() -> None:
    verdict = combine("P01", "x", [])
    verdict.broke(_raised(OSError("no such device")))
    assert (verdict.outcome, verdict.reason) == ("error", "bench could not run: no such device")


def test_a_fail_stands_when_the_bench_breaks_after_it() -> None:
    failed = Findings(4)
    failed.check(False, "", "TTL 254")
    verdict = combine("P01", "x", [failed])
    verdict.broke(_raised(RuntimeError("teardown failed")))
    assert verdict.outcome == "fail"
    assert verdict.reason == "TTL 254 [error: bench could not run: teardown failed]"
    assert "bench: traceback" in verdict.tracebacks


def test_a_check_error_and_a_bench_error_are_both_told() -> None:
    verdict = combine("P01", "x", [_broken_check(4, RuntimeError("boom"))])
    verdict.broke(_raised(RuntimeError("teardown failed")))
    assert verdict.outcome == "error"
    assert verdict.reason == (
        "check raised RuntimeError: boom; bench could not run: teardown failed"
    )
    assert set(verdict.tracebacks) == {TRACEBACK_KEY, "bench: traceback"}


def test_a_drivers_unsupported_error_out_of_the_bench_is_still_na() -> None:
    verdict = combine("F01", "frr", [])
    verdict.broke(_raised(UnsupportedConfig("priority 255")))
    assert (verdict.outcome, verdict.reason) == ("n/a", "bench could not run: priority 255")
    assert verdict.tracebacks == {}


# --- run_row: the wiring, on a bench that starts no lab ---------------------------------------


class _PaperBench:
    """Stands in for :class:`Bench` (which builds namespaces): it holds a witness that was
    never started and poses each family's question to nobody."""

    def __init__(self, iut: Iut, row: str, pcap_dir: Path, broken: str | None = None) -> None:
        self.witness = StallWitness(host=False)
        self.pcap = str(pcap_dir / f"{iut.name}-{row}.pcapng")
        self.broken = broken

    def __enter__(self) -> _PaperBench:
        if self.broken == "up":
            raise OSError("the lab could not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.broken == "down":
            raise RuntimeError("the lab could not be torn down")

    def use_family(self, family: int) -> None:
        """Nothing to switch on paper."""


def _run(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    check: checks.Check,
    broken: str | None = None,
) -> Verdict:
    monkeypatch.setattr(checks, "Bench", lambda *a: _PaperBench(*a, broken=broken))
    monkeypatch.setitem(checks.CHECKS, "P01", check)
    return checks.run_row(Iut("paper", "bundled"), "P01", tmp_path)


def _check_that_raises(b: Bench, f: Findings) -> None:
    f.check(True, "a first case held", "")
    raise RuntimeError("a broken check")


def test_run_row_reports_a_check_that_raises_as_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    verdict = _run(monkeypatch, tmp_path, _check_that_raises)
    assert verdict.outcome == "error"
    assert verdict.families == {"IPv4": "error", "IPv6": "error"}
    assert verdict.reason == (
        "check raised RuntimeError: a broken check; IPv6: check raised RuntimeError: a broken check"
    )
    assert "in _check_that_raises" in verdict.tracebacks[TRACEBACK_KEY]
    assert verdict.pcap == str(tmp_path / "paper-P01.pcapng")


def test_run_row_keeps_the_drivers_refusal_na(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refused(b: Bench, f: Findings) -> None:
        raise UnsupportedConfig("vrrp_instance vrrp_1: priority 255: FRR cannot own")

    verdict = _run(monkeypatch, tmp_path, refused)
    assert verdict.outcome == "n/a"
    assert verdict.families == {"IPv4": "n/a", "IPv6": "n/a"}
    assert verdict.reason.startswith("cannot be configured for this row: vrrp_instance vrrp_1")


def test_run_row_reports_a_harness_usage_error_as_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def misused(b: Bench, f: Findings) -> None:
        raise UsageError("no router runs in 'iut'")

    assert _run(monkeypatch, tmp_path, misused).outcome == "error"


@pytest.mark.parametrize("broken", ["up", "down"])
def test_run_row_reports_a_broken_bench_as_error(
    broken: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    verdict = _run(monkeypatch, tmp_path, lambda b, f: f.check(True, "held", ""), broken)
    assert verdict.outcome == "error"
    assert verdict.reason.startswith("bench could not run: the lab could not")
    assert "bench: traceback" in verdict.tracebacks


# --- the report and the exit code ------------------------------------------------------------


def _error_verdict(row: str = "T01", iut: str = "k") -> Verdict:
    verdict = _broken_check(4, RuntimeError("boom")).verdict(row, iut)
    verdict.seconds = 1.0
    return verdict


def test_the_summary_counts_errors_and_names_their_rows() -> None:
    verdicts = [Verdict("P01", "k", "pass", "", seconds=2.0), _error_verdict()]
    assert summary(verdicts, "k") == (
        "k: 1 pass, 0 fail, 0 n/a, 1 error of 2 rows in 3s; the harness broke on: T01"
    )


def test_the_matrix_cell_shows_an_error() -> None:
    assert cell(_error_verdict()) == CELL["error"] == "[bold magenta]ERROR[/]"
    split = Verdict("T01", "k", "error", "", families={"IPv4": "pass", "IPv6": "error"})
    assert cell(split).endswith("(v4 pass, v6 [bold magenta]ERROR[/])")


def test_an_error_exits_non_zero_and_a_fail_does_not() -> None:
    fail = Verdict("P07", "k", "fail", "interval 0: acted on")
    assert (
        exit_code([fail, Verdict("U01", "k", "n/a", ""), Verdict("T01", "k", "inconclusive", "")])
        == 0
    )
    assert exit_code([fail, _error_verdict()]) == EXIT_HARNESS_ERROR == 1


def test_the_command_prints_the_traceback_writes_it_to_json_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def matrix(columns: Any, rows: Any, pcap_dir: Path, *a: Any, **kw: Any) -> list[Verdict]:
        return [Verdict("P01", "bundled", "pass", "held"), _error_verdict("T01", "bundled")]

    # Neither benches nor programs: the matrix is given, and no version is asked of anything.
    monkeypatch.setattr(conformance_cli, "run_matrix", matrix)
    monkeypatch.setattr(conformance_cli, "collect_versions", lambda: {"vrrp-lab": "test"})
    report = tmp_path / "conformance.json"
    argv = ["--impl", "bundled", "--rows", "P01,T01", "--pcap", str(tmp_path), "--json"]
    assert main(["conformance", *argv, str(report)]) == 1
    out = capsys.readouterr().out
    assert "T01 bundled: error: check raised RuntimeError: boom" in out
    assert "bundled: 1 pass, 0 fail, 0 n/a, 1 error of 2 rows in 1s; the harness broke on: T01" in (
        out
    )
    assert "Traceback (most recent call last):" in out and "RuntimeError: boom" in out
    data = json.loads(report.read_text())
    cells = {v["row"]: v for v in data["verdicts"]}
    assert cells["T01"]["outcome"] == "error"
    assert cells["T01"]["families"] == {"IPv4": "error"}
    assert cells["T01"]["evidence"][TRACEBACK_KEY].startswith("Traceback")
    with pytest.raises(HarnessError, match="boom"):
        Verdict(**cells["T01"]).raise_if_error()  # the JSON keeps what the test needs


def test_the_command_exits_0_on_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def matrix(columns: Any, rows: Any, pcap_dir: Path, *a: Any, **kw: Any) -> list[Verdict]:
        return [Verdict("P07", "bundled", "fail", "interval 0: acted on")]

    monkeypatch.setattr(conformance_cli, "run_matrix", matrix)
    monkeypatch.setattr(conformance_cli, "collect_versions", lambda: {"vrrp-lab": "test"})
    assert main(["conformance", "--impl", "bundled", "--rows", "P07", "--pcap", str(tmp_path)]) == 0
    assert "Traceback" not in capsys.readouterr().out
