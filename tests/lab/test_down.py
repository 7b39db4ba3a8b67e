"""`vrrp-lab down` ends a held lab within a bound the lab states, and says what it waits on.

A fresh-machine CI run once saw `down` time out after 30 s. The cause: `vrrp-lab up` marked
its record "holding" before it installed its SIGTERM handler, so a `down` that came in between
(a test waits for exactly that flag) killed the runner outright; its record stayed, and `down`
waited for a removal that nobody would make.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap

import pytest

from lab import linux
from lab.lab import TEARDOWN_BASE
from lab.registry import running_labs
from lab.wait import wait_until
from tests.lab.test_cli import held_up

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-m", "lab"]

#: `vrrp-lab up short-timers`, except that the runner sends itself SIGTERM the moment its
#: record first says "holding": the earliest instant `vrrp-lab down` may act on it.
EARLIEST_DOWN = textwrap.dedent(
    """
    import os, signal, sys
    from lab import cli, registry

    save = registry.LabRecord.save

    def save_then_down(self):
        save(self)
        if self.holding:
            os.kill(os.getpid(), signal.SIGTERM)

    registry.LabRecord.save = save_then_down
    sys.exit(cli.main(["up", "short-timers"]))
    """
)


def test_down_at_the_first_instant_of_holding_tears_the_lab_down() -> None:
    """Fails without the fix: the runner dies of SIGTERM (-15) and leaves its record."""
    run = subprocess.run(
        [sys.executable, "-c", EARLIEST_DOWN],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, (run.returncode, run.stderr)
    assert "is up" in run.stdout and "torn down" in run.stdout, run.stdout
    up = re.search(r"lab (\S+) is up", run.stdout)
    assert up is not None, run.stdout
    assert up.group(1) not in {r.id for r in running_labs()}


def test_down_says_what_it_waits_on_and_gives_up_at_the_bound() -> None:
    """A runner that cannot act on SIGTERM (here: stopped) is named with its state, and `down`
    gives up at the lab's teardown bound instead of a fixed 30 s; once the runner resumes, the
    lab goes as asked."""
    with held_up() as (up, record):
        assert record.teardown_bound == TEARDOWN_BASE  # `up` runs no router
        up.send_signal(signal.SIGSTOP)
        wait_until(
            lambda: linux.process_state(up.pid),
            accept=lambda state: state == "T",
            timeout=5,
            what="the runner to be stopped",
        )
        down = subprocess.run(
            [*CLI, "down", "--lab", record.id],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert down.returncode != 0, down.stdout
        assert f"runner pid {up.pid} stopped" in down.stdout, down.stdout
        assert f"not torn down within {TEARDOWN_BASE:g}s of SIGTERM" in down.stderr, down.stderr
        assert "still in the lab: " in down.stderr and "sleep (pid" in down.stderr, down.stderr
        assert "Traceback" not in down.stderr
        up.send_signal(signal.SIGCONT)
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0, err
        assert "torn down" in out
    assert record.id not in {r.id for r in running_labs()}
