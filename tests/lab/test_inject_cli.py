"""`vrrp-lab inject` sends crafted frames from a node of a lab that `vrrp-lab up` holds (issue
17): the same model and sending code as the scenario step, reached from another terminal."""

from __future__ import annotations

import json

import pytest

from lab.registry import lab_processes, running_labs
from lab.wait import wait_until
from tests.lab.test_cli import cli, held_up

pytestmark = pytest.mark.lab

#: garp-storm's topology on plain L2, where nothing stops a neighbour's ARP.
SCENARIO = "garp-storm"
HA_FIRST, HA_FIRST_MAC = "10.200.51.32", "fa:16:3e:8d:dc:bb"
#: The MAC mallory claims ha_first's address at: locally administered, no port's.
CLAIMED = "02:00:00:00:17:01"


def _entry(lab_id: str, ip: str) -> dict[str, object] | None:
    """The observer's neighbour entry for ``ip``, as `ip -j neigh` shows it."""
    res = cli("exec", "--lab", lab_id, "observer", "--", "ip", "-j", "neigh", "show", ip)
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout or "[]")
    return entries[0] if entries else None


def test_inject_poisons_a_neighbour_entry_of_a_running_lab() -> None:
    """Gratuitous ARPs claiming ha_first's address at another MAC, sent by `vrrp-lab inject`
    from mallory, move the observer's entry to that MAC; bad input exits 2 with one line;
    `vrrp-lab down` leaves nothing behind."""
    with held_up(SCENARIO) as (up, record):
        res = cli("exec", "--lab", record.id, "observer", "--", "ping", "-c1", "-W2", HA_FIRST)
        assert res.returncode == 0, res.stdout + res.stderr
        before = _entry(record.id, HA_FIRST)
        assert before is not None and before.get("lladdr") == HA_FIRST_MAC, before

        rate, duration = 20, 0.5
        res = cli(
            "inject",
            record.id,
            "--from",
            "mallory",
            "--kind",
            "garp",
            "--set",
            f"ip={HA_FIRST}",
            "--set",
            f"mac={CLAIMED}",
            "--rate",
            str(rate),
            "--duration",
            str(duration),
        )
        assert res.returncode == 0, res.stdout + res.stderr
        sent = round(rate * duration)
        assert f"mallory sent {sent} frames" in res.stdout, res.stdout
        assert f"gratuitous ARPs claiming {HA_FIRST} at {CLAIMED}" in res.stdout, res.stdout
        # The kernel applies each GARP as it arrives; the poll only covers the exec's round trip.
        wait_until(
            lambda: _entry(record.id, HA_FIRST),
            timeout=5,
            what=f"the observer's entry for {HA_FIRST} to move to {CLAIMED}",
            accept=lambda entry: entry is not None and entry.get("lladdr") == CLAIMED,
        )

        # Bad input: the field and the fix in one line, exit 2, no traceback, nothing sent.
        for argv, words in (
            (["--kind", "advert", "--set", "priority=300"], ["advert.priority", "--set priority"]),
            (["--kind", "advert", "--set", "prio=3"], ["advert.prio", "priority"]),
            (["--kind", "garp"], ["garp.ip", "--set ip="]),
            (["--kind", "garp", "--set", f"ip={HA_FIRST}", "--rate", "0"], ["rate", "--rate"]),
        ):
            res = cli("inject", record.id, "--from", "mallory", *argv)
            lines = res.stderr.strip().splitlines()
            assert (res.returncode, len(lines)) == (2, 1), (argv, res.stderr)
            assert all(w in lines[0] for w in words), (argv, words, lines[0])
            assert "Traceback" not in res.stderr and res.stdout == ""
        res = cli("inject", record.id, "--from", "nobody", "--kind", "garp", "--set", "ip=::1")
        assert res.returncode == 2 and "no instance 'nobody'" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1

        res = cli("down", "--lab", record.id)
        assert res.returncode == 0 and "torn down" in res.stdout, res.stderr
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0 and "torn down" in out, err
    assert record.id not in {r.id for r in running_labs()}
    assert not record.path().exists()
    assert lab_processes(record) == []
