"""The service outage as HTTP clients see it, its components and its theory window; the
``service:`` block and the service steps of a scenario (issue 15). Pure: no namespaces."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from lab.errors import ScenarioError
from lab.metrics import AdvertSeen
from lab.recording import timers_of_config
from lab.scenario import SCENARIO_DIR, load_scenario, parse_scenario
from lab.service import haproxy_config
from lab.service_metrics import (
    CheckTimers,
    Request,
    SessionBreak,
    lowered_advert,
    request_outage,
    service_outage,
    service_window,
    theory_problem,
)
from vrrp.timers import Timers

FAULT = 100.0


def requests(*spans: tuple[float, float, bool], step: float = 0.001) -> list[Request]:
    """Requests every ``step`` s over each (start, end, ok) span, served by ha_first before
    the fault and ha_second after it."""
    out = []
    for start, end, ok in spans:
        n = round((end - start) / step)
        for k in range(n):
            sent = start + k * step
            who = "ha_first" if sent < FAULT else "ha_second"
            out.append(
                Request(
                    sent, sent + 0.0005, ok, who if ok else None, None if ok else "ECONNREFUSED"
                )
            )
    return out


def test_the_outage_runs_from_the_first_failed_request_to_the_first_success_after_it() -> None:
    reqs = requests((99.0, 100.0, True), (100.0, 104.0, False), (104.0, 105.0, True))
    out = service_outage(reqs, [], FAULT, 106.0)
    assert out.first_failed == pytest.approx(100.0)
    assert out.first_ok_after == pytest.approx(104.0005)
    assert out.outage_ms == pytest.approx(4000.5)
    assert out.failed_requests == 4000
    assert out.errors == {"ECONNREFUSED": 4000}
    assert (out.served_before, out.served_after) == ("ha_first", "ha_second")
    assert out.recovered


def test_a_failure_that_ended_before_the_fault_is_not_its_outage() -> None:
    reqs = requests(
        (90.0, 91.0, False), (91.0, 100.2, True), (100.2, 101.0, False), (101.0, 102.0, True)
    )
    first, after, failed = request_outage(reqs, FAULT, 103.0)
    assert first is not None and first.sent == pytest.approx(100.2)
    assert after is not None and after.sent == pytest.approx(101.0)
    assert len(failed) == 800


def test_an_outage_still_open_at_the_window_end_has_no_recovery() -> None:
    reqs = requests((99.0, 100.0, True), (100.0, 103.0, False))
    out = service_outage(reqs, [], FAULT, 103.0)
    assert out.outage_ms is None and not out.recovered
    assert out.as_json()["recovered"] is False


def test_no_failure_is_an_outage_of_zero() -> None:
    out = service_outage(requests((99.0, 102.0, True)), [], FAULT, 103.0)
    assert out.outage_ms == 0.0 and out.failed_requests == 0


def test_sessions_broken_in_the_window_are_counted_by_how() -> None:
    breaks = [
        SessionBreak(0, 99.0, "reset"),
        SessionBreak(1, 100.1, "closed"),
        SessionBreak(2, 101.0, "reset"),
        SessionBreak(3, 104.0, "hung"),
    ]
    out = service_outage(requests((99.0, 103.0, True)), breaks, FAULT, 103.5)
    assert out.sessions_broken == {"closed": 1, "reset": 1}


def test_the_health_checks_detection_is_the_old_masters_first_lowered_advert() -> None:
    adverts = [AdvertSeen(97.0 + k, "m", "10.0.0.1", 1, 200, "ha_first") for k in range(3)]
    adverts += [
        AdvertSeen(100.5, "m", "10.0.0.1", 2, 10, "ha_first"),  # another VRID: not this one
        AdvertSeen(101.0, "m", "10.0.0.1", 1, 200, "ha_first"),
        AdvertSeen(102.0, "m", "10.0.0.1", 1, 50, "ha_first"),
        AdvertSeen(105.0, "n", "10.0.0.2", 1, 100, "ha_second"),
    ]
    lowered = lowered_advert(adverts, "ha_first", 1, FAULT, 110.0)
    assert lowered is not None and lowered.at == 102.0 and lowered.priority == 50
    out = service_outage(
        requests((99.0, 103.0, True)), [], FAULT, 110.0, old_master_advert=lowered, takeover=105.0
    )
    assert out.check_detection_ms == pytest.approx(2000)
    assert out.takeover_ms == pytest.approx(3000)
    assert out.as_json()["components"] == {"check_detection_ms": 2000.0, "takeover_ms": 3000.0}
    # A node that never advertised before the fault lowered nothing.
    assert lowered_advert(adverts, "ha_second", 1, FAULT, 110.0) is None


def test_the_seed_haproxy_window_comes_from_the_configs() -> None:
    """interval 1 s × fall 2, one advert interval, and ha_second's Master_Down_Interval
    (VRRPv2, priority 100: 3 + 156/256 s): the window the scenario's comment derives."""
    first = timers_of_config((SCENARIO_DIR / "seed-haproxy" / "ha_first.conf").read_text())
    second = timers_of_config((SCENARIO_DIR / "seed-haproxy" / "ha_second.conf").read_text())
    assert first.checks == (CheckTimers(1, 2, 1, -150),)
    mdi = Timers.of(second.version, second.priority, second.advert_int).silent_failure_window()
    window = service_window(first.checks, first.advert_int, mdi)
    assert window == pytest.approx((1 + 3 + 156 / 256 - 1, 2 + 1 + 3 + 156 / 256))
    # Hung, each failing run takes its timeout (1 s) more.
    hung = service_window(first.checks, first.advert_int, mdi, hung=True)
    assert hung == pytest.approx((1 + 1 + 3 + 156 / 256 - 1, 2 + 1 + 1 + 3 + 156 / 256))


