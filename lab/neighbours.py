"""A node's kernel neighbour (ARP/NDP) table over time, from netlink events.

A small follower program (``python -m lab.neighbours follow``) runs inside the node, subscribed
to the ``RTMGRP_NEIGH`` netlink multicast group, and prints every ``RTM_NEWNEIGH`` /
``RTM_DELNEIGH`` with the lab-clock time it arrived. :class:`NeighbourWatch` starts it, reads
its lines in a thread, and opens the timeline with the table as it was when the follower was
ready (a pyroute2 dump, ``event="dump"``): the subscription comes first, so no change falls
between the two.

Why a process rather than a netlink socket read by a thread of the runner: netlink carries no
timestamps, so the time is taken on arrival, and a runner thread may wait up to the GIL's
switch interval (5 ms) to run while the runner is busy (polling probe results, reading a
capture); a process of its own stamps each event within tens of microseconds, which matters
when a neighbour change is held against probe replies 1 ms apart. The follower decodes the
two fixed-layout messages itself (``ndmsg`` and its ``NDA_DST``/``NDA_LLADDR`` attributes)
instead of importing pyroute2, which would add half a second of start-up; the runner side uses
the node's pyroute2 ``IPRoute`` for the dump and for :func:`neighbour`.

Usage::

    watch = watch_neighbours(lab, "observer", ips=[vip])
    ...
    change = watch.wait_for(vip, mac="00:00:5e:00:01:01", timeout=5)
    for ch in watch.timeline(vip):
        print(ch.time, ch.mac, ch.state)
    neighbour(lab.node("observer"), vip)   # -> ("00:00:5e:00:01:01", "REACHABLE") or None
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.node import Namespace

# rtnetlink values (include/uapi/linux/rtnetlink.h, neighbour.h).
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTMGRP_NEIGH = 0x4
NDA_DST = 1
NDA_LLADDR = 2
_SO_RCVBUFFORCE = 33
_NLMSGHDR = struct.Struct("=IHHII")
_NDMSG = struct.Struct("=BBHiHBB")
_RTATTR = struct.Struct("=HH")

#: NUD state bits (include/uapi/linux/neighbour.h), named as ``ip neigh`` prints them.
NUD_STATES: dict[int, str] = {
    0x01: "INCOMPLETE",
    0x02: "REACHABLE",
    0x04: "STALE",
    0x08: "DELAY",
    0x10: "PROBE",
    0x20: "FAILED",
    0x40: "NOARP",
    0x80: "PERMANENT",
}

Event = Literal["new", "del", "dump"]


def nud_name(state: int) -> str:
    """The name of a NUD state (``REACHABLE``...), ``NONE`` for 0, ``A|B`` for several bits."""
    if state == 0:
        return "NONE"
    names = [name for bit, name in NUD_STATES.items() if state & bit]
    return "|".join(names) if names else f"0x{state:x}"


@dataclass(frozen=True)
class NeighbourChange:
    """One neighbour-table change as the kernel announced it, on the lab clock."""

    time: float
    ip: str
    mac: str | None
    """The link-layer address, when the entry has one (INCOMPLETE and FAILED ones do not)."""
    state: str
    """The NUD state name: REACHABLE, STALE, DELAY, PROBE, INCOMPLETE, FAILED, ..."""
    event: Event
    """``new`` (RTM_NEWNEIGH: added or changed), ``del`` (RTM_DELNEIGH), ``dump`` (initial)."""
    ifindex: int

    @property
    def at(self) -> float:
        """The same as :attr:`time` (the name the metrics use)."""
        return self.time

    @property
    def failed(self) -> bool:
        """The kernel gave up resolving the entry here, whichever state its message names.

        The kernel announces an unresolved entry only when it fails it, and it builds that
        message after handing the queued packets back as unreachable, with the entry's lock
        released in between. A packet sent in that gap re-opens the entry, so the message
        reads INCOMPLETE: the seed's observer, sending every millisecond, sees it on about
        half of its three-second cycles. A snapshot (``dump``) proves nothing either way.
        """
        if self.state == "FAILED":
            return True
        return self.event == "new" and self.mac is None and self.state == "INCOMPLETE"


def _normalise_ip(ip: object) -> str:
    return str(ipaddress.ip_address(str(ip)))


# -- the follower (runs inside the node) -------------------------------------------------------


def parse_neighbour_messages(data: bytes, when: float) -> Iterator[NeighbourChange]:
    """Decode the RTM_NEWNEIGH/RTM_DELNEIGH messages of one netlink datagram (pure)."""
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size:
            return
        body = data[pos + _NLMSGHDR.size : pos + length]
        pos += (length + 3) & ~3
        if kind not in (RTM_NEWNEIGH, RTM_DELNEIGH) or len(body) < _NDMSG.size:
            continue
        family, _p1, _p2, ifindex, state, _fl, _type = _NDMSG.unpack_from(body)
        dst: str | None = None
        mac: str | None = None
        at = _NDMSG.size
        while at + _RTATTR.size <= len(body):
            alen, atype = _RTATTR.unpack_from(body, at)
            if alen < _RTATTR.size:
                break
            value = body[at + _RTATTR.size : at + alen]
            if atype == NDA_DST and family in (socket.AF_INET, socket.AF_INET6):
                dst = socket.inet_ntop(family, value)
            elif atype == NDA_LLADDR and value:
                mac = value.hex(":")
            at += (alen + 3) & ~3
        if dst is None:
            continue
        event: Event = "new" if kind == RTM_NEWNEIGH else "del"
        yield NeighbourChange(when, dst, mac, nud_name(state), event, ifindex)


def run_follower(out: IO[str] = sys.stdout) -> int:
    """Print every neighbour change of this namespace until stdin's EOF; return the count.

    Lines: ``ready``, then ``<new|del> <time> <ip> <mac or -> <state> <ifindex>``, and
    ``overrun <time>`` when the kernel dropped events for want of buffer space.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    with contextlib.suppress(OSError):  # root only; the default buffer is the fallback
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 4 << 20)
    sock.bind((0, RTMGRP_NEIGH))
    out.write("ready\n")
    out.flush()
    stdin = sys.stdin.fileno()
    count = 0
    while True:
        ready, _, _ = select.select([sock, stdin], [], [])
        if sock in ready:
            try:
                data = sock.recv(1 << 16)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                out.write(f"overrun {time.time():.9f}\n")
                out.flush()
                continue
            when = time.time()
            for c in parse_neighbour_messages(data, when):
                out.write(f"{c.event} {c.time:.9f} {c.ip} {c.mac or '-'} {c.state} {c.ifindex}\n")
                count += 1
            out.flush()
        if stdin in ready and not os.read(stdin, 4096):
            return count


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.neighbours follow``: the follower, as run inside a node."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.neighbours", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("follow", help="print neighbour changes until stdin reaches EOF")
    parser.parse_args(argv)
    run_follower()
    return 0


