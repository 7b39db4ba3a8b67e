"""A lab runner for the cleanup tests: build a lab, report it, then end the way argv[2] says.

Usage: python -m tests.support.lab_runner SCENARIO
    {exit,exception,wait,wait-other-thread,wait-service}

``wait-service`` also starts the scenario's routers and its service (haproxy, the backend, the
HTTP clients, and the routers' health checks), and lists their pids as ``service_pids``.

It prints one JSON line describing the lab (keeper pids, network namespace inodes, sandbox
init pid), then either leaves the ``with`` block normally, raises inside it, or waits on stdin
so that the test can SIGINT or SIGKILL it.
"""

from __future__ import annotations

import faulthandler
import json
import os
import select
import signal
import sys

from lab import Lab


def await_stdin_or_signal() -> None:
    """Block until stdin has something (EOF included) or a signal comes.

    A plain ``sys.stdin.read()`` can miss SIGINT for good: the kernel may hand a process's
    signal to any of its threads (the lab runs reader threads), and then the main thread's
    read is not interrupted, so Python never gets to raise KeyboardInterrupt. The wakeup fd is
    written by the signal handler whichever thread took the signal, and wakes the select.
    """
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    try:
        select.select([sys.stdin, wake_r], [], [])
    finally:
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)


def start_service_for_test(lab: Lab) -> list[int]:
    """Start the scenario's routers and service; return the pids of haproxy, the backend and
    the clients, and of the routers' processes (their health checks are their children)."""
    from lab.routers.spec import start_routers
    from lab.service import start_service

    spec = lab.scenario.service
    assert spec is not None, "wait-service needs a scenario with a service"
    routers = start_routers(lab, lab.scenario.routers)
    service = start_service(lab, spec, proxies=spec.proxy_nodes(list(routers)), observer="observer")
    service.start_clients()
    pids = [p.pid for p in service.proxies.values()]
    pids += [service.backend.pid, service.client.pid]
    return pids + [r.pid for r in routers.values()]


def main() -> int:
    # A test whose runner does not end in time asks for every thread's stack with SIGUSR1.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    scenario, mode = sys.argv[1], sys.argv[2]
    with Lab.from_scenario(scenario) as lab:
        namespaces = [lab.fabric, *lab.fabric.hypervisors.values(), *lab.nodes.values()]
        service_pids = start_service_for_test(lab) if mode == "wait-service" else []
        print(
            json.dumps(
                {
                    "id": lab.id,
                    "init_pid": lab.sandbox.init_pid,
                    "pids": [ns.pid for ns in namespaces],
                    "inodes": [ns.netns_inode for ns in namespaces],
                    "service_pids": service_pids,
                    # engine: ovn's OVS/OVN daemons (tests/lab/test_ovn_engine.py).
                    "ovn_pids": (
                        [d.proc.pid for g in lab.fabric.ovn.groups() for d in g.daemons]
                        if lab.fabric.ovn is not None
                        else []
                    ),
                }
            ),
            flush=True,
        )
        if mode == "exception":
            raise RuntimeError("deliberate failure inside the lab")
        if mode == "wait-other-thread":
            # Only the lab's own threads may take SIGINT now: the case that hung a plain read.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        if mode.startswith("wait"):
            await_stdin_or_signal()
    return 0


if __name__ == "__main__":
    sys.exit(main())
