"""Running labs, found from another terminal: one small JSON record per lab.

``vrrp-lab up`` (and every :class:`lab.Lab`) writes a record naming its runner's pid and each
node's keeper pid, so that ``vrrp-lab exec NODE -- CMD`` can enter the node with ``nsenter`` and
``vrrp-lab down`` can ask the runner to tear the lab down. A record whose runner is gone (the
runner was SIGKILLed: its lab went with it) is stale and removed when read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import linux
from lab.errors import LabError, UsageError, WaitTimeout
from lab.sandbox import outer_uid
from lab.wait import wait_until

#: How long `vrrp-lab down` waits in silence before it says what the teardown waits on.
SAY_AFTER = 2.0


def registry_dir() -> Path:
    """``/run/vrrp-lab`` for root, a per-user runtime directory otherwise."""
    uid = outer_uid()
    if uid == 0:
        return Path("/run/vrrp-lab")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "vrrp-lab" if runtime else Path(f"/tmp/vrrp-lab-{uid}")


@dataclass
class LabRecord:
    """What another terminal needs to reach a running lab."""

    id: str
    scenario: str
    runner_pid: int
    rootless: bool
    nodes: dict[str, int] = field(default_factory=dict)
    """Node name → keeper pid (the fabric is the node ``fabric``)."""
    holding: bool = False
    """True when the runner waits for ``vrrp-lab down`` (``up``, or a kept failed test)."""
    vips: list[str] = field(default_factory=list)
    """The scenario's VIPs: what ``vrrp-lab inject`` adverts claim when none are given."""
    teardown_bound: float = 5.0
    """Seconds the runner may take to tear the lab down once asked: the sandbox's own
    teardown plus the longest graceful stop allowed to any router it runs
    (:meth:`lab.lab.Lab.allow_teardown`). ``vrrp-lab down`` waits this long, no more."""

    def path(self) -> Path:
        """Where this record is stored."""
        return registry_dir() / f"{self.id}.json"

    def save(self) -> None:
        """Write the record atomically."""
        directory = registry_dir()
        tmp = directory / f".{self.id}.tmp"
        for last_try in (False, True):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                tmp.write_text(json.dumps(asdict(self), indent=1))
                break
            except FileNotFoundError:  # another lab's remove() took the empty directory away
                if last_try:
                    raise
        tmp.replace(self.path())

    def remove(self) -> None:
        """Delete the record, and the registry directory with it once no record is left (so
        that a lab leaves nothing behind); another lab's records keep it."""
        with contextlib.suppress(FileNotFoundError):
            self.path().unlink()
        with contextlib.suppress(OSError):  # not empty: another lab is registered
            registry_dir().rmdir()

    def nsenter_argv(self, node: str) -> list[str]:
        """``nsenter`` arguments that enter ``node``'s namespaces and the lab's PID namespace."""
        try:
            pid = self.nodes[node]
        except KeyError:
            raise UsageError(
                f"lab {self.id} has no node {node!r}; its nodes are: {', '.join(self.nodes)}"
            ) from None
        argv = ["nsenter", f"--target={pid}", "--net", "--mount", "--uts", "--pid"]
        if self.rootless:
            argv[1:1] = ["--user", "--preserve-credentials"]
        return argv


def lab_processes(record: LabRecord) -> list[tuple[int, str, str]]:
    """(pid, command name, state) of every process still in the lab's PID namespace.

    The lab's processes are found by the PID namespace of its node keepers, so nothing
    another lab or the rest of the machine runs is counted. Empty once the sandbox is gone.
    """
    pidns: set[int] = set()
    for pid in record.nodes.values():
        with contextlib.suppress(OSError):
            pidns.add(os.stat(f"/proc/{pid}/ns/pid").st_ino)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.stat(entry / "ns" / "pid").st_ino not in pidns:
                continue
            comm, _, rest = (entry / "stat").read_text().partition(" (")[2].rpartition(") ")
        except OSError:
            continue  # it ended while we looked
        found.append((int(entry.name), comm, rest.split()[0]))
    return sorted(found)


#: /proc/PID/stat state letters, in words, for messages about what a teardown waits on.
_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "in uninterruptible wait",
    "T": "stopped",
    "t": "stopped by a tracer",
    "Z": "a zombie",
}


def describe_teardown(record: LabRecord) -> str:
    """What the teardown of ``record``'s lab still waits on, in one line."""
    runner = linux.process_state(record.runner_pid)
    parts = [
        f"runner pid {record.runner_pid} " + (_STATES.get(runner, runner) if runner else "gone")
    ]
    left = lab_processes(record)
    if left:
        parts.append(
            "still in the lab: "
            + ", ".join(f"{comm} (pid {pid}, {_STATES.get(st, st)})" for pid, comm, st in left)
        )
    return "; ".join(parts)


def await_teardown(record: LabRecord, say: Callable[[str], None] | None = None) -> str:
    """Wait until ``record``'s runner has torn its lab down; return how it ended, in words.

    It has when the runner removed the record (its last teardown step), or when the runner is
    gone and nothing is left in the lab's PID namespace: a runner that died without removing
    its record took the lab along (the sandbox dies with its runner), and the stale record is
    removed here. The wait lasts the record's :attr:`~LabRecord.teardown_bound`; past
    :data:`SAY_AFTER` it tells ``say`` once what it is waiting on. On timeout,
    :class:`LabError` names the runner's state and every process still in the lab.
    """

    def ended() -> str | None:
        if not record.path().exists():
            return "torn down"
        if not linux.pid_alive(record.runner_pid) and not lab_processes(record):
            record.remove()
            return "torn down (its runner exited without removing its record)"
        return None

    what = f"lab {record.id}'s runner (pid {record.runner_pid}) to tear it down"
    bound = record.teardown_bound
    quiet = min(SAY_AFTER, bound)
    try:
        return wait_until(ended, timeout=quiet, what=what)  # type: ignore[return-value]
    except WaitTimeout:
        if say is not None:
            say(
                f"lab {record.id}: waiting up to {bound - quiet:g}s more for its teardown: "
                f"{describe_teardown(record)}"
            )
    try:
        return wait_until(ended, timeout=bound - quiet, what=what)  # type: ignore[return-value]
    except WaitTimeout:
        raise LabError(
            f"lab {record.id} was not torn down within {bound:g}s of SIGTERM: "
            f"{describe_teardown(record)}"
        ) from None


def running_labs() -> list[LabRecord]:
    """Every lab whose runner is still alive; stale records are removed on the way."""
    out = []
    directory = registry_dir()
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            record = LabRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if linux.pid_alive(record.runner_pid) and all(map(linux.pid_alive, record.nodes.values())):
            out.append(record)
        else:
            record.remove()
    return out


def find_lab(lab_id: str | None) -> LabRecord:
    """The running lab called ``lab_id``, or the only one running when ``lab_id`` is None."""
    labs = running_labs()
    if lab_id is not None:
        matches = [r for r in labs if r.id == lab_id or r.id.startswith(lab_id)]
        if len(matches) == 1:
            return matches[0]
        raise UsageError(
            f"no running lab matches {lab_id!r}; running: {', '.join(r.id for r in labs) or 'none'}"
        )
    if not labs:
        raise UsageError("no lab is running; start one with `vrrp-lab up [SCENARIO]`")
    if len(labs) > 1:
        raise UsageError(
            f"{len(labs)} labs are running ({', '.join(r.id for r in labs)}); "
            "pick one with --lab ID"
        )
    return labs[0]
