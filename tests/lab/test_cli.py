"""`vrrp-lab up` holds a lab that `exec`, `port-set` and `down` reach from another terminal."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lab.registry import LabRecord, running_labs
from lab.wait import wait_until

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-m", "lab"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def held_by(runner_pid: int) -> LabRecord | None:
    """The held lab whose runner is ``runner_pid`` (a lab runs in the process that built it)."""
    return next((r for r in running_labs() if r.runner_pid == runner_pid and r.holding), None)


@contextlib.contextmanager
def held_up(scenario: str = "short-timers") -> Iterator[tuple[subprocess.Popen[str], LabRecord]]:
    """`vrrp-lab up SCENARIO` and the record of the lab it holds; the runner is killed on the
    way out if the test left it running (resumed first, should the test have stopped it)."""
    up = subprocess.Popen(
        [*CLI, "up", scenario], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Keyed on the runner, not on "a new held lab": another test (or user) may hold one too.
        record = wait_until(
            lambda: held_by(up.pid), timeout=60, what="`vrrp-lab up` to register a held lab"
        )
        yield up, record
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGCONT)
            up.kill()
            up.wait()


def test_up_exec_down() -> None:
    with held_up() as (up, record):
        res = cli("exec", "--lab", record.id, "ha_first", "--", "hostname")
        assert (res.returncode, res.stdout.strip()) == (0, "ha-first"), res.stderr
        res = cli(
            "exec", "--lab", record.id, "observer", "--", "ping", "-c1", "-W2", "10.200.51.33"
        )
        assert res.returncode == 0, res.stdout + res.stderr
        res = cli("down", "--lab", record.id)
        assert res.returncode == 0 and "torn down" in res.stdout, res.stderr
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0, err
        assert "is up" in out and "torn down" in out
    assert record.id not in {r.id for r in running_labs()}


def test_exec_without_a_running_lab_is_a_usage_error() -> None:
    res = cli("exec", "--lab", "no-such-lab", "observer", "--", "true")
    assert res.returncode == 2 and "no running lab matches" in res.stderr
    assert "Traceback" not in res.stderr


def test_keep_lab_on_failure_holds_the_lab_until_down() -> None:
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--keep-lab-on-failure",
            "tests/support/failing_lab.py",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        record = wait_until(
            lambda: held_by(run.pid),
            timeout=60,
            what="the failed test's lab to be kept up",
        )
        res = cli("exec", "--lab", record.id, "observer", "--", "hostname")
        assert res.stdout.strip() == "observer", res.stderr
        assert cli("down", "--lab", record.id).returncode == 0
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, out
    assert f"vrrp-lab exec --lab {record.id}" in out and "1 failed" in out
