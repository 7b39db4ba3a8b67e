"""The service behind the VIP with real haproxy, keepalived and the bundled daemon (issue 15):
a killed haproxy refuses at once, a hung one times its health check out, and either way the
check's weight hands the VIP to the peer, whose haproxy then serves the HTTP clients.

The lab is short-timers (0.1 s adverts) with a backend instance and the service; both routers
track the lab's check of their own haproxy (``/run/haproxy/check``) with weight -150. Every
wait is bounded by the configured timers: the check's interval × fall (plus its timeout for a
hung haproxy) to notice, then Master_Down_Interval for VRRP to act, each doubled for the
daemons' own latency. No timing is judged here: seed-haproxy's failover step judges the outage
against its window.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from lab import faults
from lab.lab import Lab
from lab.recording import router_timers
from lab.routers.spec import Routers, start_routers
from lab.scenario import SCENARIO_DIR, parse_scenario
from lab.service import Service, start_service
from lab.service_spec import CHECK_PATH
from lab.wait import wait_until

pytestmark = pytest.mark.lab

MakeLab = Callable[..., Lab]
#: Every router's check of its own haproxy: one failure lowers it by 150 (200 → 50 < 100).
CHECK = {
    "name": "chk_haproxy",
    "script": CHECK_PATH,
    "interval": 1,
    "timeout": 1,
    "fall": 1,
    "rise": 1,
    "weight": -150,
}
BACKEND = {
    "name": "backend",
    "ports": [
        {
            "id": "5b0f1c3e-8d52-4c8e-9a41-2f7c7e0d6a10",
            "network": "ha_lab",
            "mac_address": "fa:16:3e:5a:7c:21",
            "fixed_ips": ["10.200.51.35"],
        }
    ],
}


def service_lab(make_lab: MakeLab, impl: str) -> tuple[Lab, Routers, Service]:
    """short-timers with the service and the check, haproxy started before the routers (as a
    host boots), ha_first settled as MASTER and serving HTTP."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no health checks: track_script is refused")
    doc = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    doc["steps"] = []
    doc["instances"].append(BACKEND)
    doc["service"] = {
        "backend": "backend",
        "client": {"interval": 0.005, "timeout": 0.5, "sessions": 4, "session_interval": 0.1},
    }
    for router in doc["routers"]:
        router["checks"] = [CHECK]
    scenario = parse_scenario(yaml.safe_dump(doc), "short-timers+service")
    lab = make_lab(scenario)
    assert scenario.service is not None
    service = start_service(
        lab, scenario.service, proxies=["ha_first", "ha_second"], observer="observer"
    )
    routers = start_routers(lab, scenario.routers, impl_override=impl)
    settle = notice(routers) + 10 * advert(routers) + mdi(routers)
    routers["ha_first"].wait_state("MASTER", timeout=settle)
    routers["ha_second"].wait_state("BACKUP", timeout=settle)
    service.start_clients()
    service.client.wait_ok(timeout=settle, by="ha_first")
    # Every long-lived connection open before any fault: each opens on its first answer, one
    # session interval at most after a refused attempt.
    client = service.spec.client
    wait_until(
        lambda: {e.slot for e in service.client.results().sessions if e.kind == "opened"},
        accept=lambda opened: len(opened) == client.sessions,
        timeout=settle + client.session_interval + client.timeout,
        what=f"all {client.sessions} long-lived connections to open",
    )
    return lab, routers, service


def advert(routers: Routers) -> float:
    """The advert interval both routers share."""
    params = routers["ha_second"].params
    assert params is not None
    return float(params.advert_int)


def mdi(routers: Routers) -> float:
    """The backup's Master_Down_Interval."""
    params = routers["ha_second"].params
    assert params is not None
    return float(params.master_down_interval)


def black_hole(routers: Routers) -> float:
    """How long HTTP may stay black-holed after a handover where the old master stays up: it
    may answer the new master's GARP from the shared VMAC while it still holds the VIP, and the
    bridge learns the MAC back only from the new master's second GARP batch,
    ``garp_master_delay`` later (lab.metrics.vmac_answered_back); plus the takeover."""
    return router_timers(routers["ha_second"]).garp_master_delay + 2 * mdi(routers)


def notice(routers: Routers, hung: bool = False) -> float:
    """How long the check takes to fail (interval × fall, plus its timeout when the service
    hangs), doubled."""
    params = routers["ha_first"].params
    assert params is not None
    (check,) = params.checks
    return 2.0 * (check.interval * check.fall + (check.timeout or check.interval) * hung)