# -- runner side ------------------------------------------------------------------------------


def _from_pyroute2(msg: Any, when: float) -> NeighbourChange | None:
    dst = msg.get_attr("NDA_DST")
    if dst is None:
        return None
    mac = msg.get_attr("NDA_LLADDR")
    return NeighbourChange(
        time=when,
        ip=_normalise_ip(dst),
        mac=mac.lower() if isinstance(mac, str) else None,
        state=nud_name(int(msg["state"])),
        event="dump",
        ifindex=int(msg["ifindex"]),
    )


def neighbour(node: Namespace, ip: object) -> tuple[str | None, str] | None:
    """The node's neighbour entry for ``ip`` right now: (MAC or None, NUD state), or None.

    Uses the node's shared ``IPRoute``, so call it from the runner's main thread.
    """
    want = _normalise_ip(ip)
    for msg in node.ipr.neigh("dump"):
        change = _from_pyroute2(msg, 0.0)
        if change is not None and change.ip == want:
            return change.mac, change.state
    return None


class NeighbourWatch:
    """Records a node's neighbour-table changes (optionally for some IPs only) while it runs."""

    def __init__(self, node: Namespace, ips: Iterable[object] | None = None) -> None:
        self.node = node
        self.ips = None if ips is None else {_normalise_ip(ip) for ip in ips}
        self.overruns = 0
        """How many times the kernel dropped events because the follower's buffer was full."""
        self._changes: list[NeighbourChange] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> NeighbourWatch:
        """Start the follower, record the current entries, and follow the changes."""
        from lab.clock import now
        from lab.sandbox import read_ready

        self._proc = self.node.popen(
            [sys.executable, "-I", os.path.abspath(__file__), "follow"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        read_ready(self._proc, timeout, f"the neighbour follower in {self.node.name}")
        # Subscribed first, dumped second: a change between the two is seen twice, never lost.
        when = now()
        for msg in self.node.ipr.neigh("dump"):
            self._keep(_from_pyroute2(msg, when))
        self._thread = threading.Thread(
            target=self._follow, name=f"neighbours-{self.node.name}", daemon=True
        )
        self._thread.start()
        return self

    def _keep(self, change: NeighbourChange | None) -> None:
        if change is None or (self.ips is not None and change.ip not in self.ips):
            return
        with self._lock:
            self._changes.append(change)

    def _follow(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        # Ends at EOF: the follower was stopped, or died with the lab.
        for raw in self._proc.stdout:
            parts = raw.decode(errors="replace").split()
            if len(parts) == 6 and parts[0] in ("new", "del"):
                event, when, ip, mac, state, ifindex = parts
                self._keep(
                    NeighbourChange(
                        float(when),
                        ip,
                        None if mac == "-" else mac,
                        state,
                        "new" if event == "new" else "del",
                        int(ifindex),
                    )
                )
            elif parts and parts[0] == "overrun":
                self.overruns += 1

    def stop(self, timeout: float = 5.0) -> list[NeighbourChange]:
        """Stop following; return the whole timeline. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            from lab.sandbox import end_by_stdin

            end_by_stdin(proc, timeout)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        return self.timeline()

    @property
    def running(self) -> bool:
        """True while the follower runs."""
        return self._proc is not None and self._proc.poll() is None

    def timeline(self, ip: object | None = None) -> list[NeighbourChange]:
        """The changes so far, in arrival order (for ``ip`` only, if given)."""
        want = None if ip is None else _normalise_ip(ip)
        with self._lock:
            return [c for c in self._changes if want is None or c.ip == want]

    def changes(self) -> list[NeighbourChange]:
        """Every change so far (the same as :meth:`timeline` without an IP)."""
        return self.timeline()

    def current(self, ip: object) -> tuple[str | None, str] | None:
        """The entry for ``ip`` as the last recorded change left it; None if absent or deleted."""
        changes = self.timeline(ip)
        if not changes or changes[-1].event == "del":
            return None
        return changes[-1].mac, changes[-1].state

    def mac_changes(self, ip: object) -> list[NeighbourChange]:
        """The changes that gave ``ip`` a different MAC than the entry had before."""
        out: list[NeighbourChange] = []
        last: str | None = None
        for c in self.timeline(ip):
            if c.mac is not None and c.mac != last:
                out.append(c)
                last = c.mac
        return out

    def wait_for(
        self,
        ip: object,
        *,
        timeout: float,
        mac: str | None = None,
        state: str | None = None,
        since: float | None = None,
    ) -> NeighbourChange:
        """Wait until a change for ``ip`` (with this MAC and/or state, at or after ``since``)."""
        from lab.wait import wait_until

        want_mac = mac.lower() if mac else None

        def match() -> tuple[NeighbourChange | None, NeighbourChange | None]:
            # (the match, the latest change): the latest is what a timeout reports as seen.
            changes = self.timeline(ip)
            latest = changes[-1] if changes else None
            for c in reversed(changes):
                if since is not None and c.time < since:
                    break
                if (want_mac is None or c.mac == want_mac) and (state is None or c.state == state):
                    return c, latest
            return None, latest

        wanted = [f"mac {want_mac}" if want_mac else "", f"state {state}" if state else ""]
        spec = ", ".join(w for w in wanted if w)
        found, _latest = wait_until(
            match,
            timeout=timeout,
            what=f"{self.node.name}'s neighbour entry for {ip}" + (f" ({spec})" if spec else ""),
            accept=lambda pair: pair[0] is not None,
        )
        assert found is not None
        return found


def watch_neighbours(
    lab: Lab, node: str = "observer", ips: Iterable[object] | None = None
) -> NeighbourWatch:
    """Start recording ``node``'s neighbour table (default: the observer's, for all IPs).

    Stopped at lab teardown at the latest.
    """
    watcher = NeighbourWatch(lab.node(node), ips)
    lab.defer(f"neighbour watch on {node}", watcher.stop)
    return watcher.start()


def watch(node: Namespace, ips: Iterable[object] | object | None = None) -> NeighbourWatch:
    """Start recording ``node``'s neighbour table (for ``ips``: one IP or several).

    Without a lab to defer to: stop it yourself, or it ends when the lab closes (the follower
    dies with the lab's namespaces, and its reader thread with it). Prefer
    :func:`watch_neighbours`, which stops it at teardown.
    """
    if ips is not None and isinstance(ips, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        ips = [ips]
    return NeighbourWatch(node, ips).start()  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
