"""Run by test_parallel.py under ``pytest -n 2``: two workers each build the seed lab at once.

Each test holds its lab until both labs exist (a rendezvous through a directory given in the
environment), so the two labs provably overlap in time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab import Lab
from lab.wait import wait_until

RENDEZVOUS = Path(os.environ.get("VRRP_LAB_RENDEZVOUS", "/nonexistent"))


@pytest.mark.lab
@pytest.mark.parametrize("worker", ["a", "b"])
def test_seed_lab_in_parallel(lab: Lab, worker: str) -> None:
    (RENDEZVOUS / worker).write_text(f"{lab.id} {lab.node('observer').netns_inode}")
    wait_until(
        lambda: sorted(p.name for p in RENDEZVOUS.iterdir()),
        accept=lambda s: s == ["a", "b"],
        timeout=60,
        what="both parallel labs to be up at once",
    )
    lab.node("observer").run(["ping", "-n", "-c", "1", "-W", "2", "10.200.51.33"])
    other = (RENDEZVOUS / ("b" if worker == "a" else "a")).read_text().split()
    assert other[0] != lab.id and int(other[1]) != lab.node("observer").netns_inode
