"""The ``bundled`` driver: the repository's own VRRP daemon (``python -m vrrp``) in a node.

It is driven exactly like keepalived (docs/architecture.md#routers): the same wrapper config
naming the notify FIFO and including the router's ``keepalived.conf`` unchanged, the same
keepalived-compatible flags (``-n -l -D -G --vrrp -f WRAPPER -p PIDFILE -r VRRP_PIDFILE``), the
same signals (SIGTERM: priority-0 advert, VIPs and VMAC removed; SIGHUP: reload). It is one
process, not keepalived's parent and child, so freeze, kill and stop act on that one process.

The daemon is run with the runner's own interpreter, so it is the ``vrrp`` package of this
checkout that runs. Its status socket lives next to the other router files in the node's
private ``/run``; :meth:`BundledRouter.status` reads it.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from lab.routers.base import RUN_DIR, Router, RouterError, register_driver
from vrrp.status_client import query_status


@register_driver
class BundledRouter(Router):
    """``python -m vrrp``, driven through keepalived's flags and the notify FIFO."""

    impl: ClassVar[str] = "bundled"
    program: ClassVar[str] = sys.executable
    install_hint: ClassVar[str] = "it is the Python interpreter running the lab"
    # Taking over, the advert goes first, then the VIPs, then the GARPs, as RFC 5798 §6.4.2
    # orders them (vrrp.state.StateMachine._become_master: SendAdvert before AddVips).
    netlink_before_first_advert: ClassVar[bool] = False

    @property
    def control_path(self) -> str:
        """The daemon's status socket, inside the node."""
        return f"{RUN_DIR}/vrrp.ctl"

    def command(self) -> list[str]:
        """``python -m vrrp`` with the standard flags and the status socket in the node."""
        return [self.program, "-m", "vrrp", *self.standard_flags(), "--control", self.control_path]

    def status(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The daemon's status JSON (what ``python -m vrrp status`` prints): state and
        counters per instance.

        Read from its control socket through the node's root, as that command does, without
        the command's start-up (0.3 s here): the wire fuzzer reads both daemons between two
        adverts of the master. ``tests/lab/test_bundled.py`` runs the command itself."""
        if not self.running:
            raise RouterError(f"router {self.name} ({self.impl}) is not running")
        try:
            return query_status(str(self.node.path(self.control_path)), timeout)
        except (OSError, ValueError) as exc:
            raise RouterError(
                f"the status of {self.name} ({self.impl}) from {self.control_path}: {exc}"
            ) from exc
