"""Scratch directories: where a run keeps what it records but the user did not ask to keep
(its capture, without ``--pcap``), and the sweep of those a killed runner left behind.

A run removes its scratch directory at teardown (``Lab.defer``). A runner killed outright
(SIGKILL, the OOM killer, a CI job's time cap) runs no teardown: its namespaces and processes
die with it, but files stay. Each directory is therefore named after the process that made it,
and every new one first removes those whose maker is gone. A live maker's directory is never
touched, whatever its age; a dead maker's PID reused by another process keeps its directory
until that one ends too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lab.linux import pid_alive

__all__ = ["PREFIX", "scratch_directory", "sweep"]

#: The name of every scratch directory starts so, then the maker's PID and a dash.
PREFIX = "vrrp-lab-scratch-"


def _maker(path: Path) -> int | None:
    """The PID a scratch directory's name gives, or None if it is not one of ours."""
    pid, sep, _ = path.name.removeprefix(PREFIX).partition("-")
    return int(pid) if sep and pid.isdigit() else None


def sweep(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the scratch directories under ``root`` (default: the system's temporary
    directory) whose maker no longer runs; return them."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid = _maker(path)
        if pid is None or pid_alive(pid) or not path.is_dir():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def scratch_directory(
    root: str | os.PathLike[str] | None = None,
) -> tempfile.TemporaryDirectory[str]:
    """A new scratch directory named after this process, after sweeping the dead makers'."""
    sweep(root)
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
