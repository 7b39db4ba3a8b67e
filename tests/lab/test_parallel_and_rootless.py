"""Parallel labs never collide (pytest -n 2), and labs build rootless (issue 2, points 3–4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def test_two_labs_of_one_scenario_at_once(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    env = {**os.environ, "VRRP_LAB_RENDEZVOUS": str(tmp_path)}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/support/parallel_labs.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout


ROOTLESS_SCRIPT = r"""
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[1])
# Import everything first: the interpreter may live where the unprivileged user cannot read.
import lab.lab, lab.scenario, lab.registry
scenario = lab.scenario.load_scenario(sys.argv[2])
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, as for a user who logged in
assert os.geteuid() == 65534
with lab.lab.Lab(scenario) as built:
    observer = built.node("observer")
    ping = observer.run(["ping", "-n", "-c", "1", "-W", "2", "10.200.51.32"], check=False)
    print(json.dumps({"rootless": built.sandbox.rootless, "ping": ping.returncode,
                      "hostname": built.node("ha_first").run("hostname").stdout.strip(),
                      "registry": str(lab.registry.registry_dir())}))
"""


def test_lab_builds_and_pings_rootless() -> None:
    """A user without any privilege builds the seed lab in a user namespace of its own."""
    if os.geteuid() != 0:
        pytest.skip("this test drops from root to nobody; run the suite as root")
    registry_dir = Path("/tmp/vrrp-lab-65534")
    there_before = registry_dir.exists()  # another rootless lab of nobody's may be running
    res = subprocess.run(
        [sys.executable, "-c", ROOTLESS_SCRIPT, str(REPO), str(REPO / "scenarios" / "seed.yaml")],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/"},
    )
    if res.returncode != 0 and "user namespace" in res.stderr:
        pytest.skip(f"unprivileged user namespaces are refused here: {res.stderr.strip()[-300:]}")
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report == {
        "rootless": True,
        "ping": 0,
        "hostname": "ha-first",
        "registry": str(registry_dir),
    }
    if not there_before:
        assert not registry_dir.exists(), f"the rootless lab left {registry_dir} behind"
