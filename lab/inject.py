"""The ``inject`` fault: a node of the lab puts crafted frames on its port, at a rate, for a
duration (docs/architecture.md#faults).

In the seed's cloud any instance on the subnet can send IP protocol 112: port security checks
a frame's source addresses, not what it carries. ``inject`` is that neighbour: crafted VRRP
adverts (any field, valid or not: :mod:`lab.crafting`), gratuitous ARPs, unsolicited ARP
replies and Neighbor Advertisements, from the node's own addresses or spoofed ones. Its frames
go through the fabric like any other, so the SDN filters them as it would a real instance's,
and the capture records them beside everything else.

The frames of one period are built once (a ``random`` MAC is drawn per frame from a seeded
generator, so a run replays), then sent on a schedule: period *i* at ``start + i / rate``. The
first period is sent before :func:`start_injection` returns, so the time it returns is when the
fault took effect; a thread sends the rest, catching up in bursts when the host falls behind
(the count stays exact, the spacing does not). The end is a second event, ``inject-end``, with
the number of frames sent and any the node's own transmit queue refused (ENOBUFS).

``vrrp-lab inject`` sends the same injection into a lab that ``vrrp-lab up`` holds, from
another process: :func:`spec_from_options` turns its options into the step's model, and
:func:`inject_into` finds the node's port through the lab's registry record and sends with the
same frames, socket and schedule.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import json
import os
import random
import socket
import subprocess
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from lab import clock, linux
from lab.crafting import BROADCAST, arp_frame, group_mac, na_frame, vrrp_frame, vrrp_message
from lab.errors import LabError, UsageError
from lab.registry import LabRecord
from lab.sdn.ruleset import link_local
from lab.steps import INJECT_KINDS, Inject, InjectedAdvert, InjectedNeighbour

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = [
    "Injection",
    "Sender",
    "frames_of",
    "inject_into",
    "spec_from_options",
    "start_injection",
    "wait_injections",
]

#: ETH_P_ALL: an AF_PACKET socket that sends whole Ethernet frames.
_ETH_P_ALL = 0x0003
#: The VRRP groups (RFC 5798 §5.1.1.2, §5.1.2.2).
_GROUPS = {4: "224.0.0.18", 6: "ff02::12"}

#: Called with (kind, at, detail) for the start and the end of an injection.
EventSink = Callable[[str, float, str], None]


@dataclasses.dataclass(frozen=True)
class Sender:
    """The node that injects, as its first port shows it."""

    node: str
    ifname: str
    mac: str
    ipv4: str | None
    ipv6: str | None
    link_local: str

    def source(self, family: int) -> str:
        """Its own source address for ``family``: IPv4, or the link-local VRRP and ND use."""
        if family == 4:
            if self.ipv4 is None:
                raise UsageError(f"inject: {self.node} has no IPv4 address to send from")
            return self.ipv4
        return self.link_local


def sender_of(lab: Lab, node: str) -> Sender:
    """The :class:`Sender` for an instance of ``lab``."""
    ports = lab.node(node).ports
    if not ports:
        raise UsageError(f"inject: {node} has no port to send from")
    port = ports[0]
    v4 = next((str(ip) for ip in port.ips if ip.version == 4), None)
    v6 = next((str(ip) for ip in port.ips if ip.version == 6), None)
    return Sender(node, port.ifname, port.mac, v4, v6, str(link_local(port.mac)))


def frames_of(
    spec: Inject,
    sender: Sender,
    *,
    vips: list[str],
    mac_of: Callable[[str], str | None],
) -> Callable[[], list[bytes]]:
    """A function that returns the frames of the next period of ``spec``.

    ``vips`` are the scenario's VIPs (an advert's default addresses); ``mac_of`` names the MAC
    of a unicast destination (a lab port's), None when no port has it.
    """
    src_mac = spec.src_mac or sender.mac
    if spec.advert is not None:
        fixed = _advert_frames(spec.advert, sender, src_mac, vips, mac_of)
        return lambda: fixed
    claim = spec.garp or spec.arp_reply or spec.na
    assert claim is not None, "an Inject has exactly one kind (checked by its model)"
    rng = random.Random(spec.seed)

    def claimed_mac() -> str:
        if claim.mac != "random":
            return claim.mac or sender.mac
        # Locally administered, unicast: a MAC no port of the lab has.
        return "02:" + rng.randbytes(5).hex(":")

    if spec.na is not None:
        if claim.ip.version != 6:
            raise UsageError(f"inject: na claims an IPv6 address, not {claim.ip}")

        def build() -> bytes:
            return na_frame(
                target=str(claim.ip), mac=claimed_mac(), src=sender.link_local, src_mac=spec.src_mac
            )

    else:
        if claim.ip.version != 4:
            raise UsageError(f"inject: an ARP claims an IPv4 address, not {claim.ip}; use na")
        op = 1 if spec.garp is not None else 2

        def build() -> bytes:
            return _arp(op, claim, claimed_mac(), spec.src_mac)

    if claim.mac == "random":
        return lambda: [build()]
    # The same frame every period: built once, so a fast flood is not paced by scapy.
    fixed_frame = [build()]
    return lambda: fixed_frame


def _arp(op: int, claim: InjectedNeighbour, mac: str, src_mac: str | None) -> bytes:
    """A gratuitous request (op 1) or reply (op 2) claiming ``claim.ip`` at ``mac``: the
    Ethernet source is ``src_mac``, else the claimed MAC, as a host announcing itself sends."""
    ip = str(claim.ip)
    target_mac = mac if op == 2 else "00:00:00:00:00:00"
    return arp_frame(
        op,
        sender_mac=mac,
        sender_ip=ip,
        target_ip=ip,
        target_mac=target_mac,
        src_mac=src_mac or mac,
        dst_mac=BROADCAST,
    )


def _advert_frames(
    advert: InjectedAdvert,
    sender: Sender,
    src_mac: str,
    vips: list[str],
    mac_of: Callable[[str], str | None],
) -> list[bytes]:
    """One period of crafted adverts: one per destination."""
    addresses = [str(a) for a in advert.addresses] if advert.addresses else vips
    if not addresses:
        raise UsageError("inject: the advert names no addresses and the scenario has no VIP")
    family = ipaddress.ip_address(addresses[0]).version
    src = str(advert.src) if advert.src is not None else sender.source(family)
    targets = [_GROUPS[family]] if advert.to == "group" else [str(ip) for ip in advert.to]
    frames = []
    for dst in targets:
        dst_mac = group_mac(dst) or mac_of(dst)
        if dst_mac is None:
            raise UsageError(
                f"inject: no port of the lab has {dst}; an advert goes to a port's address or "
                "to the group"
            )
        message = vrrp_message(
            advert.priority,
            src=src,
            dst=dst,
            addresses=addresses,
            vrid=advert.vrid,
            interval=advert.interval,
            version=advert.version,
            kind=advert.type,
            bad_checksum=advert.checksum == "bad",
        )
        frames.append(
            vrrp_frame(message, src=src, dst=dst, src_mac=src_mac, dst_mac=dst_mac, ttl=advert.ttl)
        )
    return frames


class Injection:
    """One injection in flight: the frames, the schedule, the counts."""

    def __init__(
        self,
        spec: Inject,
        sock: socket.socket,
        next_frames: Callable[[], list[bytes]],
        on_event: EventSink,
    ) -> None:
        self.spec = spec
        self.sent = 0
        """Frames handed to the kernel."""
        self.refused = 0
        """Frames the node's transmit queue refused (ENOBUFS): a flood faster than the port."""
        self.periods = max(1, round(spec.duration * spec.rate))
        self.done = threading.Event()
        self._sock = sock
        self._next_frames = next_frames
        self._on_event = on_event
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> float:
        """Send the first period now and the rest from a thread; the time of the first frame.

        The ``inject`` event is reported before the thread starts, so the end always follows
        it."""
        at = clock.now()
        try:
            self._send_period()
        except OSError:
            self.done.set()  # nothing more will be sent: a wait on it must not run to its end
            raise
        self._on_event("inject", at, self.spec.describe())
        if self.periods > 1:
            self._thread = threading.Thread(
                target=self._run, args=(at,), name=f"inject-{self.spec.node}", daemon=True
            )
            self._thread.start()
        else:
            self._finish()
        return at

    def cancel(self) -> None:
        """Stop sending (at teardown), and wait for the thread to notice."""
        self._cancelled.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def _send_period(self) -> None:
        for frame in self._next_frames():
            try:
                self._sock.send(frame)
                self.sent += 1
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.refused += 1

    def _run(self, start: float) -> None:
        sent_periods = 1
        try:
            while sent_periods < self.periods:
                # Period i is due at start + i/rate; a late host sends every due period at once.
                due = min(self.periods, int((clock.now() - start) * self.spec.rate) + 1)
                while sent_periods < due:
                    self._send_period()
                    sent_periods += 1
                if sent_periods >= self.periods:
                    break
                wait = start + sent_periods / self.spec.rate - clock.now()
                if self._cancelled.wait(max(0.0, wait)):
                    break
        finally:
            self._finish()

    def _finish(self) -> None:
        refused = f", {self.refused} refused by its own queue" if self.refused else ""
        self._on_event("inject-end", clock.now(), f"{self.sent} frames sent{refused}")
        self.done.set()


_INJECTIONS: weakref.WeakKeyDictionary[Lab, list[Injection]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def start_injection(lab: Lab, spec: Inject, on_event: EventSink) -> float:
    """Start ``spec`` in ``lab`` (cancelled at teardown); the time its first frame was sent."""
    if spec.node not in lab.nodes:
        raise UsageError(
            f"inject: no instance {spec.node!r}; the instances are {', '.join(lab.nodes)}"
        )
    sender = sender_of(lab, spec.node)
    ports = {str(ip): p.mac for n in lab.nodes.values() for p in n.ports for ip in p.ips}
    vips = [str(v.address) for v in lab.scenario.vips]
    next_frames = frames_of(spec, sender, vips=vips, mac_of=ports.get)
    sock = _bound_socket(lab.node(spec.node).socket, sender)
    injection = Injection(spec, sock, next_frames, on_event)
    with _LOCK:
        _INJECTIONS.setdefault(lab, []).append(injection)

    def teardown() -> None:
        # Forgotten as well as stopped: an injection refers to its lab (through its event
        # sink), and kept in the weak-keyed table it would keep the lab alive after teardown.
        injection.cancel()
        with _LOCK:
            pending = _INJECTIONS.get(lab, [])
            if injection in pending:
                pending.remove(injection)
            if not pending:
                _INJECTIONS.pop(lab, None)

    lab.defer(f"inject from {spec.node}", teardown)
    return _start(injection, sender)


def _bound_socket(make: Callable[[int, int, int], socket.socket], sender: Sender) -> socket.socket:
    """An AF_PACKET socket of the sender's namespace (``make`` opens it there), bound to its
    port, that sends whole Ethernet frames."""
    sock = make(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    try:
        sock.bind((sender.ifname, 0))
    except OSError as exc:
        sock.close()
        raise LabError(f"inject: cannot send on {sender.node}'s {sender.ifname}: {exc}") from exc
    return sock


def _start(injection: Injection, sender: Sender) -> float:
    """Start ``injection``; a port that refuses its first frame is a :class:`LabError`."""
    try:
        return injection.start()
    except OSError as exc:  # the port refused the frame (EMSGSIZE, ENETDOWN, ...)
        raise LabError(f"inject: {sender.node} could not send on {sender.ifname}: {exc}") from exc


def wait_injections(lab: Lab, timeout: float) -> None:
    """Block until every injection of ``lab`` has sent its last frame."""
    deadline = clock.now() + timeout
    with _LOCK:
        pending = list(_INJECTIONS.get(lab, []))
    for injection in pending:
        if not injection.done.wait(max(0.0, deadline - clock.now())):
            raise LabError(
                f"an injection from {injection.spec.node} did not end within {timeout:g} s "
                f"({injection.sent} frames sent)"
            )


# -- From another terminal: `vrrp-lab inject` into a lab that `vrrp-lab up` holds -------------


def spec_from_options(
    node: str | None,
    kind: str | None,
    settings: list[str],
    *,
    base: object = None,
    rate: float | None = None,
    duration: float | None = None,
) -> Inject:
    """The :class:`Inject` that ``vrrp-lab inject``'s options describe, validated by the model.

    ``base`` is a mapping as a scenario's ``inject:`` takes (``--spec``, parsed YAML); ``node``,
    ``kind``, ``rate`` and ``duration`` override it; each of ``settings`` is ``KEY=VALUE`` and
    sets a field of the kind (``priority=255``) or of the injection (``src_mac``, ``seed``).
    A VALUE in brackets or braces is read as YAML (``to=[10.200.51.32,10.200.51.33]``); any
    other is handed to the model as text, which converts it (a MAC is never read as a
    base-60 number). Bad input is a one-line :class:`UsageError` that names the field.
    """
    if base is None:
        data: dict[str, object] = {}
    elif isinstance(base, dict):
        data = {str(k).replace("-", "_"): v for k, v in base.items()}
    else:
        raise UsageError(
            "--spec: expected a mapping as a scenario's `inject:` takes, e.g. "
            "'{advert: {priority: 255, to: [10.200.51.32]}, rate: 10}'"
        )
    if node is not None:
        data["node"] = node
    if "node" not in data:
        raise UsageError("inject: give the node that sends with --from NODE")
    given = [k for k in INJECT_KINDS if k in data]
    chosen = kind.replace("-", "_") if kind is not None else (given[0] if len(given) == 1 else None)
    if chosen not in INJECT_KINDS:
        spelled = "|".join(k.replace("_", "-") for k in INJECT_KINDS)
        raise UsageError(f"inject: give what to send with --kind {spelled}")
    for other in given:
        if other != chosen:
            data.pop(other)  # --kind replaces the kind --spec gave
    fields = data.get(chosen) or {}
    if not isinstance(fields, dict):
        raise UsageError(f"--spec: {chosen} takes a mapping of its fields, not {fields!r}")
    fields = dict(fields)
    top = {k for k in Inject.model_fields if k not in INJECT_KINDS and k != "node"}
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set priority=255")
        (data if key in top else fields)[key] = _setting(value.strip(), item)
    data[chosen] = fields
    if rate is not None:
        data["rate"] = rate
    if duration is not None:
        data["duration"] = duration
    try:
        return Inject.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_one_line(exc, chosen)) from None


def _setting(value: str, item: str) -> object:
    """A ``--set`` value: YAML when bracketed (a list or a mapping), else the text itself."""
    if not value.startswith(("[", "{")):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        raise UsageError(
            f"--set {item!r}: the value is not a YAML list or mapping, e.g. to=[10.200.51.32]"
        ) from None


def _one_line(exc: ValidationError, kind: str) -> str:
    """The model's first complaint as one line: the field, what it got, and the fix."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    field = ".".join(loc) or "inject"
    message = error["msg"].removeprefix("Value error, ")
    got = f" (got {error['input']!r})" if loc and error["type"] != "missing" else ""
    if error["type"] == "extra_forbidden":
        model = Inject if len(loc) == 1 else _kind_model(kind)
        known = ", ".join(k for k in model.model_fields if k not in ("node", *INJECT_KINDS))
        fix = f"the fields are: {known}"
    elif loc[:1] == ["node"]:
        fix = "fix: --from NODE"
    elif loc[:1] in (["rate"], ["duration"]):
        fix = f"fix: --{loc[0]} VALUE"
    elif loc:
        fix = f"fix: --set {loc[-1] if len(loc) > 1 else loc[0]}=VALUE"
    else:
        fix = "fix: --kind and --set"
    return f"inject: {field}: {message}{got}; {fix}"


def _kind_model(kind: str) -> type[InjectedAdvert] | type[InjectedNeighbour]:
    return InjectedAdvert if kind == "advert" else InjectedNeighbour


@dataclasses.dataclass(frozen=True)
class _LinkPort:
    """A lab port as its node's kernel shows it (``ip -j -d addr``)."""

    ifindex: int
    ifname: str
    mac: str
    ips: tuple[str, ...]


def _ports_in(netns: int) -> list[_LinkPort]:
    """The lab ports (veth) of the network namespace ``netns``, in creation order: the lab
    makes a node's ports in the scenario's order, so the first is the node's first port."""

    def dump() -> str:
        # Forked from a thread inside the namespace: `ip` runs there too.
        done = subprocess.run(
            ["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, check=True
        )
        return done.stdout

    ports = []
    for link in json.loads(linux.call_in_netns(netns, dump)):
        if (link.get("linkinfo") or {}).get("info_kind") != "veth":
            continue
        ips = tuple(
            a["local"]
            for a in link.get("addr_info", [])
            if a.get("family") in ("inet", "inet6") and a.get("scope") == "global"
        )
        ports.append(_LinkPort(link["ifindex"], link["ifname"], link["address"], ips))
    return sorted(ports, key=lambda p: p.ifindex)


def inject_into(record: LabRecord, spec: Inject, on_event: EventSink) -> Injection:
    """Start ``spec`` from a node of the running lab ``record`` names, from this process (which
    is outside the lab): the same frames, socket and schedule as the ``inject`` step. The
    caller waits on :attr:`Injection.done` and closes it with :meth:`Injection.cancel`."""
    nodes = [n for n in record.nodes if n != "fabric"]
    if spec.node not in nodes:
        raise UsageError(
            f"inject: lab {record.id} has no instance {spec.node!r}; its instances are "
            f"{', '.join(nodes)}; fix: --from NODE"
        )
    if record.rootless and os.geteuid() != 0:
        # The lab's namespaces belong to its user namespace: join it while this process has
        # a single thread, as the kernel requires (nothing has started one yet).
        user = linux.open_namespace(record.nodes[spec.node], "user")
        try:
            linux.setns(user, linux.CLONE_NEWUSER)
        finally:
            os.close(user)
    netns = {n: linux.open_namespace(record.nodes[n], "net") for n in nodes}
    try:
        ports = {n: _ports_in(fd) for n, fd in netns.items()}
        if not ports[spec.node]:
            raise UsageError(f"inject: {spec.node} has no port to send from")
        first = ports[spec.node][0]
        v4 = next((ip for ip in first.ips if ipaddress.ip_address(ip).version == 4), None)
        v6 = next((ip for ip in first.ips if ipaddress.ip_address(ip).version == 6), None)
        sender = Sender(spec.node, first.ifname, first.mac, v4, v6, str(link_local(first.mac)))
        macs = {ip: p.mac for node_ports in ports.values() for p in node_ports for ip in p.ips}
        next_frames = frames_of(spec, sender, vips=record.vips, mac_of=macs.get)
        fd = netns[spec.node]
        sock = _bound_socket(
            lambda family, kind, proto: linux.socket_in_netns(fd, family, kind, proto), sender
        )
    finally:
        for fd in netns.values():
            os.close(fd)
    injection = Injection(spec, sock, next_frames, on_event)
    try:
        _start(injection, sender)
    except LabError:
        sock.close()
        raise
    return injection
