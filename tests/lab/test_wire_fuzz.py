"""The wire fuzzer against the bundled daemon (issue 17): mutated adverts at a master/backup
pair, IPv4 and IPv6, multicast and unicast, from the observer's port.

A fixed seed and a bounded count per combination keep the four runs inside about 40 s of wall
time; ``benchmarks/wire_fuzz.py`` is the long run. Each run asserts 0 crashes (the daemon's
pid is the same), 0 transitions since the fuzz began, the master still advertising and the
backup still hearing it, and every counter as the oracle (``lab.wire_fuzz_oracle``) says:
per router the socket's and the instance's receive counters by reason, the instance's
discard keys and the kernel counters of its namespace, and the fabric's for what the bridge
drops, so that the drops add up to what was sent minus what was valid. The bundled daemon
only: the figures come from its status.
"""

from __future__ import annotations

import pytest

from lab import Lab
from lab.wire_fuzz_run import run_pair, scenario_text

pytestmark = pytest.mark.lab

SEED = 17
"""Fixed, so that a failure is the same frames again."""
COUNT = 300
"""Adverts per combination: four bring-ups at a 1 s advert interval take most of the time."""
RATE = 250.0
"""Frames per second from the observer: a VRRP raw socket's default receive buffer (208 KiB)
holds a couple of hundred such datagrams, so a daemon held off its core for most of a second
still loses none (``raw-drops`` would show it)."""


@pytest.fixture(scope="module")
def lab_scenario() -> str:
    """The seed topology on plain L2, dual stack (overrides the plugin's). Module scope."""
    return scenario_text()


@pytest.mark.parametrize(
    ("family", "mode"),
    [(4, "multicast"), (4, "unicast"), (6, "multicast"), (6, "unicast")],
    ids=["ipv4-multicast", "ipv4-unicast", "ipv6-multicast", "ipv6-unicast"],
)
def test_wire_fuzz(module_lab: Lab, family: int, mode: str) -> None:
    result = run_pair(module_lab, family, mode, seed=SEED, count=COUNT, rate=RATE)
    print(f"\nN = {result.count} adverts ({result.frames} frames)\n{result.table()}")
    assert result.routers, result.problems
    assert result.ok, "\n".join(["the fuzz found:", *result.problems, result.table()])