def test_a_killed_haproxy_refuses_at_once_and_its_check_moves_the_vip(
    make_lab: MakeLab, impl: str
) -> None:
    lab, routers, service = service_lab(make_lab, impl)
    first, second = routers["ha_first"], routers["ha_second"]
    killed = faults.service_down(lab, "ha_first")
    # ha_first still holds the VIP while its check notices: its kernel refuses the connections.
    wait_until(
        lambda: [r.error for r in service.client.results().requests if r.sent >= killed],
        accept=lambda errors: "ECONNREFUSED" in errors,
        timeout=notice(routers),
        what="an HTTP request to the VIP refused after haproxy was killed",
    )
    second.wait_state("MASTER", timeout=notice(routers) + 2 * mdi(routers), since=killed)
    first.wait_state("BACKUP", timeout=2 * mdi(routers), since=killed)
    served = service.client.wait_ok(timeout=black_hole(routers), by="ha_second", since=killed)
    assert served.backend == "backend"
    # The long-lived connections haproxy held died with it: closed by the kernel at once.
    wait_until(
        lambda: {
            e.how
            for e in service.client.results().sessions
            if e.kind == "broken" and e.at >= killed
        },
        accept=lambda hows: bool({"closed", "reset"} & hows),
        timeout=service.spec.client.timeout,
        what="a long-lived connection to the killed haproxy to be closed or reset",
    )
    started = faults.service_up(lab, "ha_first")
    first.wait_state("MASTER", timeout=notice(routers) + 2 * mdi(routers), since=started)
    service.client.wait_ok(timeout=black_hole(routers), by="ha_first", since=started)


def test_a_hung_haproxy_times_its_check_out_and_its_sessions_hang(
    make_lab: MakeLab, impl: str
) -> None:
    lab, routers, service = service_lab(make_lab, impl)
    first, second = routers["ha_first"], routers["ha_second"]
    hung = faults.service_hang(lab, "ha_first")
    # The kernel still accepts, nothing answers: the sessions' requests go unanswered.
    wait_until(
        lambda: [
            e.how for e in service.client.results().sessions if e.kind == "broken" and e.at >= hung
        ],
        accept=lambda hows: "hung" in hows,
        timeout=2 * service.spec.client.timeout + 1,
        what="a long-lived connection to the hung haproxy to be reported hung",
    )
    second.wait_state("MASTER", timeout=notice(routers, hung=True) + 2 * mdi(routers), since=hung)
    # A hung haproxy is not a dead one: ha_first lowers its priority, it does not fault.
    first.wait_state("BACKUP", timeout=2 * mdi(routers), since=hung)
    service.client.wait_ok(timeout=black_hole(routers), by="ha_second", since=hung)
    resumed = faults.service_up(lab, "ha_first")
    first.wait_state("MASTER", timeout=notice(routers) + 2 * mdi(routers), since=resumed)
    service.client.wait_ok(timeout=black_hole(routers), by="ha_first", since=resumed)


def test_a_service_flap_kills_and_restarts_haproxy_on_its_schedule(
    make_lab: MakeLab, impl: str
) -> None:
    """``service-flap`` on the backup's haproxy: killed and started again ``times`` times, each
    kill and start in the fault history, in order, and haproxy serving at the end."""
    lab, routers, service = service_lab(make_lab, impl)
    proxy = service.proxy("ha_second")
    first_pid = proxy.pid
    began = faults.service_flap(lab, "ha_second", times=3, down_for=0.2, up_for=0.3)
    faults.wait_service_flap(lab, timeout=3 * (0.2 + 0.3) + 3 * 10.0)
    played = [(r.kind, r.target) for r in faults.history(lab) if r.at >= began]
    assert played == [
        ("service-flap", "ha_second"),
        ("service-up", "ha_second"),
        ("service-down", "ha_second"),
        ("service-up", "ha_second"),
        ("service-down", "ha_second"),
        ("service-up", "ha_second"),
    ]
    assert proxy.running and proxy.pid != first_pid
    stamps = [r.at for r in faults.history(lab) if r.at >= began]
    assert stamps == sorted(stamps)
    # Down for down_for each time: a start comes no sooner than that after its kill.
    assert all(up - down >= 0.2 for down, up in zip(stamps[::2], stamps[1::2], strict=True))
    # The master never left MASTER: the backup's service is not what the master tracks.
    left = [e.state for e in routers["ha_first"].events.snapshot(since=began) if e.is_state]
    assert left == [], f"ha_first changed state during the backup's flap: {left}"
