"""The test bench of one conformance check: a lab with the IUT, a tester, and what they said.

Topology (plain L2, ``l2-plain``: a bare bridge, so whatever the IUT sends is what arrives)::

    iut       192.0.2.11  2001:db8::b   the implementation under test (any driver the lab knows)
    peer      192.0.2.12  2001:db8::c   an address the IUT lists as unicast peer; the tester
                                        borrows it
    observer  192.0.2.13  2001:db8::d   a bystander
    tester    192.0.2.14  2001:db8::e   plays the other routers: crafts adverts, asks for the VIPs

A bench poses its row's question once per address family (:attr:`Bench.family`): on IPv6 the
VIPs, the multicast group, the VMAC and the tester's frames follow, and VRRP's own addresses
are the nodes' link-locals (RFC 5798 §5.1.2.1).

The IUT is "something that sends adverts from node ``iut``": it is started through
:func:`lab.routers.make_router` with the driver its :class:`Iut` names, from a rendered
``keepalived.conf``, so any registered driver (keepalived, bundled, frr, or a stand-in a test
registers) can be plugged in. Every bench records the fabric into its own pcapng; evidence cites
the frame numbers of that file, as tshark numbers them.

At about 870 lines this module is a little over the project's ~800: it is one object, the
bench every check drives (its topology, frame crafting and capture queries), and splitting it
would spread that object over modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from lab import clock
from lab.capture import Capture, start_capture
from lab.capture_events import ArpEvent, BfdControl, VrrpAdvert, decode_frame, transits
from lab.conformance.rows import Family
from lab.crafting import vrrp_frame, vrrp_message
from lab.errors import UsageError, WaitTimeout
from lab.lab import Lab
from lab.linux import Scheduling, realtime_allowed
from lab.node import Node
from lab.routers import Router, RouterParams, Transition, known_drivers, make_router
from lab.routers.params import master_down_interval, skew_time
from lab.scenario import Scenario
from lab.sdn.ruleset import link_local
from lab.stalls import StallWitness
from vrrp.packet import ChecksumForm, vmac

#: Host numbers of the bench's nodes on its segment.
HOSTS = {"iut": 11, "peer": 12, "observer": 13, "tester": 14}
NET4 = "192.0.2"
VIP = f"{NET4}.100"
VIP2 = f"{NET4}.101"
NET6 = "2001:db8:"
#: The IPv6 VIPs (adverts then leave from a link-local).
VIP6 = f"{NET6}:100"
VIP6_2 = f"{NET6}:101"
GROUP6 = "ff02::12"
GROUP6_MAC = "33:33:00:00:00:12"
GROUP4 = "224.0.0.18"
GROUP4_MAC = "01:00:5e:00:00:12"
BROADCAST = "ff:ff:ff:ff:ff:ff"
#: The advert interval of most rows: short (docs/architecture.md#waiting), long enough to
#: resolve Skew_Time.
ADV = 0.1
#: The IUT's priority as a backup, and the tester's as a master that outranks it.
IUT_PRIO = 100
TESTER_PRIO = 200
#: The IUT's nice value where it may not run at SCHED_FIFO (rootless).
IUT_NICE = -10


def iut_scheduling() -> Scheduling:
    """How the IUT runs: at SCHED_FIFO 1 where allowed (root), else at :data:`IUT_NICE`.

    The harness's own work (the tester, tshark decoding captures, a second cell beside it)
    would otherwise share the CPUs with the IUT and hold back its timers; a VRRP daemon in
    production is given the same precedence (keepalived's ``vrrp_rt_priority``). A nice value
    is not enough: each daemon is its own session, and the scheduler's autogroups weigh a
    session as nice 0 whatever its processes' nice. Measured beside two other benches over 50
    T03 runs each: keepalived's worst advert period deviation p90 4.2 ms and max 32 ms at nice
    -10 (waits for a CPU the run-queue probe saw), p90 0.65 ms and max 4.6 ms at SCHED_FIFO 1.
    Stalls of the whole host remain, and the stall witness judges them.
    """
    return Scheduling(fifo=1) if realtime_allowed() else Scheduling(nice=IUT_NICE)


#: Addresses below and above the IUT's primary one, for the tester to claim (F05); on IPv6
#: they bound every EUI-64 or random interface identifier a link-local can carry.
LOWER_IP = {4: f"{NET4}.5", 6: "fe80::5"}
HIGHER_IP = {4: f"{NET4}.14", 6: "fe80::ffff:ffff:ffff:ff00"}
ETH_P_ALL = 0x0003


def tolerance(advert_int: float) -> float:
    """How far a measured timer may stray from the RFC figure: a fifth of the advert interval.

    Scheduling noise on a shared machine is a few ms (docs/vrrp-daemon.md: p99 2 ms); at the
    bench's 0.1 s interval this is 20 ms, the bound the routers issue set, and it stays well
    under the differences the rows tell apart (Skew_Time 61 ms vs Master_Down_Interval 361 ms).
    """
    return advert_int / 5


def scenario(name: str = "conformance") -> Scenario:
    """The bench's topology: four dual-stack instances on one plain L2 segment, two VIPs per
    family."""
    instances = [
        {
            "name": node,
            "ports": [
                {
                    "network": "seg",
                    "mac_address": f"fa:16:3e:00:00:{host:02x}",
                    "fixed_ips": [f"{NET4}.{host}", f"{NET6}:{host:x}"],
                }
            ],
        }
        for node, host in HOSTS.items()
    ]
    return Scenario.model_validate(
        {
            "name": name,
            "description": "VRRP conformance bench: the IUT, a peer address, observer, tester",
            "networks": [
                {
                    "name": "seg",
                    "sdn": {"profile": "l2-plain"},
                    "subnets": [{"cidr": f"{NET4}.0/24"}, {"cidr": f"{NET6}:/64"}],
                }
            ],
            "instances": instances,
            "vips": [{"address": vip, "network": "seg"} for vip in (VIP, VIP2, VIP6, VIP6_2)],
        }
    )


# --- implementations under test -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Iut:
    """An implementation under test: a matrix column.

    ``driver`` is a lab router driver; ``rfc9568`` runs it in its RFC 9568 mode (only the
    bundled daemon has one: the ``rfc9568`` keyword of its ``vrrp_instance``).
    """

    name: str
    driver: str
    rfc9568: bool = False

    def config(self, params: RouterParams, extra: tuple[str, ...] = ()) -> str:
        """The ``keepalived.conf`` for ``params``, with ``extra`` keyword lines in the instance."""
        lines = list(extra)
        if self.rfc9568:
            lines.append("rfc9568")
        text = params.render()
        if not lines:
            return text
        head, sep, tail = text.partition(f"vrrp_instance {params.instance} {{\n")
        return head + sep + "".join(f"    {line}\n" for line in lines) + tail


#: Column-name suffix selecting the RFC 9568 mode of a driver that has one.
RFC9568_SUFFIX = "-9568"
#: Drivers with an RFC 9568 mode.
RFC9568_DRIVERS = ("bundled",)


def iut_names() -> list[str]:
    """Every column the harness can run: each known driver, and ``bundled-9568``."""
    names = []
    for driver in known_drivers():
        names.append(driver)
        if driver in RFC9568_DRIVERS:
            names.append(driver + RFC9568_SUFFIX)
    return names


def iut(name: str) -> Iut:
    """The :class:`Iut` of a column name (``keepalived``, ``bundled``, ``bundled-9568``, ...)."""
    driver, mode = name, False
    if name.endswith(RFC9568_SUFFIX):
        driver, mode = name.removesuffix(RFC9568_SUFFIX), True
        if driver not in RFC9568_DRIVERS:
            raise UsageError(
                f"implementation {driver!r} has no RFC 9568 mode; only "
                f"{', '.join(RFC9568_DRIVERS)} does"
            )
    if driver not in known_drivers():
        raise UsageError(f"no router implementation {driver!r}; known: {', '.join(iut_names())}")
    return Iut(name, driver, mode)


# --- what the capture shows ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seen:
    """A decoded frame of the bench's capture, with its frame number (tshark's)."""

    number: int
    event: Any
    """A :class:`VrrpAdvert`, :class:`ArpEvent`, :class:`Icmp` or :class:`Nd`."""
    data: bytes

    @property
    def time(self) -> float:
        """When it entered the fabric (lab clock)."""
        return float(self.event.time)

    @property
    def sender(self) -> str:
        """The instance that sent it."""
        return str(self.event.sender)


@dataclasses.dataclass(frozen=True)
class Icmp:
    """An ICMP or ICMPv6 echo request or reply (the capture module decodes only the lab's
    probes)."""

    time: float
    sender: str
    src_ip: str
    dst_ip: str
    type: int
    """8 for a request, 0 for a reply (ICMPv6's 128 and 129 are shown as these too)."""
    src_mac: str


@dataclasses.dataclass(frozen=True)
class Nd:
    """An IPv6 Neighbor Solicitation or Advertisement (the capture module decodes ARP only)."""

    time: float
    sender: str
    kind: str
    """``ns`` or ``na``."""
    src_mac: str
    src_ip: str
    dst_ip: str
    target: str
    lladdr: str | None
    """The source (NS) or target (NA) link-layer address option, if present."""
    override: bool
    solicited: bool


def _nd(data: bytes, time_: float, sender: str) -> Nd | None:
    # Ethernet, a bare IPv6 header (ND carries no extension headers), ICMPv6 135/136.
    if len(data) < 14 + 40 + 24 or data[12:14] != b"\x86\xdd" or data[14 + 6] != 58:
        return None
    icmp = data[54:]
    if icmp[0] not in (135, 136):
        return None
    lladdr = None
    pos = 24
    while pos + 8 <= len(icmp) and icmp[pos + 1]:
        if icmp[pos] in (1, 2):
            lladdr = icmp[pos + 2 : pos + 8].hex(":")
        pos += icmp[pos + 1] * 8
    return Nd(
        time_,
        sender,
        "ns" if icmp[0] == 135 else "na",
        data[6:12].hex(":"),
        str(ipaddress.IPv6Address(data[22:38])),
        str(ipaddress.IPv6Address(data[38:54])),
        str(ipaddress.IPv6Address(icmp[8:24])),
        lladdr,
        bool(icmp[4] & 0x20),
        bool(icmp[4] & 0x40),
    )


def _icmp(data: bytes, time_: float, sender: str) -> Icmp | None:
    # An ICMP echo in a bare IPv4 header, or an ICMPv6 echo (128/129) in a bare IPv6 header.
    if len(data) >= 14 + 20 + 8 and data[12:14] == b"\x08\x00" and data[23] == 1:
        ihl = (data[14] & 0x0F) * 4
        kind = data[14 + ihl]
        src, dst = socket.inet_ntoa(data[26:30]), socket.inet_ntoa(data[30:34])
        if kind not in (0, 8):
            return None
    elif len(data) >= 14 + 40 + 8 and data[12:14] == b"\x86\xdd" and data[20] == 58:
        kind = {128: 8, 129: 0}.get(data[54], -1)
        src = str(ipaddress.IPv6Address(data[22:38]))
        dst = str(ipaddress.IPv6Address(data[38:54]))
        if kind < 0:
            return None
    else:
        return None
    return Icmp(time_, sender, src, dst, kind, data[6:12].hex(":"))


def vrrp_reserved(data: bytes) -> int | None:
    """The 4-bit reserved field of a VRRPv3 advert in an IPv4 or IPv6 frame (P04), or None."""
    if len(data) >= 14 + 20 + 8 and data[12:14] == b"\x08\x00":
        return data[14 + (data[14] & 0x0F) * 4 + 4] >> 4
    if len(data) >= 14 + 40 + 8 and data[12:14] == b"\x86\xdd":
        return data[14 + 40 + 4] >> 4
    return None


# --- the bench --------------------------------------------------------------------------


class Bench:
    """One lab for one check. Use as a context manager; everything ends with it."""

    def __init__(self, iut: Iut, row: str, pcap_dir: Path) -> None:
        self.iut = iut
        self.row = row
        self.lab = Lab(scenario(f"conf-{row.lower()}"), label=None)
        self.pcap_dir = pcap_dir
        self.family: Family = 4
        """The address family the check poses its question in (see :meth:`use_family`)."""
        self.capture: Capture | None = None
        self.router: Router | None = None
        self.launched = 0.0
        """Lab-clock time the IUT was last launched: nothing it sent before is of this run."""
        self._tx: socket.socket | None = None
        self._seen: list[Seen] = []
        self._frames_done = 0
        self._done_until = 0.0
        self.scheduling = iut_scheduling()
        """How the IUT runs (:func:`iut_scheduling`); the witness's peer probe runs so too."""
        self.witness = StallWitness(peer=self.scheduling)
        """The host's stalls over the bench's life: every timing case is judged against it."""

    def __enter__(self) -> Bench:
        self.lab.start()
        try:
            # After the lab: a rootless lab enters its user namespace while single-threaded.
            self.witness.start()
            self.capture = start_capture(
                self.lab,
                self.pcap_dir / f"{self.iut.name}-{self.row}-{self.lab.id}.pcapng",
                flush=0.01,
            )
        except BaseException:
            self.witness.close()
            self.lab.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tx is not None:
            self._tx.close()
        try:
            self.lab.__exit__(exc_type, exc, tb)
        finally:
            self.witness.close()

    # -- nodes -------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """A node of the bench (``iut``, ``peer``, ``observer``, ``tester``)."""
        return self.lab.node(name)

    def use_family(self, family: Family) -> None:
        """Pose the following questions in ``family``: VIPs, group, VMAC and frames follow.

        On IPv6 this waits until the IUT's link-local has left DAD: VRRP over IPv6 sends from
        it (RFC 5798 §5.1.2.1), and a tentative address cannot be bound.
        """
        self.stop_iut()
        self.family = family
        if family == 6:
            self.await_link_local()

    @property
    def vip(self) -> str:
        """The first VIP of the current family."""
        return VIP if self.family == 4 else VIP6

    @property
    def vip2(self) -> str:
        """The second VIP of the current family."""
        return VIP2 if self.family == 4 else VIP6_2

    @property
    def group(self) -> str:
        """The VRRP multicast group of the current family."""
        return GROUP4 if self.family == 4 else GROUP6

    @property
    def group_mac(self) -> str:
        """The Ethernet address of :attr:`group`."""
        return GROUP4_MAC if self.family == 4 else GROUP6_MAC

    @property
    def checksum_form(self) -> ChecksumForm:
        """The checksum form of the IUT's mode: RFC 9568's (the VRRP message only, on IPv4)
        for an RFC 9568 column, else RFC 5798's. The codec keeps IPv6's pseudo-header in
        both."""
        return ChecksumForm.RFC9568 if self.iut.rfc9568 else ChecksumForm.RFC5798

    @property
    def vmac(self) -> str:
        """The RFC's virtual MAC of VRID 1 in the current family."""
        return vmac(1, self.family)

    def ip(self, name: str) -> str:
        """The address a node's VRRP would send from: its IPv4 address, or its link-local."""
        if self.family == 6:
            return str(link_local(self.mac(name)))
        return f"{NET4}.{HOSTS[name]}"

    def unicast_ip(self, name: str) -> str:
        """A node's routable address in the current family (unicast peers use these)."""
        return f"{NET4}.{HOSTS[name]}" if self.family == 4 else f"{NET6}:{HOSTS[name]:x}"

    def mac(self, name: str) -> str:
        """The MAC of a node's port."""
        return self.node(name).ports[0].mac

    @property
    def pcap(self) -> str:
        """The bench's capture file."""
        assert self.capture is not None
        return str(self.capture.path)

    # -- the implementation under test -------------------------------------------------------

    def params(self, **overrides: Any) -> RouterParams:
        """The IUT's parameters: VRID 1, priority 100, the family's VIP, 0.1 s VRRPv3,
        use_vmac (the RFC's VMAC), multicast; ``overrides`` change any of them."""
        values: dict[str, Any] = {
            "interface": self.node("iut").ports[0].ifname,
            "priority": IUT_PRIO,
            "vrid": 1,
            "vips": (self.vip,),
            "advert_int": ADV,
            "version": 3,
            "use_vmac": True,
        }
        values.update(overrides)
        return RouterParams(**values)

    def start_iut(
        self,
        params: RouterParams,
        extra: tuple[str, ...] = (),
        append: str = "",
        requires: tuple[str, ...] = (),
    ) -> float:
        """Start the IUT with ``params`` (stopping a previous one first); return the lab-clock
        time of its first report (its router is :attr:`router`). ``append`` is more config
        after the instance (a B row's ``bfd_instance``). ``requires`` names keywords the row
        asks about: a driver that would run without one of them refuses
        (:meth:`lab.routers.Router.require`), and the row is n/a."""
        self.stop_iut()
        text = self.iut.config(params, extra) + append
        if self.router is None:
            self.router = make_router(
                self.iut.driver, self.node("iut"), text, source=f"conformance {self.row}"
            )
            router = self.router
            router.scheduling = self.scheduling
            self.lab.defer(f"router {router.name}", router.close)
            # A bench's verdict is in by teardown, and its lab dies with it: a graceful stop
            # (keepalived spends a second removing its VMAC) would only slow the suite down.
            self.lab.defer(
                f"kill router {router.name}", lambda: router.kill() if router.running else None
            )
        else:
            # The same driver object again: it owns the node's notify FIFO and its reader.
            self.router.set_config(text)
        router = self.router
        router.require(requires)
        self.launched = clock.now()
        first = router.start()
        self.witness.watch(router.daemon_pids())
        return first

    def stop_iut(self) -> float | None:
        """Stop the IUT gracefully if it runs; the lab-clock time of the signal."""
        if self.router is None or not self.router.running:
            return None
        return self.router.stop()

    def link_locals(self, node: str = "iut") -> set[str]:
        """The node's IPv6 link-local addresses that DAD has cleared (no longer tentative)."""
        tentative = 0x40  # IFA_F_TENTATIVE
        return {
            a.get_attr("IFA_ADDRESS")
            for a in self.node(node).ipr.get_addr(family=socket.AF_INET6)
            if a.get_attr("IFA_ADDRESS", "").startswith("fe80:")
            and not (a.get_attr("IFA_FLAGS", a["flags"]) & tentative)
        }

    def await_link_local(self, node: str = "iut", timeout: float = 5.0) -> str:
        """Wait until ``node``'s port has its EUI-64 link-local out of DAD (about a second
        after the link came up); return it. Netlink from the caller's thread."""
        from lab.wait import wait_until

        want = str(link_local(self.mac(node)))
        wait_until(
            lambda: want in self.link_locals(node),
            timeout=timeout,
            what=f"{node}'s link-local {want} to leave DAD",
        )
        return want

    def wait_report(
        self, state: str, within: float, since: float, instance: str | None = None
    ) -> Transition | None:
        """The IUT's report of ``state`` (of ``instance``, else of any of its instances) at or
        after ``since`` within ``within`` seconds, or None.

        Blocks on the router's event stream; None means it did not happen in that window.
        """
        assert self.router is not None
        try:
            return self.router.events.wait_for(
                lambda e: (
                    e.kind == "INSTANCE" and e.state == state and instance in (None, e.instance)
                ),
                timeout=within,
                what=f"{instance or 'the IUT'} to report {state}",
                since=since,
            )
        except WaitTimeout:
            return None

    def wait_master(self, within: float, since: float) -> Transition | None:
        """The IUT's MASTER report at or after ``since`` within ``within`` seconds, or None."""
        return self.wait_report("MASTER", within, since)

    def wait_backup(self, within: float, since: float) -> Transition | None:
        """The IUT's BACKUP report at or after ``since`` within ``within`` seconds, or None."""
        return self.wait_report("BACKUP", within, since)

    def state(self) -> str:
        """The IUT's last reported state."""
        assert self.router is not None
        return self.router.state()

    # -- the tester --------------------------------------------------------------------------

    def frame(
        self,
        priority: int,
        *,
        vrid: int = 1,
        interval: float = ADV,
        version: int = 3,
        kind: int = 1,
        src: str | None = None,
        dst: str | None = None,
        ttl: int = 255,
        src_mac: str | None = None,
        addresses: tuple[str, ...] | None = None,
        form: ChecksumForm | None = None,
        checksum: int | None = None,
        count: int | None = None,
        truncate: int | None = None,
    ) -> bytes:
        """An Ethernet frame carrying a VRRP advert crafted by the tester, in :attr:`family`.

        Defaults: a valid VRRPv3 advert for the bench's VRID and the family's first VIP, from
        the tester's address (IPv4, or its link-local) and MAC to the VRRP group, TTL (hop
        limit) 255. Each keyword breaks one thing: ``version`` or ``kind`` (the codec only
        builds 2 and 3, so other versions are patched in), ``ttl``, ``checksum`` (forced
        value), ``count`` (the count field, checksum recomputed so only the count is wrong),
        ``truncate`` (the VRRP message cut to that many octets), ``interval``. The checksum is
        in the IUT's mode's form (:attr:`checksum_form`) unless ``form`` says otherwise.
        """
        src = src or self.ip("tester")
        dst = dst or self.group
        message = vrrp_message(
            priority,
            src=src,
            dst=dst,
            addresses=addresses or (self.vip,),
            vrid=vrid,
            interval=interval,
            version=version,
            kind=kind,
            form=form or self.checksum_form,
            checksum=checksum,
            count=count,
            truncate=truncate,
        )
        dst_mac = self.group_mac if dst == self.group else self.mac(self._node_of(dst))
        return vrrp_frame(
            message,
            src=src,
            dst=dst,
            src_mac=src_mac or self.mac("tester"),
            dst_mac=dst_mac,
            ttl=ttl,
        )

    def solicit(self, target: str) -> bytes:
        """The tester asking who has ``target``: a broadcast ARP request (IPv4), or a
        Neighbor Solicitation to the target's solicited-node group (IPv6)."""
        from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
        from scapy.layers.l2 import ARP, Ether

        mac = self.mac("tester")
        if self.family == 4:
            return bytes(
                Ether(dst=BROADCAST, src=mac)
                / ARP(
                    op=1, hwsrc=mac, psrc=self.ip("tester"), hwdst="00:00:00:00:00:00", pdst=target
                )
            )
        low = ipaddress.IPv6Address(target).packed[-3:]
        # ff02::1:ffXX:XXXX, the solicited-node group of the target (RFC 4291 §2.7.1).
        group = str(ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + low))
        return bytes(
            Ether(dst="33:33:" + (b"\xff" + low).hex(":"), src=mac)
            / IPv6(src=self.ip("tester"), dst=group, hlim=255)
            / ICMPv6ND_NS(tgt=target)
            / ICMPv6NDOptSrcLLAddr(lladdr=mac)
        )

    def echo_request(self, target: str, dst_mac: str, seq: int = 1) -> bytes:
        """An ICMP (IPv4) or ICMPv6 echo request from the tester's routable address to
        ``target`` via ``dst_mac``."""
        from scapy.layers.inet import ICMP, IP
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        src = self.unicast_ip("tester")
        l3 = (
            IP(src=src, dst=target) / ICMP(type=8, id=0x6C61, seq=seq)
            if self.family == 4
            else IPv6(src=src, dst=target) / ICMPv6EchoRequest(id=0x6C61, seq=seq)
        )
        return bytes(Ether(dst=dst_mac, src=self.mac("tester")) / l3 / Raw(b"vrrp-lab A03"))

    def _node_of(self, ip: str) -> str:
        """The bench node that owns ``ip`` (its address or link-local)."""
        for node in HOSTS:
            if ip in (self.ip(node), self.unicast_ip(node)):
                return node
        raise ValueError(f"{ip} is no bench node's address")

    def send(self, frame: bytes) -> float:
        """Put ``frame`` on the wire from the tester's port; the lab-clock time just before."""
        if self._tx is None:
            tester = self.node("tester")
            sock = tester.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((tester.ports[0].ifname, 0))
            self._tx = sock
        # Stamped before the send: an answer may be captured before send() returns.
        at = clock.now()
        self._tx.send(frame)
        return at

    def send_at(self, frame: bytes, at: float) -> float:
        """Send ``frame`` at lab-clock time ``at`` (a transmit timer, as a router's
        Adver_Timer: the tester places a frame at a chosen phase of the IUT's advert period)."""
        threading.Event().wait(max(0.0, at - clock.now()))
        return self.send(frame)

    @contextlib.contextmanager
    def advertise(self, make: Callable[[], bytes], interval: float = ADV) -> Iterator[Advertiser]:
        """Send ``make()`` every ``interval`` seconds from the tester while the block runs."""
        adv = Advertiser(self, make, interval)
        adv.start()
        try:
            yield adv
        finally:
            adv.stop()

    # -- observation -------------------------------------------------------------------------

    def seen(self, since: float | None = None) -> list[Seen]:
        """Every advert, ARP packet, BFD Control packet and ICMP echo captured so far (at or
        after ``since``)."""
        assert self.capture is not None
        frames = self.capture.frames()
        new = frames[self._frames_done :]
        # A transit folds copies seen within 50 ms; hold back the newest 0.1 s of frames
        # until their copies are in, so no frame is folded half.
        horizon = clock.now() - 0.1
        cut = next((i for i, f in enumerate(new) if f.time >= horizon), len(new))
        ready = new[:cut]
        if ready:
            for tr in transits(ready):
                fields = decode_frame(tr.data)
                if fields is not None and fields["class"] in (VrrpAdvert, ArpEvent, BfdControl):
                    cls = fields.pop("class")
                    event = cls(
                        time=tr.time,
                        sender=tr.sender,
                        receivers=tr.receivers,
                        injected=tr.injected,
                        **fields,
                    )
                    self._seen.append(Seen(tr.first.index, event, tr.data))
                    continue
                other = _icmp(tr.data, tr.time, tr.sender) or _nd(tr.data, tr.time, tr.sender)
                if other is not None:
                    self._seen.append(Seen(tr.first.index, other, tr.data))
            self._frames_done += len(ready)
            self._seen.sort(key=lambda s: s.number)
        # Every frame older than the horizon is decoded now: those on file up to ``cut``, and
        # none older can still arrive (the recorder flushes every 10 ms).
        self._done_until = max(self._done_until, horizon)
        if since is None:
            return list(self._seen)
        return [s for s in self._seen if s.time >= since]

    def catch_up(self, until: float | None = None) -> None:
        """Wait until every frame sent before ``until`` (default: now) is decoded."""
        from lab.wait import wait_until

        until = clock.now() if until is None else until
        wait_until(
            lambda: (self.seen(), self._done_until)[1] >= until,
            timeout=5.0,
            what="the capture to catch up",
        )

    def adverts(
        self, sender: str = "iut", since: float | None = None, until: float | None = None
    ) -> list[Seen]:
        """The VRRP adverts ``sender`` put on the wire, in order."""
        return self.sent(VrrpAdvert, sender, since, until)

    def sent(
        self,
        kind: type[object],
        sender: str = "iut",
        since: float | None = None,
        until: float | None = None,
    ) -> list[Seen]:
        """The frames of event type ``kind`` ``sender`` put on the wire in [since, until)."""
        return [
            s
            for s in self.seen(since)
            if isinstance(s.event, kind)
            and s.sender == sender
            and (until is None or s.time < until)
        ]

    def wait_seen(
        self, match: Callable[[Seen], bool], *, since: float, timeout: float, what: str
    ) -> Seen | None:
        """The first captured frame at or after ``since`` that ``match``es, polled until
        ``timeout``; None when none came (the caller decides whether that is a finding)."""
        from lab.wait import wait_until

        try:
            return wait_until(
                lambda: next((s for s in self.seen(since) if match(s)), None),
                timeout=timeout + 0.15,  # the capture's hold-back horizon, see seen()
                what=what,
                accept=lambda s: s is not None,
            )
        except WaitTimeout:
            return None

    def wait_advert(
        self,
        sender: str,
        since: float,
        timeout: float,
        match: Callable[[VrrpAdvert], bool] = lambda a: True,
    ) -> Seen | None:
        """``sender``'s first advert at or after ``since`` (matching ``match``), or None. Only
        adverts are matched: the same node's ARP and ND frames are captured too."""
        return self.wait_seen(
            lambda s: s.sender == sender and isinstance(s.event, VrrpAdvert) and match(s.event),
            since=since,
            timeout=timeout,
            what=f"an advert from the {sender}",
        )

    def wait_iut_advert(
        self, since: float, timeout: float, match: Callable[[VrrpAdvert], bool] = lambda a: True
    ) -> Seen | None:
        """The IUT's first advert at or after ``since`` (matching ``match``), or None."""
        return self.wait_advert("iut", since, timeout, match)


