"""Real frames and real neighbour tables: helpers shared by the SDN tests and the benchmark.

- :class:`FrameSink` — an AF_PACKET socket on a node's interface that collects the frames
  carrying a marker, so a test can tell which of the frames it sent arrived;
- :func:`send_frames` — write raw Ethernet frames onto a node's interface;
- :func:`neighbour` / :func:`resolve` — read the node's kernel neighbour table over netlink,
  and make the kernel resolve an address (flush, send one datagram, poll the entry);
- :func:`timed_resolutions` — time fresh resolutions from inside a node (the benchmark).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
from collections.abc import Iterable
from types import TracebackType

from lab.errors import LabError
from lab.neighbours import NUD_STATES
from lab.node import Namespace
from lab.wait import wait_until

ETH_P_ALL = 0x0003
MARK = b"VRRPLAB:"

NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20


def marker(name: str) -> bytes:
    """The bytes that identify a test frame called ``name`` (put them in its payload)."""
    return MARK + name.encode() + b";"


class FrameSink:
    """Collects, on ``node``'s ``ifname``, the names of marked frames that arrive."""

    def __init__(self, node: Namespace, ifname: str = "ens3") -> None:
        self.sock = node.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        with contextlib.suppress(OSError):  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 25)  # SO_RCVBUFFORCE
        self.sock.bind((ifname, ETH_P_ALL))  # Python applies htons itself
        self.sock.setblocking(False)
        self.seen: list[str] = []
        """Names of the marked frames received so far, in arrival order."""

    def drain(self) -> None:
        """Read every frame queued now."""
        while True:
            try:
                frame, addr = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            at = frame.find(MARK)
            if at >= 0:
                end = frame.find(b";", at)
                self.seen.append(frame[at + len(MARK) : end].decode(errors="replace"))

    def wait_for(self, names: Iterable[str], timeout: float = 2.0) -> set[str]:
        """Wait until every frame in ``names`` has arrived; return every name seen so far.

        Raises :class:`~lab.errors.WaitTimeout` saying which ones never came.
        """
        wanted = set(names)

        def probe() -> set[str]:
            readable, _, _ = select.select([self.sock], [], [], 0.02)
            if readable:
                self.drain()
            return set(self.seen)

        return wait_until(
            probe,
            timeout=timeout,
            what=f"frames {sorted(wanted)} to arrive",
            accept=lambda seen: wanted <= seen,
            interval=0.0,
            max_interval=0.0,
        )

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FrameSource:
    """An AF_PACKET socket that writes raw frames onto ``node``'s ``ifname``."""

    def __init__(self, node: Namespace, ifname: str = "ens3") -> None:
        self.sock = node.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.bind((ifname, 0))

    def send(self, *frames: bytes) -> None:
        """Send each frame as is (the kernel adds no header and no padding)."""
        for frame in frames:
            self.sock.send(frame)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def send_frames(node: Namespace, frames: Iterable[bytes], ifname: str = "ens3") -> None:
    """Write raw Ethernet frames onto ``node``'s ``ifname``, in order."""
    source = FrameSource(node, ifname)
    try:
        source.send(*frames)
    finally:
        source.close()


def neighbour(node: Namespace, ip: str) -> tuple[str | None, str]:
    """``node``'s kernel neighbour entry for ``ip``: (MAC or None, state name or "none")."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for entry in node.ipr.get_neighbours(family=family, dst=ip):
        state = entry.get("state", 0)
        name = "|".join(n for bit, n in NUD_STATES.items() if state & bit) or str(state)
        return entry.get_attr("NDA_LLADDR"), name
    return None, "none"


def flush_neighbour(node: Namespace, ip: str, ifname: str = "ens3") -> None:
    """Delete ``node``'s neighbour entry for ``ip`` (no error when there is none)."""
    # Not link_lookup: it strands a netlink ACK on the node's lab-long socket (see
    # Namespace.link_index).
    index = node.link_index(ifname)
    if index is None:
        raise LabError(f"{node.name} has no interface {ifname!r}")
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with contextlib.suppress(Exception):  # NetlinkError ENOENT: nothing to flush
        node.ipr.neigh("del", dst=ip, ifindex=index, family=family)


