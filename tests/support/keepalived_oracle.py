"""keepalived as an oracle for rendered configs: ``keepalived -t`` on a file.

Name: ``keepalived_usable``. Scope: module. Depends: nothing; skips the module's tests when
``keepalived -t`` cannot check even a trivial config here (no netlink, say). Import the fixture
into a test module to use it, with :data:`needs_keepalived` and :func:`keepalived_check`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vrrp.config import Config, GlobalDefs, VrrpInstance, render

KEEPALIVED = shutil.which("keepalived")
needs_keepalived = pytest.mark.skipif(
    KEEPALIVED is None, reason="keepalived is not installed (not on PATH)"
)


def keepalived_check(path: Path) -> tuple[int, str]:
    """``keepalived -t -f PATH``: its exit code and everything it printed."""
    assert KEEPALIVED is not None
    proc = subprocess.run(
        [KEEPALIVED, "-t", "-f", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="module")
def keepalived_usable(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip if keepalived -t cannot even check a trivial config here (e.g. no netlink)."""
    path = tmp_path_factory.mktemp("keepalived") / "baseline.conf"
    path.write_text(
        render(
            Config(
                global_defs=GlobalDefs(dynamic_interfaces=True),
                instances=[VrrpInstance("vi_1", "eth0", 1, virtual_ipaddress=["192.0.2.1"])],
            )
        )
    )
    code, output = keepalived_check(path)
    if code != 0 or output:
        pytest.skip(f"keepalived -t is not usable here (exit {code}): {output[:200]}")


def assert_keepalived_accepts(config: Config, tmp_path: Path) -> None:
    """``keepalived -t`` takes ``config`` as rendered, silently."""
    path = tmp_path / "keepalived.conf"
    text = render(config)
    path.write_text(text)
    code, output = keepalived_check(path)
    assert (code, output) == (0, ""), f"keepalived -t rejected:\n{text}"
