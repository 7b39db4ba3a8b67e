"""Every rich console the lab prints through keeps emoji codes off.

rich reads ``:cd:`` (and dozens of other codes) as an emoji, and MACs are full of such
pairs: ``02:cd:07:2c:d8:62`` printed as ``02💿07:2c:d8:62`` in a report before every console
was made with ``emoji=False``. The source is read with :mod:`ast`, so a new console anywhere
in ``lab/`` or ``benchmarks/`` without it fails here.
"""

from __future__ import annotations

import ast
import io
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[2]


def consoles_without_emoji_off() -> list[str]:
    """``file:line`` of every ``Console(...)`` call that does not pass ``emoji=False``."""
    found = []
    for root in ("lab", "benchmarks"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name != "Console":
                    continue
                emoji = [k for k in node.keywords if k.arg == "emoji"]
                off = (
                    emoji and isinstance(emoji[0].value, ast.Constant) and not emoji[0].value.value
                )
                if not off:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_console_is_made_with_emoji_off() -> None:
    assert consoles_without_emoji_off() == []


def test_a_mac_survives_a_console_with_emoji_off_and_not_one_with_it_on() -> None:
    mac = "02:cd:07:2c:d8:62"
    printed = {}
    for emoji in (True, False):
        out = io.StringIO()
        Console(file=out, emoji=emoji, highlight=False, width=80).print(mac)
        printed[emoji] = out.getvalue().strip()
    assert printed[False] == mac
    # The failure this guards against, shown on rich itself: with emoji codes on, the MAC breaks.
    assert printed[True] != mac