def fast_neighbour_timers(node: Namespace, ifname: str = "ens3", retrans_ms: int = 100) -> None:
    """Make ``node`` give up on an unanswered ARP after 3 × ``retrans_ms`` instead of 3 s.

    Only the node's own namespace changes (``/proc/sys/net`` is per network namespace).
    """
    node.run(["sysctl", "-q", "-w", f"net.ipv4.neigh.{ifname}.retrans_time_ms={retrans_ms}"])


def trigger(node: Namespace, ip: str) -> None:
    """Make ``node``'s kernel resolve ``ip``: one UDP datagram to the discard port."""
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    sock = node.socket(family, socket.SOCK_DGRAM, 0)
    try:
        with contextlib.suppress(OSError):
            sock.sendto(b"resolve", (ip, 9))
    finally:
        sock.close()


def resolve(node: Namespace, ip: str, *, timeout: float = 3.0, ifname: str = "ens3") -> str | None:
    """Flush ``node``'s entry for ``ip``, make its kernel resolve it, return the MAC it got.

    Returns None when resolution failed (the entry went FAILED). The kernel does the ARP, so
    the answer is whatever the fabric delivered: the owner's reply or the controller's.
    """
    flush_neighbour(node, ip, ifname)
    trigger(node, ip)

    def settled(seen: tuple[str | None, str]) -> bool:
        mac, state = seen
        return (bool(mac) and "INCOMPLETE" not in state) or "FAILED" in state

    mac, state = wait_until(
        lambda: neighbour(node, ip),
        timeout=timeout,
        what=f"{node.name} to resolve {ip}",
        accept=settled,
        interval=0.0005,
        max_interval=0.01,
    )
    return None if "FAILED" in state else mac


# A stand-alone timing loop run *inside* a node, so that nothing of the runner (its threads,
# its GIL) sits between the kernel's answer and the clock. Standard library only.
_TIMER_SCRIPT = r"""
import json, select, socket, struct, sys, time
ip, count, ifname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
index = socket.if_nametoindex(ifname)
want = socket.inet_aton(ip)
ctl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
ctl.bind((0, 0))
events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
events.bind((0, 0x4))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def flush():
    attr = struct.pack("HH", 8, 1) + want
    nd = struct.pack("BBHiHBB", socket.AF_INET, 0, 0, index, 0, 0, 0)
    body = nd + attr
    ctl.send(struct.pack("IHHII", 16 + len(body), 29, 1 | 4, 1, 0) + body)  # RTM_DELNEIGH, ACK
    ctl.recv(65536)
def reachable(data):
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("IH", data, off)
        if length < 16:
            return False
        if kind == 28 and struct.unpack_from("H", data, off + 24)[0] & 2:
            at = off + 28
            while at + 4 <= off + length:
                alen, atype = struct.unpack_from("HH", data, at)
                if alen < 4:
                    break
                if atype == 1 and data[at + 4:at + alen] == want:
                    return True
                at += (alen + 3) & ~3
        off += (length + 3) & ~3
    return False
out, lost = [], 0
for _ in range(count):
    flush()
    while select.select([events], [], [], 0)[0]:
        events.recv(65536)
    began = time.perf_counter()
    udp.sendto(b"resolve", (ip, 9))
    while True:
        left = began + 1.5 - time.perf_counter()
        if left <= 0 or not select.select([events], [], [], left)[0]:
            lost += 1  # no REACHABLE in 1.5 s: counted, not timed
            break
        data = events.recv(65536)
        if reachable(data):
            out.append(time.perf_counter() - began)
            break
print(json.dumps({"times": out, "lost": lost}))
"""


def timed_resolutions(
    node: Namespace, ip: str, count: int, *, interpreter: str, ifname: str = "ens3"
) -> tuple[list[float], int]:
    """Time ``count`` fresh resolutions of ``ip`` inside ``node``: (seconds each, rounds lost).

    Each round deletes the entry, sends one datagram and stops the clock at the kernel's
    RTM_NEWNEIGH REACHABLE notification; a round with none within 1.5 s is counted as lost
    rather than timed. IPv4 only. ``interpreter`` is a Python 3 the lab may execute (see
    :func:`lab.sdn.fabric_sdn.controller_interpreter`).
    """
    done = node.run(
        [interpreter, "-c", _TIMER_SCRIPT, ip, str(count), ifname], timeout=30 + count * 1.6
    )
    result = json.loads(done.stdout)
    return [float(x) for x in result["times"]], int(result["lost"])
