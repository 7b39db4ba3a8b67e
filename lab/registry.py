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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import linux
from lab.errors import UsageError
from lab.sandbox import outer_uid


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

    def path(self) -> Path:
        """Where this record is stored."""
        return registry_dir() / f"{self.id}.json"

    def save(self) -> None:
        """Write the record atomically."""
        directory = registry_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = directory / f".{self.id}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path())

    def remove(self) -> None:
        """Delete the record."""
        with contextlib.suppress(FileNotFoundError):
            self.path().unlink()

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
