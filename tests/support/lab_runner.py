"""A lab runner for the cleanup tests: build a lab, report it, then end the way argv[2] says.

Usage: python -m tests.support.lab_runner SCENARIO {exit,exception,wait}

It prints one JSON line describing the lab (keeper pids, network namespace inodes, sandbox
init pid), then either leaves the ``with`` block normally, raises inside it, or waits on stdin
so that the test can SIGINT or SIGKILL it.
"""

from __future__ import annotations

import faulthandler
import json
import signal
import sys

from lab import Lab


def main() -> int:
    # A test whose runner does not end in time asks for every thread's stack with SIGUSR1.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    scenario, mode = sys.argv[1], sys.argv[2]
    with Lab.from_scenario(scenario) as lab:
        namespaces = [lab.fabric, *lab.nodes.values()]
        print(
            json.dumps(
                {
                    "id": lab.id,
                    "init_pid": lab.sandbox.init_pid,
                    "pids": [ns.pid for ns in namespaces],
                    "inodes": [ns.netns_inode for ns in namespaces],
                }
            ),
            flush=True,
        )
        if mode == "exception":
            raise RuntimeError("deliberate failure inside the lab")
        if mode == "wait":
            sys.stdin.read()  # blocks until the test closes stdin, signals or kills us
    return 0


if __name__ == "__main__":
    sys.exit(main())
