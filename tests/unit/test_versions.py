"""`vrrp-lab --version` and the reports' ``versions``: parsing each program's real output."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from rich.console import Console

from lab.report import print_report
from lab.runner import RunReport
from lab.versions import (
    NOT_INSTALLED,
    collect,
    parse_frr,
    parse_keepalived,
    program_version,
    versions_line,
)

CAPTURED = Path(__file__).with_name("versions")


def test_keepalived_version_from_its_real_output() -> None:
    text = (CAPTURED / "keepalived-2.2.7.txt").read_text()
    assert parse_keepalived(text) == "2.2.7"


def test_keepalived_parse_ignores_other_versions_in_its_output() -> None:
    """Its banner also names the kernel headers' and the running kernel's versions."""
    text = (CAPTURED / "keepalived-2.2.7.txt").read_text()
    assert "Linux 5.19.11" in text
    assert parse_keepalived(text.replace("Keepalived v2.2.7", "Keepalived")) is None


def test_frr_version_from_vrrpd_and_from_vtysh() -> None:
    assert parse_frr((CAPTURED / "frr-vrrpd-8.4.4.txt").read_text()) == "8.4.4"
    assert parse_frr((CAPTURED / "frr-vtysh-8.4.4.txt").read_text()) == "8.4.4"


def test_frr_parse_is_none_on_text_without_a_version() -> None:
    assert parse_frr("vtysh: unrecognized option '--version'\n") is None


def test_absent_program_reads_not_installed() -> None:
    assert program_version([["vrrp-lab-no-such-program", "--version"]], parse_keepalived) == (
        NOT_INSTALLED
    )


def test_program_without_a_version_reads_unknown_with_its_first_line() -> None:
    argv = [sys.executable, "-c", "print('nothing to see')"]
    assert program_version([argv], parse_keepalived) == "unknown (nothing to see)"


def test_later_candidate_serves_when_the_first_is_absent() -> None:
    vrrpd = [sys.executable, "-c", "print('vrrpd version 9.1.2')"]
    found = program_version([["vrrp-lab-no-such-vrrpd", "--version"], vrrpd], parse_frr)
    assert found == "9.1.2"


def test_collect_names_every_component() -> None:
    versions = collect()
    assert list(versions) == ["vrrp-lab", "keepalived", "frr", "kernel", "python"]
    assert versions["vrrp-lab"] == metadata.version("vrrp-lab")
    assert versions["kernel"] == platform.release()
    assert versions["python"] == platform.python_version()


def test_cli_version_prints_every_component() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "lab", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    seen = dict(line.split(None, 1) for line in res.stdout.splitlines())
    assert seen == collect(), res.stdout


def test_run_report_carries_the_versions_in_json_and_text() -> None:
    report = RunReport("seed", "keepalived")
    assert report.as_json()["versions"] == collect()
    console = Console(record=True, width=200)
    print_report(report, console)
    assert f"versions: {versions_line(collect())}" in console.export_text()
