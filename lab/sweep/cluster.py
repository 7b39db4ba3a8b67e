"""Running a sweep's trials on an existing dask.distributed cluster: ``bench --cluster ADDRESS``.

Each worker host runs ``dask worker tcp://SCHEDULER:8786`` as root with vrrp-lab installed; the
optional extra ``vrrp-lab[cluster]`` brings dask.distributed. A trial is one task: the worker
runs the same ``python -m lab.sweep.trial`` child as a local sweep
(:func:`lab.sweep.executor.run_trial_process`), so the trial builds its lab on the worker's
host, and only the child's output comes back. The executor turns it into a record and appends it
to the same ``results.jsonl``: the file, the summaries and the verdicts do not depend on where
the trials ran. Each record's ``versions`` are the worker host's.

A task is one trial, never a cell: trials are seconds long, so a cluster of mixed hosts stays
evenly loaded, and a lost worker costs one trial (recorded as an error; ``--resume`` runs it
again). A second Ctrl-C sets a cluster-wide event that every running task polls, and the worker
stops its trial child as a local sweep would. If the client dies instead, the scheduler
forgets its tasks and each running trial ends by itself, lab torn down, unrecorded.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from lab.errors import EnvironmentMissing, UsageError
from lab.sweep.executor import TrialProcess, run_trial_process

#: How long connecting to the scheduler may take before the command gives up.
CONNECT_TIMEOUT = 10.0
EXTRA = "pip install 'vrrp-lab[cluster]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise EnvironmentMissing(f"--cluster needs dask.distributed: {EXTRA}") from None
    return distributed


def worker_facts() -> dict[str, Any]:
    """What a worker must be to run trials: root (labs need namespaces), and its vrrp-lab and
    program versions. Runs on the worker (``Client.run``)."""
    from lab import versions

    return {"euid": os.geteuid(), "versions": versions.collect()}


def remote_trial(request_text: str, timeout: float, abandon_event: str) -> TrialProcess:
    """One trial on a worker: the trial child, stopped if the sweep's abandon event is set. A
    dask task (module-level, so workers import it by name from their own vrrp-lab)."""
    distributed = _distributed()
    event = distributed.Event(abandon_event)
    return run_trial_process(request_text, timeout, event.is_set)


class ClusterLauncher:
    """Trials as tasks of the dask scheduler at ``address``; a launcher for
    :class:`lab.sweep.executor.Executor`. Connects and checks the workers at construction."""

    def __init__(self, address: str, *, local_versions: dict[str, str] | None = None) -> None:
        distributed = _distributed()
        if "://" not in address:
            raise UsageError(
                f"--cluster {address!r}: give the scheduler's address with its protocol, "
                "such as tcp://10.0.0.5:8786"
            )
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise EnvironmentMissing(
                f"--cluster {address}: no dask scheduler answered within "
                f"{CONNECT_TIMEOUT:.0f}s ({exc.__class__.__name__}); start one with "
                "`dask scheduler`, and workers with `dask worker ADDRESS` as root"
            ) from None
        except ValueError as exc:
            raise UsageError(f"--cluster {address!r}: {exc}") from None
        self.address = address
        self._event_name = f"vrrp-lab-abandon-{uuid.uuid4().hex}"
        self._abandon = distributed.Event(self._event_name, client=self.client)
        try:
            self.slots, self.warnings = self._check_workers(local_versions)
        except BaseException:
            self.client.close()
            raise

    def _check_workers(self, local_versions: dict[str, str] | None) -> tuple[int, list[str]]:
        """Refuse a cluster whose workers cannot run trials; the trials that can run at once
        (one per worker thread), and warnings about version differences."""
        threads: dict[str, int] = self.client.nthreads()
        if not threads:
            raise EnvironmentMissing(
                f"--cluster {self.address}: the scheduler has no workers; start them with "
                f"`dask worker {self.address}` as root on each host"
            )
        facts = self.client.run(worker_facts, on_error="return")
        warnings: list[str] = []
        for worker, fact in sorted(facts.items()):
            if isinstance(fact, BaseException):
                raise EnvironmentMissing(
                    f"--cluster worker {worker} cannot run vrrp-lab "
                    f"({fact.__class__.__name__}: {fact}); install vrrp-lab there: {EXTRA}"
                )
            if fact["euid"] != 0:
                raise EnvironmentMissing(
                    f"--cluster worker {worker} runs as uid {fact['euid']}; labs need root: "
                    "run `dask worker` as root"
                )
            theirs = fact["versions"]
            for name, mine in (local_versions or {}).items():
                if theirs.get(name) not in (None, mine):
                    warnings.append(
                        f"worker {worker} has {name} {theirs[name]} (here {mine}); "
                        "its records say so under versions"
                    )
        return sum(threads.values()), warnings

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        """One trial as a task; waits for it (from one of the executor's threads)."""
        future = self.client.submit(
            remote_trial, request_text, timeout, self._event_name, pure=False
        )
        ended: TrialProcess = future.result()
        return ended

    def abandon(self) -> None:
        """Every running task stops its trial child within ``ABANDON_CHECK``."""
        self._abandon.set()

    def close(self) -> None:
        """Disconnect from the scheduler."""
        self.client.close()