def test_a_window_spans_every_check_the_master_tracks() -> None:
    checks = [CheckTimers(1, 3, 1, -10), CheckTimers(2, 1, 1, -10)]
    assert service_window(checks, 1.0, (2.0, 3.0)) == (0 + 2.0, 3 + 1 + 3.0)
    assert service_window(checks, 1.0, (2.0, 3.0), hung=True) == (1 + 2.0, 4 + 1 + 3.0)
    assert service_window([], 1.0, (2.0, 3.0)) is None
    # A timeout longer than the interval: runs skip or overlap, and the daemons part.
    assert service_window([CheckTimers(1, 2, 3, -10)], 1.0, (2.0, 3.0), hung=True) is None


def test_the_theory_verdict_says_what_is_off() -> None:
    out = service_outage(
        requests((99.0, 100.0, True), (100.0, 104.0, False), (104.0, 105.0, True)),
        [],
        FAULT,
        106.0,
    )
    assert theory_problem(out, 100) is not None  # no window: no check was tracked
    out.theory_min_ms, out.theory_ms = 3609.0, 6609.0
    assert theory_problem(out, 100) is None
    out.theory_min_ms, out.theory_ms = 4200.0, 6609.0
    problem = theory_problem(out, 100)
    assert problem is not None and "outside [4200.0, 6609.0] ± 100 ms" in problem
    assert theory_problem(None, 100) is not None


def test_haproxy_binds_the_vip_and_names_the_proxy() -> None:
    text = haproxy_config(
        node="ha_first",
        vip="10.200.51.10",
        port=80,
        backend="backend",
        backend_ip="10.200.51.35",
        backend_port=8080,
    )
    assert "bind 10.200.51.10:80" in text
    assert "http-response set-header X-Served-By ha_first" in text
    assert "server backend 10.200.51.35:8080" in text
    assert "monitor-uri /healthz" in text


SERVICE = load_scenario(SCENARIO_DIR / "seed-haproxy.yaml")
SERVICE_TEXT = (SCENARIO_DIR / "seed-haproxy.yaml").read_text()


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml", base_dir=SCENARIO_DIR)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_seed_haproxy_scenario_declares_its_service() -> None:
    assert SERVICE.service is not None
    assert SERVICE.service.backend == "backend"
    assert SERVICE.service.proxy_nodes([r.node for r in SERVICE.routers]) == [
        "ha_first",
        "ha_second",
    ]
    actions = [s.action for s in SERVICE.steps]
    assert "service_down" in actions and "service_up" in actions


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("  backend: backend", "  backend: nobody", "service.backend: unknown instance 'nobody'"),
        ("  backend: backend", "  backend: ha_first", "'ha_first' is also a proxy"),
        ("  backend: backend", "  backend: backend\n  port: 8404", "health check port"),
        (
            "    service-down: ha_first",
            "    service-down: observer",
            "steps[7].service-down: no haproxy runs on 'observer'",
        ),
        ("  backend: backend", "  backend: backend\n  client: {interval: 0}", "greater than 0"),
    ],
)
def test_a_bad_service_is_one_line(old: str, new: str, words: str) -> None:
    assert old in SERVICE_TEXT
    assert words in error_of(SERVICE_TEXT.replace(old, new, 1))


def test_a_service_step_without_a_service_is_refused() -> None:
    text = SERVICE_TEXT.replace("service:\n  backend: backend\n", "")
    assert "declare `service:`" in error_of(text)


