"""The plugin's handling of inconclusive measurements, run in a child pytest on a test file.

The tests in the file are real measurements spoiled for certain: a stall witness's own probe
is SIGSTOPped for longer than the tolerance inside the measured window.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SPOILED = textwrap.dedent(
    """
    import os, signal, time
    from pathlib import Path
    from lab import clock

    def freeze(witness):
        probe = witness._probes[0].proc
        os.kill(probe.pid, signal.SIGSTOP)
        time.sleep(0.06)  # the fault: a 60 ms freeze, three times the tolerance
        os.kill(probe.pid, signal.SIGCONT)

    def test_always_spoiled(stall_witness):
        began = clock.now()
        freeze(stall_witness)
        stall_witness.check(began, clock.now(), 0.020, "always spoiled")

    def test_spoiled_once(stall_witness, tmp_path_factory):
        marker = Path(os.environ["MARKER"])
        began = clock.now()
        if not marker.exists():
            marker.write_text("spoiled")
            freeze(stall_witness)
        stall_witness.check(began, clock.now(), 0.020, "spoiled once")
    """
)


def test_an_inconclusive_test_reruns_twice_then_fails_as_host_too_noisy(tmp_path: Path) -> None:
    (tmp_path / "test_spoiled.py").write_text(SPOILED)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_spoiled.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"MARKER": str(tmp_path / "marker"), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "1 failed, 1 passed, 3 rerun" in out, out
    assert "host too noisy: the measurement was inconclusive in all 3 runs" in out, out
    assert out.count("always spoiled: inconclusive: a ") >= 3, out
    assert "vrrp-lab: 4 measurements inconclusive, 3 re-run" in out, out
    # ... and each one is named with its stall, so a noisy CI log says which test and when.
    assert out.count("  inconclusive test_spoiled.py::test_always_spoiled: ") == 3, out
    assert out.count("  inconclusive test_spoiled.py::test_spoiled_once: ") == 1, out
