"""``vrrp_track_process`` with real keepalived 2.2.7 and the bundled daemon (issue 15).

The master (ha_first, priority 200) tracks, unweighted, a ``/bin/sleep N`` it started in its
node, N a long random number of seconds: the lab's nodes share the host's PID namespace, so
the command line must be unique to the test. The sleep is killed, then started again.

* bundled: killing it puts the master in FAULT within two /proc scans
  (:data:`vrrp.proc_scan.SCAN_PERIOD`), and ha_second takes over at once (priority 0);
  starting it again brings ha_first back as MASTER (it preempts within Master_Down_Interval).
* keepalived 2.2.7 follows the kernel's process events (the netlink proc connector), which
  the kernel delivers only in the initial network namespace: in a lab node its subscription
  is refused ("Failed to set/clear process event listen - errno 111"), it never reads /proc
  (``init_track_processes`` returns before ``read_procs``), the count stays 0, and the
  instance sits in FAULT from the start whatever runs. The test pins that, which is why the
  bundled daemon scans /proc instead.

Every wait is bounded by the configured timers: the scan period to notice, then
Master_Down_Interval for VRRP to act, each doubled for the daemons' own latency.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import yaml

from lab import clock
from lab.lab import Lab
from lab.routers.params import RouterParams
from lab.routers.spec import Routers, prepare_routers
from lab.scenario import SCENARIO_DIR, parse_scenario
from vrrp.proc_scan import SCAN_PERIOD

pytestmark = pytest.mark.lab

MakeLab = Callable[..., Lab]
#: How long the bundled daemon may take to see a process start or end: two scans.
NOTICE = 2 * SCAN_PERIOD


def tracking(text: str, seconds: str, weight: int = 0) -> str:
    """A rendered keepalived.conf with a ``vrrp_track_process`` for ``/bin/sleep SECONDS``
    (exact parameters: the file's default when parameters are given) tracked by its instance."""
    block = f"vrrp_track_process sleeper {{\n    process /bin/sleep {seconds}\n}}\n\n"
    text, found = re.subn(r"^vrrp_instance ", block + "vrrp_instance ", text, count=1, flags=re.M)
    assert found == 1, text
    entry = (
        "    track_process {\n        sleeper"
        + (f" weight {weight}" if weight else "")
        + "\n    }\n"
    )
    text, found = re.subn(r"^(vrrp_instance \S+ \{\n)", r"\g<1>" + entry, text, flags=re.M)
    assert found == 1, text
    return text


@contextmanager
def sleeper(lab: Lab, node: str, seconds: str) -> Iterator[subprocess.Popen[bytes]]:
    """``/bin/sleep SECONDS`` running in ``node``, killed on leaving (and at teardown)."""
    proc = lab.node(node).popen(["/bin/sleep", seconds])
    lab.defer(f"sleep {seconds}", proc.kill)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> float:
    """Kill the sleep and reap it (a zombie still counts as running for nobody, but its
    exit is only final once reaped); the lab-clock time of the kill."""
    at = clock.now()
    proc.kill()
    proc.wait()
    return at


def start(lab: Lab, impl: str, seconds: str) -> tuple[Routers, RouterParams]:
    """The short-timer lab's routers, ha_first tracking the sleep: started, not settled.
    Returns them and ha_first's rendered parameters (for its timers)."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no trackers: track_process is refused")
    routers = prepare_routers(lab, lab.scenario.routers, impl)
    first = routers["ha_first"]
    params = first.params
    assert params is not None
    first.set_config(tracking(params.render(), seconds))
    for router in routers.values():
        router.start()
    return routers, params


def short_timers(make_lab: MakeLab) -> Lab:
    """The short-timer lab (ha_first priority 200, ha_second 100), without its steps."""
    doc = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    doc["steps"] = []
    return make_lab(parse_scenario(yaml.safe_dump(doc), "short-timers+track_process"))


def test_a_tracked_process_ending_faults_the_master_and_its_return_brings_it_back(
    make_lab: MakeLab, impl: str
) -> None:
    lab = short_timers(make_lab)
    # Unique on the host: a random number of seconds no other sleep will have.
    seconds = str(10**8 + secrets.randbelow(9 * 10**8))
    with sleeper(lab, "ha_first", seconds) as proc:
        routers, params = start(lab, impl, seconds)
        first, second = routers["ha_first"], routers["ha_second"]
        mdi = float(params.master_down_interval)
        settle = 10 * float(params.advert_int) + mdi
        if impl == "keepalived":
            # No proc events in a network namespace: FAULT from the start, the sleep running.
            first.wait_state("FAULT", timeout=settle)
            second.wait_state("MASTER", timeout=settle)
            assert "process event listen" in first.log_text(), first.log_tail()
            return
        first.wait_state("MASTER", timeout=settle)
        second.wait_state("BACKUP", timeout=settle)
        killed = kill(proc)
        first.wait_state("FAULT", timeout=NOTICE + 2 * mdi, since=killed)
        # ha_first's priority-0 advert hands over after Skew_Time, well within this.
        second.wait_state("MASTER", timeout=2 * mdi, since=killed)
    with sleeper(lab, "ha_first", seconds):
        started = clock.now()
        first.wait_state("MASTER", timeout=NOTICE + 2 * mdi, since=started)
        second.wait_state("BACKUP", timeout=2 * mdi, since=started)
