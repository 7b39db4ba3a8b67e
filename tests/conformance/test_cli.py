"""`vrrp-lab conformance` as a user runs it: cells side by side, the matrix, the JSON, the pcaps,
and how it ends when interrupted or killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import linux
from lab.conformance.verdict import Verdict
from lab.host_state import HostState, differences, snapshot
from lab.wait import wait_until
from tests.support.hoststate import (
    NamespaceWatch,
    assert_namespaces_gone,
    default_sigint,
)

pytestmark = pytest.mark.lab


def test_two_columns_side_by_side(tmp_path: Path) -> None:
    """Two workers run four cells, each in its own lab; the matrix, the JSON and the captures
    come out whole and in row order, and nothing of the labs is left on the host."""
    before = snapshot()
    report, pcaps = tmp_path / "conformance.json", tmp_path / "pcap"
    run = subprocess.run(
        [sys.executable, "-m", "lab", "conformance", "--impl", "bundled,bundled-9568",
         "--rows", "F06,P01", "--jobs", "2", "--json", str(report), "--pcap", str(pcaps)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # Progress: one line per cell on stderr, numbered as each comes in, whatever its order.
    progress = [line.split(":")[0] for line in run.stderr.splitlines() if line.startswith("[")]
    assert sorted(line.split("]")[0] for line in progress) == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert sorted(progress_cells(progress)) == [
        "bundled F06", "bundled P01", "bundled-9568 F06", "bundled-9568 P01",
    ]  # fmt: skip
    assert "IPv4 and IPv6" in run.stdout
    data = json.loads(report.read_text())
    for cell in data["verdicts"]:
        Verdict(**cell).raise_if_inconclusive()  # a host stall spoiled a cell: run again
    # A cell that did not pass is told whole: its reason, evidence, frames and the stalls seen.
    unexpected = [v for v in data["verdicts"] if v["outcome"] != "pass"]
    assert not unexpected, json.dumps(unexpected, indent=1)[:6000]
    assert "bundled: 2 pass, 0 fail, 0 n/a of 2 rows" in run.stdout
    assert "bundled-9568: 2 pass, 0 fail, 0 n/a of 2 rows" in run.stdout
    cells = [(v["iut"], v["row"], v["outcome"], v["families"]) for v in data["verdicts"]]
    both = {"IPv4": "pass", "IPv6": "pass"}
    # Column then row order, as asked, whichever cell finished first.
    assert cells == [
        ("bundled", "F06", "pass", both),
        ("bundled", "P01", "pass", both),
        ("bundled-9568", "F06", "pass", both),
        ("bundled-9568", "P01", "pass", both),
    ]
    # F06 tells the modes apart: 5798 discards a losing advert, 9568 answers it at once.
    reasons = {v["iut"]: v["reason"] for v in data["verdicts"] if v["row"] == "F06"}
    assert "RFC 5798: discarded" in reasons["bundled"]
    assert "RFC 9568: answered each losing advert at once" in reasons["bundled-9568"]
    assert sorted(p.name.split("-conf")[0] for p in pcaps.glob("*.pcapng")) == sorted(
        ["bundled-F06", "bundled-P01", "bundled-9568-F06", "bundled-9568-P01"]
    )
    for verdict in data["verdicts"]:
        assert Path(verdict["pcap"]).stat().st_size > 0
    assert differences(before, snapshot()) == []


def progress_cells(lines: list[str]) -> list[str]:
    """``[2/4] bundled P01`` -> ``bundled P01``."""
    return [line.split("] ", 1)[1] for line in lines]


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``: the runner's cell workers, and multiprocessing's
    resource tracker."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _workers(pids: set[int]) -> int:
    """How many of ``pids`` are cell workers (spawned interpreters running ``spawn_main``)."""
    count = 0
    for pid in pids:
        try:
            count += b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    return count


def _start_two_cells(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int], NamespaceWatch]:
    """The runner with two long cells under way in its two workers, each holding a bench lab;
    also the watch that knows the namespaces of the runner's own labs (and no other lab's)."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "lab", "conformance", "--impl", "bundled", "--rows", "T02,T03",
         "--jobs", "2", "--pcap", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )  # fmt: skip
    watch = NamespaceWatch(runner.pid).start()
    # A bench is five network namespaces (the fabric and four nodes): wait for two of them.
    wait_until(
        lambda: len(watch.seen()),
        accept=lambda made: made >= 10,
        timeout=60,
        what="both workers to hold a bench lab (network namespaces below the runner)",
    )
    return runner, _children(runner.pid), watch


def _assert_all_gone(workers: set[int], watch: NamespaceWatch, host: HostState) -> None:
    """The runner's workers have exited and no process holds any namespace its labs made."""
    made = watch.stop()
    wait_until(
        lambda: {pid for pid in workers if linux.pid_alive(pid)},
        accept=lambda alive: not alive,
        timeout=30,
        what="the runner's worker and tracker processes to exit",
    )
    assert len(made) >= 10, made
    assert_namespaces_gone(made, timeout=30, whose="the runner's bench labs")
    assert differences(host, snapshot()) == []


def test_ctrl_c_lets_running_cells_tear_down(tmp_path: Path) -> None:
    """Ctrl-C drops the queued cells; the running ones end and take their labs down."""
    host = snapshot()
    runner, workers, watch = _start_two_cells(tmp_path)
    assert _workers(workers) == 2, workers
    runner.send_signal(signal.SIGINT)
    _out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert "interrupted: waiting for 2 running cell(s) to tear down" in err
    assert "Traceback" not in err
    _assert_all_gone(workers, watch, host)


def test_killed_runner_takes_its_workers_and_labs_along(tmp_path: Path) -> None:
    """SIGKILL leaves the runner no chance to clean up: the workers die with it (parent-death
    signal), and their labs with them."""
    host = snapshot()
    runner, workers, watch = _start_two_cells(tmp_path)
    assert _workers(workers) == 2, workers
    runner.kill()
    runner.communicate(timeout=10)
    _assert_all_gone(workers, watch, host)
    # A SIGKILLed worker could not remove its labs' registry records: the registry drops such
    # stale records at its next read (`vrrp-lab list`, `down`), and leaves none behind.
    from lab.registry import registry_dir, running_labs

    def records_of_workers() -> list[Path]:
        found = []
        for path in registry_dir().glob("*.json"):
            try:
                runner_pid = json.loads(path.read_text())["runner_pid"]
            except (OSError, ValueError, KeyError):
                continue
            if runner_pid in workers:
                found.append(path)
        return found

    assert all(r.runner_pid not in workers for r in running_labs())
    assert records_of_workers() == []
