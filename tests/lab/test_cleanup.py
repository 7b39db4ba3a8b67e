"""Nothing outlives a lab, however its runner ends (issue 2, "what it must show" 2)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import linux
from lab.errors import WaitTimeout
from lab.host_state import HostState, differences, snapshot
from lab.registry import running_labs
from lab.wait import wait_until
from tests.support.hoststate import (
    NamespaceWatch,
    assert_namespaces_gone,
    default_sigint,
)

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "scenarios" / "seed.yaml"


def start_runner(mode: str, scenario: Path = SEED) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.lab_runner", str(scenario), mode],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"runner printed nothing; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, json.loads(line)


def wait_exit(proc: subprocess.Popen[str], timeout: float) -> int:
    """The runner's exit code; if it has not exited within ``timeout``, fail with what it was
    doing: its state, its kernel wait channel and every thread's Python stack."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = linux.process_state(proc.pid)
        try:
            wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
        except OSError:
            wchan = "?"
        proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
        assert proc.stderr is not None
        dumped = ""
        deadline = time.monotonic() + 5
        while "most recent call first" not in dumped and time.monotonic() < deadline:
            readable, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            if not readable:
                break
            chunk = os.read(proc.stderr.fileno(), 65536).decode(errors="replace")
            if not chunk:
                break
            dumped += chunk
        proc.kill()
        _, rest = proc.communicate(timeout=10)
        err = dumped + (rest or "")
        raise AssertionError(
            f"the runner (pid {proc.pid}) had not exited {timeout:g}s on; state {state}, "
            f"waiting in {wchan}; its stderr:\n{err}"
        ) from None


def assert_lab_gone(info: dict, before: HostState) -> None:
    """Every process and namespace of the lab is gone and the root namespace is unchanged."""
    wait_until(
        lambda: [pid for pid in [info["init_pid"], *info["pids"]] if linux.pid_alive(pid)],
        accept=lambda alive: not alive,
        timeout=10,
        what="the lab's keeper and init processes to exit",
    )
    assert_namespaces_gone(set(info["inodes"]), timeout=10, whose=f"lab {info['id']}")
    assert differences(before, snapshot()) == []
    assert info["id"] not in [record.id for record in running_labs()]


def test_normal_exit_leaves_nothing(host_state: HostState) -> None:
    proc, info = start_runner("exit")
    assert wait_exit(proc, 30) == 0
    assert_lab_gone(info, host_state)


def test_exception_leaves_nothing(host_state: HostState) -> None:
    proc, info = start_runner("exception")
    assert wait_exit(proc, 30) == 1
    assert "deliberate failure" in proc.stderr.read()  # type: ignore[union-attr]
    assert_lab_gone(info, host_state)


def test_sigint_leaves_nothing(host_state: HostState) -> None:
    proc, info = start_runner("wait")
    proc.send_signal(signal.SIGINT)
    assert wait_exit(proc, 30) != 0
    assert_lab_gone(info, host_state)


def test_sigint_taken_by_another_thread_leaves_nothing(host_state: HostState) -> None:
    """The kernel may hand SIGINT to any thread of the runner. Here the main thread blocks it,
    so one of the lab's threads must take it: a plain blocking read in the main thread then
    never returned (the 30 s timeouts under ``-n 2``); the runner must still tear down."""
    proc, info = start_runner("wait-other-thread")
    proc.send_signal(signal.SIGINT)
    assert wait_exit(proc, 30) != 0
    assert_lab_gone(info, host_state)


def test_sigkill_of_the_runner_leaves_nothing(host_state: HostState) -> None:
    """The runner gets no chance to clean up: the kernel must do it all."""
    proc, info = start_runner("wait")
    assert all(linux.pid_alive(pid) for pid in info["pids"]), "the lab should be up"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert_lab_gone(info, host_state)


def test_sigkill_of_the_runner_leaves_no_service_process(host_state: HostState) -> None:
    """haproxy, the backend, the HTTP clients and the routers that run the health checks all
    die with the lab when its runner is SIGKILLed (issue 15)."""
    proc, info = start_runner("wait-service", REPO / "scenarios" / "seed-haproxy.yaml")
    pids = info["service_pids"]
    assert len(pids) == 6, f"two haproxy, the backend, the client and two routers: {pids}"
    assert all(linux.pid_alive(pid) for pid in pids), "the service should be up"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert_lab_gone(info, host_state)
    wait_until(
        lambda: [pid for pid in pids if linux.pid_alive(pid)],
        accept=lambda alive: not alive,
        timeout=10,
        what="haproxy, the backend, the clients and the routers to exit",
    )


def test_failed_build_unwinds(host_state: HostState) -> None:
    """A lab whose build fails half-way (here: a keeper that cannot start) undoes what it made."""
    from lab import Lab
    from lab.scenario import load_scenario

    lab = Lab(load_scenario(SEED))
    victim = lab.nodes["observer"]
    victim.hostname = "x" * 300  # sethostname() refuses names longer than 64 bytes
    with pytest.raises(Exception, match="keeper of observer"):
        lab.start()
    info = {"init_pid": lab.sandbox.init_pid, "pids": [], "inodes": [], "id": lab.id}
    assert_lab_gone(info, host_state)


def test_the_leak_check_catches_a_namespace_left_behind() -> None:
    """The check is keyed on one runner's namespaces, and still sees a real leak: a process
    that escaped its runner's sandbox and holds a network namespace after the runner is gone."""
    escape = (
        "import subprocess, sys\n"
        "p = subprocess.Popen(['unshare', '--net', 'sleep', '60'], start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", escape], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert runner.stdout is not None
    escaped = int(runner.stdout.readline())
    try:
        with NamespaceWatch(runner.pid) as watch:
            made = wait_until(
                watch.seen, timeout=10, what="the watch to see the runner's namespace"
            )
        runner.kill()
        runner.wait()
        with pytest.raises(WaitTimeout, match="no process to hold the network namespaces"):
            assert_namespaces_gone(made, timeout=0.5, whose="the escaped process")
    finally:
        os.kill(escaped, signal.SIGKILL)
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert_namespaces_gone(made, timeout=10, whose="the escaped process, once killed")
