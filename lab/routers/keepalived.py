"""The ``keepalived`` driver: Debian's keepalived (2.2.7) in the foreground inside a node.

The daemon runs as ``keepalived -n -l -D -G --vrrp -f WRAPPER -p PIDFILE -r VRRP_PIDFILE``: a
parent that supervises one VRRP child process. Its fixed paths (``/tmp/keepalived.data``, the
default pid files under ``/run``) are private to the node, so several keepalived daemons in one
lab never collide. Signals follow keepalived's own meaning: SIGTERM stops gracefully (the VRRP
child sends a priority-0 advert and removes its VIPs and VMAC interfaces), SIGHUP reloads.

Known messages of 2.2.7 with the seed's 1.3.9-era configs, all harmless:

* ``invalid number 'ens3'`` for ``unicast_peer { IP dev ens3 }`` (the peer still works);
* ``Script user 'keepalived_script' does not exist`` (the lab runs no scripts);
* ``Error setting ADDR_GEN_MODE to NONE on vrrp.1`` (the node has no IPv6 on the VMAC).
"""

from __future__ import annotations

from typing import ClassVar

from lab.routers.base import Router, register_driver


@register_driver
class KeepalivedRouter(Router):
    """keepalived, driven through its standard flags and the notify FIFO."""

    impl: ClassVar[str] = "keepalived"
    program: ClassVar[str] = "keepalived"
    install_hint: ClassVar[str] = "install it with apt-get install keepalived"

    def command(self) -> list[str]:
        """``keepalived`` with the standard foreground, VRRP-only flags and the lab's files."""
        return [self.program, *self.standard_flags()]
