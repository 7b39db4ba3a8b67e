"""``vrrp-lab bench ARGS --cluster`` against a local dask cluster of two worker processes.

Run as a script inside a network namespace of its own (``unshare --net``), so that dask's TCP
between the scheduler, the workers and the client stays off the root namespace's loopback::

    unshare --net python tests/lab/local_cluster.py --impl bundled ... --out DIR

It exits with the bench command's exit code. The worker processes are spawned, hence the
``__main__`` guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile


def main(argv: list[str]) -> int:
    """Bring ``lo`` up, start the cluster, run the bench command against it."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Dask's scratch space (its default is a dask-scratch-space directory in /tmp, which it
    # leaves behind) in a directory of its own, removed at the end: set before dask reads its
    # configuration, for the scheduler, the workers and the bench client alike.
    with tempfile.TemporaryDirectory(prefix="vrrp-lab-dask-") as scratch:
        os.environ["DASK_TEMPORARY_DIRECTORY"] = scratch
        from distributed import LocalCluster

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
