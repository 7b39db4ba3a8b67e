"""``vrrp-lab bench ARGS --cluster`` against a local dask cluster of two worker processes.

Run as a script inside a network namespace of its own (``unshare --net``), so that dask's TCP
between the scheduler, the workers and the client stays off the root namespace's loopback::

    unshare --net python tests/lab/local_cluster.py --impl bundled ... --out DIR

It exits with the bench command's exit code. The worker processes are spawned, hence the
``__main__`` guard.
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    """Bring ``lo`` up, start the cluster, run the bench command against it."""
    from distributed import LocalCluster

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        bench = [sys.executable, "-m", "lab", "bench", *argv]
        return subprocess.run([*bench, "--cluster", cluster.scheduler_address]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
