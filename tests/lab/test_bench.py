"""`vrrp-lab bench`, as a user runs it: a quick sweep from flags writes results, summaries and
plots whose verdicts are the RFC's; a sweep killed halfway resumes without repeating or losing
a trial; `bench compare` gates on a planted regression and not on a re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.stalls import inconclusive_from_dict
from lab.sweep.compare import MIN_TRIALS
from lab.sweep.results import RESULTS, read
from lab.wait import wait_until

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-m", "lab", "bench"]
#: Two cells of two trials: the bundled daemon stopped at 0.1 s and 0.05 s adverts.
QUICK = [
    "--scenario", "short-timers", "--impl", "bundled", "--advert-int", "0.1,0.05",
    "--fault", "stop", "--trials", "2", "--jobs", "1",
]  # fmt: skip
#: What a sweep of a few trials may take at most: each is a lab build, a start at 0.1 s timers
#: and a teardown, a few seconds; this is a deadline, not a wait.
SWEEP_TIMEOUT = 240


def bench(*args: str, timeout: float = SWEEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def judged(out: Path, measured: int = 1) -> dict:
    """The summary of a finished sweep in ``out``. A cell left with fewer than ``measured``
    measured trials because host stalls spoiled the others makes the test inconclusive, to be
    re-run (every trial spoiled, by default; `bench compare` needs five a cell)."""
    summary = json.loads((out / "summary.json").read_text())
    _, records = read(out / RESULTS)
    for cell in summary["cells"]:
        if cell["measured"] < measured:
            spoiled = [r for r in records if r.cell.key == cell["cell"] and r.inconclusive]
            if spoiled:
                raise inconclusive_from_dict(spoiled[0].inconclusive)
    return summary


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The quick sweep, run once for the module. Module scope; no dependencies."""
    out = tmp_path_factory.mktemp("quick")
    return out, bench(*QUICK, "--out", str(out))


@pytest.mark.timing
def test_a_quick_sweep_writes_results_summaries_and_plots(quick):
    out, done = quick
    assert done.returncode in (0, 1), done.stderr
    summary = judged(out)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    header, records = read(out / RESULTS)
    assert header["sweep"] == "quick"
    assert sorted((r.cell.advert_int, r.trial) for r in records) == [
        (0.05, 0), (0.05, 1), (0.1, 0), (0.1, 1)
    ]  # fmt: skip
    for record in records:
        assert record.versions.get("vrrp-lab"), record
        assert record.outcome in ("measured", "inconclusive"), record.error
    cells = summary["cells"]
    assert len(cells) == 2
    for cell in cells:
        for key in ("impl", "fault", "advert_int", "priority", "profile", "load", "trials",
                    "errors", "inconclusive", "theory_ms", "detection_ms", "outage_ms",
                    "spurious_transitions"):  # fmt: skip
            assert key in cell, key
        assert set(cell["detection_ms"]) >= {"p50", "p95", "max", "ci95"}
        # The RFC's figure for a stop is the backup's Skew_Time; the verdict holds it to a
        # fifth of the interval.
        assert cell["verdict"] == "pass", cell["verdict_reason"]
        assert cell["spurious_transitions"] == 0
    md = (out / "summary.md").read_text()
    assert md.count("| bundled ") == 2
    for plot in ("detection_vs_advert.png", "outage_ecdf.png", "error_vs_theory.png",
                 "timeline.png"):  # fmt: skip
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot


def test_an_existing_sweep_is_kept_without_resume(quick):
    out, _ = quick
    before = (out / RESULTS).read_bytes()
    again = bench(*QUICK, "--out", str(out))
    assert again.returncode == 2
    assert "--resume" in again.stderr and "Traceback" not in again.stderr
    assert (out / RESULTS).read_bytes() == before


def test_a_sweep_killed_halfway_resumes_without_repeating_or_losing_a_trial(tmp_path: Path):
    args = [*QUICK, "--out", str(tmp_path)]
    sweep = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = tmp_path / RESULTS
    try:
        wait_until(
            lambda: results.exists() and results.read_text().count('"type": "trial"') >= 1,
            timeout=SWEEP_TIMEOUT,
            what="the sweep to record its first trial",
        )
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait(timeout=30)
        sweep.stderr.close()
    _, first = read(results)
    assert 1 <= len(first) < 4, "the kill came after the whole sweep"
    resumed = bench(*args, "--resume")
    assert resumed.returncode in (0, 1), resumed.stderr
    assert f"{len(first)} already recorded" in resumed.stderr
    _, records = read(results)
    keys = [(r.cell.key, r.trial) for r in records]
    assert len(keys) == len(set(keys)) == 4
    assert records[: len(first)] == first  # what was done before the kill is kept as it was


#: One cell, the five trials `bench compare` needs to judge it (`lab.sweep.compare`).
ONE_CELL = [
    "--scenario", "short-timers", "--impl", "bundled", "--advert-int", "0.05",
    "--fault", "stop", "--trials", "5", "--jobs", "2",
]  # fmt: skip


@pytest.mark.timing
def test_compare_flags_a_slower_backup_and_not_a_rerun(tmp_path: Path):
    first, rerun, slower = tmp_path / "first", tmp_path / "rerun", tmp_path / "slower"
    for out, extra in ((first, []), (rerun, []), (slower, ["--priority", "50"])):
        # Priority 50 instead of 100: Skew_Time 0.80 of an interval instead of 0.61.
        assert bench(*ONE_CELL, *extra, "--out", str(out)).returncode in (0, 1)
        judged(out, measured=MIN_TRIALS)
    same = bench("compare", str(first), str(rerun))
    assert same.returncode == 0, same.stdout
    assert "no median moved" in same.stdout
    moved = bench("compare", str(first), str(slower))
    assert moved.returncode == 1, moved.stdout
    assert "prio100→prio50" in moved.stdout and "detection" in moved.stdout


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_finished_trials_and_the_running_one(tmp_path: Path):
    sweep = subprocess.Popen(
        [*CLI, *QUICK, "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a terminal starts it: an xdist worker ignores SIGINT, and a child that inherits
        # an ignored SIGINT keeps ignoring it (Python installs no handler then).
        preexec_fn=_default_sigint,
    )
    results = tmp_path / RESULTS
    try:
        wait_until(
            lambda: results.exists() and results.read_text().count('"type": "trial"') >= 1,
            timeout=SWEEP_TIMEOUT,
            what="the sweep to record its first trial",
        )
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=SWEEP_TIMEOUT)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 130, err
    assert "interrupted: finishing 1 running trial" in err
    assert "--resume" in err and "Traceback" not in err
    _, records = read(results)
    # The trial running at the Ctrl-C was let finish and recorded: none is lost.
    assert 2 <= len(records) < 4
    assert all(r.outcome != "error" for r in records), [r.error for r in records]
    assert (tmp_path / "summary.json").exists()
