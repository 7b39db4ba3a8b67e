"""The control socket's client half: read a running daemon's status JSON.

Stdlib only, and apart from :mod:`vrrp.control` (the daemon's half, which imports the instance
model), so that anything may read a daemon's status without importing the daemon: ``python -m
vrrp status``, and the lab's bundled-router driver, which reads it through the node's root
between two adverts of a master (a CLI start-up, 0.3 s, would be too slow there).

The protocol is the connection itself: the daemon reads nothing, writes one JSON document and
closes (docs/vrrp-daemon.md).
"""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["DEFAULT_CONTROL", "query_status"]

DEFAULT_CONTROL = "/run/vrrp/vrrp.ctl"
"""The unix socket ``python -m vrrp status`` reads (``--control`` changes it)."""


def query_status(control: str = DEFAULT_CONTROL, timeout: float = 2.0) -> dict[str, Any]:
    """The status of the daemon listening at ``control``: its state and counters per instance.

    Raises :class:`OSError` when nothing answers there within ``timeout`` seconds, and
    :class:`ValueError` when what came back is not one JSON document.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(control)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    status: dict[str, Any] = json.loads(b"".join(chunks))
    return status
