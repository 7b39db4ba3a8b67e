"""Allowed address pairs at run time: pair parsing, the state file, and ``port-set`` input."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import UsageError
from lab.sdn.cli import parse_allowed_address
from lab.sdn.ports import (
    change_pairs,
    initial_state,
    parse_pair,
    read_state,
    write_state,
)
from lab.sdn.ruleset import TABLE, Pair, PortSpec

PORT = PortSpec(
    id="913c4131-0cc3-4df4-9f7e-b4cf4ae885ca",
    instance="ha_first",
    network="ha_lab",
    tap="tap913c4131-0c",
    mac="fa:16:3e:8d:dc:bb",
    fixed_ips=("10.200.51.32",),
)
VMAC = "00:00:5e:00:01:01"


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("ip-address=10.200.51.10", Pair("10.200.51.10")),
        ("ip-address=10.200.51.10,mac-address=00-00-5E-00-01-01", Pair("10.200.51.10", VMAC)),
        ("mac-address=00:00:5e:00:01:01,ip-address=10.0.0.0/28", Pair("10.0.0.0/28", VMAC)),
        ("ip-address=10.0.0.5/28", Pair("10.0.0.0/28")),
        ("ip-address=2001:db8::1", Pair("2001:db8::1")),
    ],
)
def test_allowed_address_spelling(text: str, pair: Pair) -> None:
    assert parse_allowed_address(text) == pair


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.200.51.10", "expected ip-address=IP"),
        ("ip=10.200.51.10", "expected ip-address=IP"),
        ("mac-address=00:00:5e:00:01:01", "ip-address=IP is required"),
        ("ip-address=1,ip-address=2", "given twice"),
        ("ip-address=10.200.51.300", "neither an IP address nor a CIDR"),
        ("ip-address=10.0.0.1,mac-address=01:00:5e:00:00:12", "multicast MAC"),
    ],
)
def test_bad_allowed_address_is_a_usage_error(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_allowed_address(text)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "state.json"
    write_state(path, initial_state([(PORT, "strict-pair", "static", [])]))
    return path


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: list[str], stdin: str | None) -> None:
        self.calls.append((argv, stdin))


def test_set_and_unset_are_one_transaction_each(state: Path) -> None:
    run = Recorder()
    pairs = change_pairs(state, "ha_first", run, add=[parse_pair("10.200.51.10")])
    assert pairs == [Pair("10.200.51.10")]
    nft = [c for c in run.calls if c[0][0] == "nft"]
    assert nft == [
        (
            ["nft", "-f", "-"],
            f"add element bridge {TABLE} p913c41310cc3_p4 {{ fa:16:3e:8d:dc:bb . 10.200.51.10 }}\n",
        )
    ]
    run.calls.clear()
    change_pairs(state, "913c", run, add=[parse_pair("10.200.51.10", VMAC)])
    (script,) = [stdin for argv, stdin in run.calls if argv[0] == "nft"]
    assert script is not None and script.count("\n") == 3  # p4, p6 (link-local), mac
    assert all(argv[0] == "nft" for argv, _ in run.calls)  # one transaction, nothing else
    run.calls.clear()
    pairs = change_pairs(state, "tap913c4131-0c", run, remove=[parse_pair("10.200.51.10")])
    assert pairs == []
    assert read_state(state)["ports"][PORT.id]["pairs"] == []
    (script,) = [stdin for argv, stdin in run.calls if argv[0] == "nft"]
    assert script is not None and "add element" not in script


def test_unset_of_a_missing_pair_is_refused(state: Path) -> None:
    run = Recorder()
    with pytest.raises(UsageError, match=r"has no allowed address pair ip-address=10\.0\.0\.9"):
        change_pairs(state, "ha_first", run, remove=[parse_pair("10.0.0.9")])
    assert not run.calls


def test_unknown_port_names_the_known_ones(state: Path) -> None:
    with pytest.raises(UsageError, match="ports are: ha_first:913c4131"):
        change_pairs(state, "observer", Recorder(), clear=True)


def test_adding_a_pair_twice_changes_nothing(state: Path) -> None:
    run = Recorder()
    change_pairs(state, "ha_first", run, add=[parse_pair("10.200.51.10")])
    run.calls.clear()
    assert change_pairs(state, "ha_first", run, add=[parse_pair("10.200.51.10")]) == [
        Pair("10.200.51.10")
    ]
    assert not run.calls


@pytest.mark.parametrize(
    "argv",
    [
        ["port-set", "ha_first", "--allowed-address", "ip=1.2.3.4"],
        ["port-set", "ha_first"],
        ["port-unset", "ha_first"],
        ["port-set", "ha_first", "--allowed-address", "ip-address=nope"],
    ],
)
def test_port_set_bad_input_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vrrp-lab: ") and "\n" not in err
