"""What the root namespace looks like, to prove that a lab left nothing behind."""

from __future__ import annotations

import glob
import os
import subprocess
from dataclasses import dataclass


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@dataclass(frozen=True)
class HostState:
    """The parts of the root namespace a lab must leave exactly as it found them."""

    netns_list: str
    links: frozenset[str]
    routes: str
    nft_ruleset: str

    @classmethod
    def take(cls) -> HostState:
        """Snapshot the root namespace now."""
        links = _out(["ip", "-o", "link", "show"])
        names = frozenset(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
        return cls(
            netns_list=_out(["ip", "netns", "list"]),
            links=names,
            routes=_out(["ip", "route", "show", "table", "all"]),
            nft_ruleset=_out(["nft", "list", "ruleset"]),
        )


def live_netns_inodes() -> set[int]:
    """The network namespace of every process on the machine, by inode."""
    inodes = set()
    for path in glob.glob("/proc/[0-9]*/ns/net"):
        try:
            inodes.add(os.stat(path).st_ino)
        except OSError:
            continue  # the process ended while we looked
    return inodes
