"""pytest plugin for vrrp-lab (registered under the ``pytest11`` entry point as ``vrrp_lab``).

Markers:
    ``@pytest.mark.lab`` — the test builds namespaces. Where the kernel or the user refuses
    them, the test is skipped with the reason (not root and no user namespaces, ...).
    ``@pytest.mark.timing`` — the test judges a measured time against the RFC's windows at a
    tolerance other labs' load could cross (sub-second timers): run it alone (``-m "lab and
    timing"`` serially, ``-m "lab and not timing"`` on several cores). A test judging coarser
    times (1 s adverts: tolerances of 100 ms and more) is not marked: three labs on two cores
    make each other wait tens of milliseconds, and the stall witness still makes a longer
    stall inconclusive.

Fixtures (each docstring states its scope and what it depends on):
    ``lab_scenario`` → ``lab`` / ``module_lab``, and the factory ``make_lab``;
    ``impl`` (parametrised by ``--impl``) and ``routers`` (the started routers of ``lab``);
    ``stall_witness``, the host's scheduling stalls during the test (:mod:`lab.stalls`).

Inconclusive measurements:
    a test that raises :class:`lab.stalls.Inconclusive` (a timing verdict whose window overlapped
    a host stall longer than its tolerance) is run again, at most :data:`MAX_RERUNS` times; if
    every run is inconclusive it fails, with each run's stall, saying the host was too noisy.
    The terminal summary counts inconclusive measurements and re-runs.

Options:
    ``--keep-lab-on-failure`` keeps a failed test's lab up, prints how to enter it, and waits for
    ``vrrp-lab down`` (or Ctrl-C) before tearing it down.
    ``--impl NAME`` (repeatable) runs every test that takes the ``impl`` fixture once per VRRP
    implementation (default: keepalived).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import LabError
from lab.lab import Lab
from lab.routers.spec import start_routers
from lab.sandbox import check_environment
from lab.scenario import DEFAULT_SCENARIO, Scenario, load_scenario, parse_scenario
from lab.stalls import Inconclusive, StallWitness

_failed_key = pytest.StashKey[dict[str, bool]]()
_attempt_key = pytest.StashKey[int]()
_spoiled_key = pytest.StashKey[list[str]]()
#: How often a test whose measurement was inconclusive is run again (so at most 3 runs).
MAX_RERUNS = 2
#: The user property under which a report carries its inconclusive measurement (it survives
#: pytest-xdist's report serialisation, unlike a plain attribute).
INCONCLUSIVE = "vrrp-lab inconclusive"
_counts = {"inconclusive": 0, "rerun": 0}
#: (test id, first line of why) of every inconclusive measurement, for the summary.
_spoiled_tests: list[tuple[str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the plugin's options."""
    group = parser.getgroup("vrrp-lab")
    group.addoption(
        "--keep-lab-on-failure",
        action="store_true",
        help="keep a failed test's lab up for inspection until `vrrp-lab down`",
    )
    group.addoption(
        "--impl",
        action="append",
        default=None,
        metavar="NAME",
        help="VRRP implementation(s) for tests taking the `impl` fixture (repeatable; "
        "default: keepalived)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise the ``impl`` fixture over the implementations named by ``--impl``."""
    if "impl" in metafunc.fixturenames:
        impls = metafunc.config.getoption("impl") or ["keepalived"]
        metafunc.parametrize("impl", impls, scope="module")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``lab`` and ``timing`` markers; a pytest-xdist worker takes a session of
    its own (:func:`lab.linux.own_session`: the workers measure, and in the session of the
    run that started them they would share one scheduler autogroup among them all). It still
    ends with the run: xdist's workers leave when their channel to the controller closes."""
    if hasattr(config, "workerinput"):
        from lab.linux import own_session

        own_session()
    config.addinivalue_line(
        "markers", "lab: the test builds network namespaces (skipped where they are refused)"
    )
    config.addinivalue_line(
        "markers",
        "timing: the test judges a measured time at a tolerance other labs' load could cross "
        "(sub-second timers); run it alone",
    )


_environment_problem: list[str | None] = []


def _namespaces_problem() -> str | None:
    """Why labs cannot run here, or None; asked once per session."""
    if not _environment_problem:
        try:
            check_environment()
            _environment_problem.append(None)
        except LabError as exc:
            _environment_problem.append(str(exc))
    return _environment_problem[0]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``lab``-marked tests, with the reason, where namespaces are refused."""
    if item.get_closest_marker("lab") is not None:
        problem = _namespaces_problem()
        if problem:
            pytest.skip(f"lab test needs network namespaces: {problem}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember which phases failed, so fixtures can keep a failed test's lab; mark an
    inconclusive measurement (see :func:`pytest_runtest_protocol`)."""
    report = _mark_inconclusive(item, call, (yield))
    # An inconclusive run that will be run again is no failure to keep a lab for.
    again = _inconclusive(report) is not None and item.stash.get(_attempt_key, 1) <= MAX_RERUNS
    item.stash.setdefault(_failed_key, {})[report.when] = report.failed and not again
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """Run a test; run it again (at most :data:`MAX_RERUNS` times) while its measurement is
    inconclusive. A re-run attempt is reported with the outcome ``rerun``."""
    from _pytest.runner import runtestprotocol

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    item.stash[_spoiled_key] = []
    for attempt in range(1, MAX_RERUNS + 2):
        item.stash[_attempt_key] = attempt
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        spoiled = any(_inconclusive(r) for r in reports)
        last = not spoiled or attempt == MAX_RERUNS + 1
        for report in reports:
            if not last and _inconclusive(report):
                report.outcome = "rerun"  # type: ignore[assignment]
            item.ihook.pytest_runtest_logreport(report=report)
        if last:
            break
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _inconclusive(report: pytest.TestReport) -> str | None:
    return next((v for k, v in report.user_properties if k == INCONCLUSIVE), None)


def _mark_inconclusive(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> pytest.TestReport:
    """Mark a report whose exception is :class:`Inconclusive`; on the last run, fail it with
    every run's stall and the words "host too noisy"."""
    if call.excinfo is None or not call.excinfo.errisinstance(Inconclusive):
        return report
    spoiled = item.stash.setdefault(_spoiled_key, [])
    spoiled.append(str(call.excinfo.value))
    report.user_properties.append((INCONCLUSIVE, str(call.excinfo.value)))
    if item.stash.get(_attempt_key, 1) > MAX_RERUNS:
        runs = "\n".join(f"  run {i}: {text}" for i, text in enumerate(spoiled, 1))
        report.longrepr = (
            f"host too noisy: the measurement was inconclusive in all {len(spoiled)} runs "
            f"(a host stall longer than the tolerance overlapped it each time):\n{runs}"
        )
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """Show a re-run attempt as ``R`` / ``RERUN``."""
    if report.outcome == "rerun":
        return "rerun", "R", "RERUN"
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count inconclusive measurements and re-runs (on the controller too, under xdist)."""
    why = _inconclusive(report)
    if why is not None:
        _counts["inconclusive"] += 1
        _spoiled_tests.append((report.nodeid, why.splitlines()[0]))
    if report.outcome == "rerun":
        _counts["rerun"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many measurements were inconclusive and how many tests re-ran, then one line per
    inconclusive measurement naming the test and the stall that spoiled it."""
    if _counts["inconclusive"] or _counts["rerun"]:
        terminalreporter.write_line(
            f"vrrp-lab: {_counts['inconclusive']} measurements inconclusive, "
            f"{_counts['rerun']} re-run"
        )
        for nodeid, why in _spoiled_tests:
            terminalreporter.write_line(f"  inconclusive {nodeid}: {why}")


@pytest.fixture
def stall_witness() -> Iterator[StallWitness]:
    """The host's scheduling stalls during the test (:class:`lab.stalls.StallWitness`).
    Function scope; no dependencies.

    ``stall_witness.check(start, end, tolerance, what)`` raises :class:`Inconclusive` when a
    stall longer than ``tolerance`` overlapped [start, end] (lab-clock seconds): call it over a
    measured window before asserting on the time measured; the test is then run again.
    """
    with StallWitness() as witness:
        yield witness


@pytest.fixture(scope="session")
def lab_scenario() -> Path:
    """The scenario that ``lab`` and ``module_lab`` build. Session scope; no dependencies.

    Override it in a module or conftest (any scope up to the lab fixture's) to build another
    scenario, or parametrise it indirectly.
    """
    return DEFAULT_SCENARIO


def _keep_if_failed(request: pytest.FixtureRequest, lab: Lab, failed: bool) -> None:
    if not (failed and request.config.getoption("keep_lab_on_failure")):
        return
    from lab.cli import hold  # imported late: the CLI pulls in rich, which tests rarely need

    first = next(iter(lab.nodes))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    message = (
        f"\n[vrrp-lab] {request.node.nodeid} failed; lab {lab.id} is kept up.\n"
        f"  vrrp-lab exec --lab {lab.id} {first} -- ip -br addr\n"
        f"  vrrp-lab shell --lab {lab.id} {first}\n"
        f"  vrrp-lab down --lab {lab.id}    (tears it down and lets pytest go on)\n"
    )
    if reporter is not None:
        reporter.write_line(message)
    with contextlib.suppress(KeyboardInterrupt):
        hold(lab)


def _scenario_from(source: str | Path | Scenario) -> Scenario:
    if isinstance(source, Scenario):
        return source
    if isinstance(source, str) and "\n" in source:
        return parse_scenario(source, "<inline scenario>")
    return load_scenario(source)


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_scenario: Path | str | Scenario) -> Iterator[Lab]:
    """A started lab of ``lab_scenario``. Function scope: every test gets a fresh lab.

    Depends on ``lab_scenario``. Torn down after the test, or kept with --keep-lab-on-failure.
    """
    with Lab(_scenario_from(lab_scenario)) as built:
        yield built
        failed = request.node.stash.get(_failed_key, {}).get("call", False)
        _keep_if_failed(request, built, failed)


@pytest.fixture(scope="module")
def module_lab(
    request: pytest.FixtureRequest, lab_scenario: Path | str | Scenario
) -> Iterator[Lab]:
    """A started lab of ``lab_scenario`` shared by a module's tests. Module scope.

    Depends on ``lab_scenario``. Cheaper than ``lab`` when tests only read the lab; tests that
    break things (faults, port changes) should take the function-scoped ``lab``.
    """
    with Lab(_scenario_from(lab_scenario)) as built:
        yield built


@pytest.fixture
def make_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    """A factory: ``make_lab(path_or_yaml_or_scenario)`` builds and starts a lab. Function scope.

    No dependencies. Every lab it made is torn down after the test, newest first.
    """
    made: list[Lab] = []

    def factory(source: str | Path | Scenario, **kwargs: Any) -> Lab:
        built = Lab(_scenario_from(source), **kwargs).start()
        made.append(built)
        return built

    yield factory
    failed = request.node.stash.get(_failed_key, {}).get("call", False)
    for built in reversed(made):
        try:
            _keep_if_failed(request, built, failed)
        finally:
            built.close()


@pytest.fixture
def routers(lab: Lab, impl: str) -> Iterator[Any]:
    """The routers of ``lab``'s scenario, started with implementation ``impl``. Function scope.

    Depends on ``lab`` and ``impl``. Yields a dict of routers by node name; each is stopped
    gracefully at teardown, before the lab goes.
    """
    yield start_routers(lab, lab.scenario.routers, impl_override=impl)