class Advertiser:
    """The tester playing a master: one crafted frame every ``interval``, on its own thread.

    Its pacing is a transmit timer (``Event.wait`` with the advert interval), the tester's
    Adver_Timer, not a wait for a condition. :meth:`switch` swaps the frame (e.g. from a valid
    advert to a broken one) and records when.
    """

    def __init__(self, bench: Bench, make: Callable[[], bytes], interval: float) -> None:
        self.bench = bench
        self.make = make
        self.interval = interval
        self.sent: list[float] = []
        self.switched_at: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._thread = threading.Thread(target=self._run, name="tester-adverts", daemon=True)

    def start(self) -> None:
        """Send the first advert from the caller's thread, then keep advertising on the
        tester's own thread.

        The first frame is built here so that whatever its building costs the first time (scapy
        is imported on first use: up to a second) is paid before the IUT starts, not while it
        already counts its Master_Down_Interval.
        """
        with self._lock:
            self.sent.append(self.bench.send(self.make()))
        self._next_at = time.monotonic() + self.interval
        self._thread.start()

    def _run(self) -> None:
        next_at = self._next_at
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            # Built and sent under the lock: a frame sent after switch() returned is always
            # the new kind, so "before the switch" on the capture means the old kind.
            with self._lock:
                self.sent.append(self.bench.send(self.make()))
            next_at += self.interval

    def switch(self, make: Callable[[], bytes]) -> float:
        """Send ``make()`` from the next advert on; the lab-clock time of the switch."""
        with self._lock:
            self.make = make
            self.switched_at = clock.now()
        return self.switched_at

    def stop(self) -> float:
        """Stop advertising (silently: no priority 0); the lab-clock time it stopped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return clock.now()


__all__ = [
    "ADV",
    "IUT_NICE",
    "IUT_PRIO",
    "TESTER_PRIO",
    "VIP",
    "VIP2",
    "VIP6",
    "VIP6_2",
    "Bench",
    "Iut",
    "Seen",
    "iut",
    "iut_names",
    "iut_scheduling",
    "master_down_interval",
    "skew_time",
    "tolerance",
    "vmac",
]
