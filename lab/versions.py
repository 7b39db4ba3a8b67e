"""Which versions produced a result: vrrp-lab, keepalived, FRR, the kernel and Python.

``vrrp-lab --version`` prints them, and every run report and conformance report carries the same
dict under ``versions``, so a bug report or a verdict says what it was measured with.
"""

from __future__ import annotations

import functools
import platform
import re
import shutil
import subprocess
from collections.abc import Callable
from importlib import metadata

NOT_INSTALLED = "not installed"

#: Where Debian's frr package puts its daemons (``lab.routers.frr`` runs vrrpd from there too).
FRR_VRRPD = "/usr/lib/frr/vrrpd"

_KEEPALIVED = re.compile(r"^Keepalived v(\S+)", re.M)
_VRRPD = re.compile(r"^vrrpd version (\S+)", re.M)
_VTYSH = re.compile(r"Integrated shell for FRR \(version ([^)\s]+)\)")


def parse_keepalived(text: str) -> str | None:
    """The version in ``keepalived --version`` output (which it prints to stderr), or None."""
    match = _KEEPALIVED.search(text)
    return match.group(1) if match else None


def parse_frr(text: str) -> str | None:
    """The version in ``vrrpd --version`` or ``vtysh -h`` output, or None."""
    match = _VRRPD.search(text) or _VTYSH.search(text)
    return match.group(1) if match else None


def package_version() -> str:
    """vrrp-lab's own version, from the installed package's metadata."""
    try:
        return metadata.version("vrrp-lab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package; run `make setup`)"


def _output(argv: list[str]) -> str | None:
    """stdout and stderr of ``argv`` together, or None when it cannot run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout + res.stderr


def program_version(candidates: list[list[str]], parse: Callable[[str], str | None]) -> str:
    """The first parsable version among ``candidates``; says why when there is none."""
    ran: str | None = None
    for argv in candidates:
        text = _output(argv)
        if text is None:
            continue
        version = parse(text)
        if version:
            return version
        ran = ran or (text.strip().splitlines() or ["no output"])[0]
    return NOT_INSTALLED if ran is None else f"unknown ({ran[:60]})"


@functools.cache
def _collect() -> tuple[tuple[str, str], ...]:
    return (
        ("vrrp-lab", package_version()),
        ("keepalived", program_version([["keepalived", "--version"]], parse_keepalived)),
        ("frr", program_version([[FRR_VRRPD, "--version"], ["vtysh", "-h"]], parse_frr)),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
    )


def collect() -> dict[str, str]:
    """The versions this machine runs, by component; asked once per process.

    Keys: ``vrrp-lab``, ``keepalived``, ``frr``, ``kernel``, ``python``. An absent program reads
    ``"not installed"``; one whose output holds no version reads ``"unknown (first line)"``.
    """
    return dict(_collect())


def versions_line(versions: dict[str, str]) -> str:
    """One readable line of ``versions``, for text reports."""
    names = {"frr": "FRR", "python": "Python"}
    return " · ".join(f"{names.get(k, k)} {v}" for k, v in versions.items())
