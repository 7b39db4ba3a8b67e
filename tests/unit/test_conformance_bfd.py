"""The B rows without a lab: row sets, the IUT's bfd_instance, and the broken packets of B09
(each one unacceptable for exactly the reason its label names)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lab.conformance import ROWS, parse_rows
from lab.conformance.bfd_bench import IutBfd, tolerance
from lab.conformance.checks_bfd import MALFORMED, down_packet
from lab.conformance.rows import BFD_ROWS, VRRP_ROWS
from vrrp.bfd.packet import BfdError, Control, Discard, SessionState, decode


def test_row_sets() -> None:
    assert [f"B0{i}" for i in range(1, 10)] == BFD_ROWS
    assert len(VRRP_ROWS) == 22 and not set(VRRP_ROWS) & set(BFD_ROWS)
    assert parse_rows(None) == VRRP_ROWS  # the default matrix is VRRP's
    assert parse_rows("bfd") == BFD_ROWS
    assert parse_rows("all") == list(ROWS)
    assert parse_rows("P01,bfd,B01") == ["P01", *BFD_ROWS]
    with pytest.raises(ValueError, match="unknown row"):
        parse_rows("B10")


def test_iut_bfd_instance_in_keepalived_words() -> None:
    assert IutBfd().block("192.0.2.14", "192.0.2.11") == (
        "bfd_instance tester {\n    neighbor_ip 192.0.2.14\n    source_ip 192.0.2.11\n"
        "    min_rx 50\n    min_tx 50\n    multiplier 3\n}\n"
    )
    assert "min_tx 12.5\n" in IutBfd(min_tx=0.0125).block("a", "b")
    assert tolerance(0.15) == pytest.approx(0.03) and tolerance(0.02) == 0.01


class Tester:
    """What the B09 packets need of the tester: the packet its session would send."""

    def control(self, **changes: Any) -> Control:
        base = Control(
            state=SessionState.UP,
            my_discriminator=0x1234,
            your_discriminator=0x5678,
            desired_min_tx_us=100_000,
            required_min_rx_us=50_000,
        )
        return dataclasses.replace(base, **changes)


WHY = {
    "version 0": Discard.VERSION,
    "Length 20": Discard.LENGTH,
    "Length 30 beyond the packet": Discard.TRUNCATED,
    "Detect Mult 0": Discard.DETECT_MULT,
    "My Discriminator 0": Discard.MY_DISCRIMINATOR,
    "A bit without authentication": Discard.AUTH,
}


def test_the_valid_down_is_acceptable() -> None:
    control = decode(down_packet(Tester()), ttl=255)  # type: ignore[arg-type]
    assert control.state is SessionState.DOWN and control.your_discriminator == 0x5678


@pytest.mark.parametrize("label", list(MALFORMED))
def test_each_malformed_packet_breaks_one_check(label: str) -> None:
    with pytest.raises(BfdError) as caught:
        decode(MALFORMED[label](Tester()), ttl=255)  # type: ignore[arg-type]
    assert caught.value.reason is WHY[label]
