"""Scratch directories: a killed runner's are swept by the next run, a live one's never."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.scratch import PREFIX, scratch_directory, sweep


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_dead_makers_directory_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    other = tmp_path / "vrrp-lab-something-else"
    for path in (dead, live, other):
        path.mkdir()
        (path / "run.pcapng").write_bytes(b"x")
    assert sweep(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_a_scratch_directory_is_named_after_its_maker_and_sweeps_first(tmp_path: Path) -> None:
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
    dead.mkdir()
    with scratch_directory(tmp_path) as made:
        assert Path(made).name.startswith(f"{PREFIX}{os.getpid()}-")
        assert not dead.exists()
    assert not Path(made).exists()
