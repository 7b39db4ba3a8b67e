"""The HTTP service probes between real lab nodes (issue 15).

The lab is the seed's topology on a plain bridge (no SDN, no VRRP, no haproxy): the client in
the observer talks to the backend on ha_second's own address, so every response names the
backend and none carries an ``X-Served-By``.
"""

from __future__ import annotations

import pytest

from lab import Lab
from lab.service_probe import BackendRun, HttpClientRun
from lab.wait import wait_until
from tests.lab.test_probe import PLAIN_SEED

pytestmark = pytest.mark.lab

BACKEND_IP = "10.200.51.33"


@pytest.fixture
def lab_scenario() -> str:
    """The seed's topology without SDN and routers. Function scope; no dependencies."""
    return PLAIN_SEED


def test_the_observer_is_served_by_the_backend(lab: Lab) -> None:
    backend = BackendRun(lab.node("ha_second"), "ha_second")
    lab.defer("HTTP backend on ha_second", backend.stop)
    backend.start()
    assert backend.pid is not None
    run = HttpClientRun(
        lab.node("observer"),
        BACKEND_IP,
        port=8080,
        interval=0.005,
        sessions=3,
        session_interval=0.02,
    )
    lab.defer("HTTP client in observer", run.stop)
    run.start()
    first = run.wait_ok(timeout=5, by="ha_second")
    assert first.backend == "ha_second" and first.served_by is None
    wait_until(
        run.results,
        timeout=5,
        what="50 answered requests and 3 open sessions",
        accept=lambda r: (
            len(r.requests) >= 50 and len({e.slot for e in r.sessions if e.kind == "opened"}) == 3
        ),
    )
    results = run.stop()
    assert run.stop() is results
    assert not run.running
    assert results.failed() == ()
    assert {r.backend for r in results.requests} == {"ha_second"}
    assert results.served_by() == {"-": len(results.requests)}
    assert [e for e in results.sessions if e.kind == "broken"] == []
    assert results.figures["requests"] == len(results.requests)
    served = backend.stop()
    assert served["requests"] >= len(results.requests) + 3
