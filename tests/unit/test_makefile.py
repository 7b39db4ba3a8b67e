"""`make help` is derived from the Makefile: every target says what it does in one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# A rule line: `name: prerequisites`, not a variable assignment (`:=`) nor a file target ($(...)).
RULE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(?!=)(.*)$")


def targets() -> dict[str, str]:
    """Every rule's name and the text after its ``## `` marker ('' when it has none)."""
    found = {}
    for line in MAKEFILE.read_text().splitlines():
        match = RULE.match(line)
        if match:
            _, _, doc = match.group(2).partition("## ")
            found[match.group(1)] = doc.strip()
    return found


def test_every_target_has_a_help_line() -> None:
    found = targets()
    assert {"help", "setup", "test", "wheel-check", "stress"} <= set(found), found
    undocumented = [name for name, doc in found.items() if not doc]
    assert not undocumented, (
        f"targets without a `## ` comment (make help misses them): {undocumented}"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target_once() -> None:
    res = subprocess.run(
        ["make", "-s", "-f", str(MAKEFILE), "help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=MAKEFILE.parent,
    )
    assert res.returncode == 0, res.stderr
    listed = [line.split()[1] for line in res.stdout.splitlines()]
    assert sorted(listed) == sorted(targets()), res.stdout