def test_the_report_shows_the_service_outage_and_draws_it(tmp_path: Path) -> None:
    """The console report's service columns and timeline lines, the JSON's records, and the
    -http.png per failover, from a failover measured as seed-haproxy's is."""
    from lab import metrics
    from lab.report import failover_timeline, plot_service, print_report
    from lab.runner import RunReport
    from lab.service_metrics import ServiceRecord

    reqs = requests((99.0, 100.0, True), (100.0, 104.0, False), (104.0, 105.0, True))
    breaks = [SessionBreak(0, 100.001, "closed")]
    out = service_outage(
        reqs,
        breaks,
        FAULT,
        106.0,
        old_master_advert=AdvertSeen(101.2, "m", "10.0.0.1", 1, 50, "ha_first"),
        takeover=103.9,
    )
    out.theory_min_ms, out.theory_ms = 3609.375, 6609.375
    f = metrics.Failover("service_down", "ha_first", FAULT, "ha_first", "ha_second", service=out)
    lines = [text for _, text in failover_timeline(f)]
    assert "health check: ha_first advertises a lowered priority" in lines
    assert "first HTTP request served after the outage (by ha_second)" in lines
    report = RunReport("seed-haproxy", "keepalived", failovers=[f], started=FAULT - 10)
    report.service = ServiceRecord(
        tuple(reqs), tuple(breaks), ((99.5, "ha_first", "a line"), (100.5, "ha_second", "late"))
    )
    text = io.StringIO()
    print_report(report, Console(file=text, width=250))
    assert "HTTP outage" in text.getvalue()
    # haproxy's lines of the failover's window, on its timeline; the one before it is not.
    assert "+500.0 ms  haproxy ha_second: late" in text.getvalue()
    assert "a line" not in text.getvalue()
    assert "4000.5 ms, 4000 failed, 1 sessions broken" in text.getvalue()
    assert "1200.0 ms + 2700.0 ms (theory 3609–6609)" in text.getvalue()
    whole = report.as_json()
    assert whole["failovers"][0]["service"]["components"] == {
        "check_detection_ms": 1200.0,
        "takeover_ms": 2700.0,
    }
    assert whole["service"]["haproxy_log"] == [
        {"t_ms": 9500.0, "node": "ha_first", "line": "a line"},
        {"t_ms": 10500.0, "node": "ha_second", "line": "late"},
    ]
    assert whole["service"]["failed"] == {"ECONNREFUSED": 4000}
    (plot,) = plot_service(report, tmp_path)
    assert plot.name == "seed-haproxy-failover1-http.png" and plot.stat().st_size > 0


def test_an_error_in_a_step_spelt_with_a_dash_points_at_its_line() -> None:
    """``steps[7].service-down`` is a path with a ``-`` in it: the error names the step's own
    line, not the scenario's first."""
    old = "    service-down: ha_first"
    line = SERVICE_TEXT.splitlines().index(old) + 1
    message = error_of(SERVICE_TEXT.replace(old, "    service-down: observer", 1))
    assert message.startswith(f"s.yaml:{line}: steps[7].service-down: ")


def test_an_interface_down_names_an_interface_the_node_has() -> None:
    text = (SCENARIO_DIR / "short-timers.yaml").read_text()
    step = "  - interface-down: {node: ha_first, interface: %s}\n"
    assert parse_scenario(text + step % "ens3", "s.yaml").steps[-1].action == "interface_down"
    message = error_of(text + step % "ens4")
    last = len(parse_scenario(text, "s.yaml").steps)
    assert f"steps[{last}].interface-down.interface: ha_first has no interface 'ens4'" in message
    assert "(it has: ens3)" in message


def test_only_a_connection_that_was_open_counts_as_broken() -> None:
    """A slot that fails to connect again (refused while the VIP has no haproxy) reports a
    break each time; only the break of an open connection is a broken connection."""
    from lab.recording import _established_breaks
    from lab.service_probe import SessionEvent

    events = [
        SessionEvent(0, 1.0, "opened", None, "ha_first"),
        SessionEvent(0, 2.0, "broken", "closed", "ha_first"),
        SessionEvent(0, 2.1, "broken", "refused", None),
        SessionEvent(0, 2.2, "broken", "refused", None),
        SessionEvent(1, 2.05, "broken", "refused", None),
        SessionEvent(0, 3.0, "opened", None, "ha_second"),
        SessionEvent(0, 4.0, "broken", "reset", "ha_second"),
    ]
    assert _established_breaks(events) == [
        SessionBreak(0, 2.0, "closed"),
        SessionBreak(0, 4.0, "reset"),
    ]


def test_haproxy_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No haproxy on the PATH: the machine lacks something (exit 3), with how to get it."""
    from types import SimpleNamespace

    from lab.errors import EnvironmentMissing
    from lab.service import Haproxy

    monkeypatch.setenv("PATH", "/nonexistent")
    proxy = Haproxy(SimpleNamespace(name="ha_first"), "")  # type: ignore[arg-type]
    with pytest.raises(EnvironmentMissing, match="apt-get install haproxy"):
        proxy.start()
