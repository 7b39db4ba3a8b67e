"""The SDN controller: a small process in the fabric namespace that handles ARP.

Run as ``python -m lab.sdn.controller CONFIG.json`` (the fabric starts it). It receives the
frames the nftables table hands it through NFLOG (group :data:`~lab.sdn.ruleset.NFLOG_GROUP`):
only frames that passed port security, so a spoofed ARP never enters the cache. It answers ARP
requests by writing hand-built replies straight onto the asker's tap with an AF_PACKET socket,
relays what it does not answer to the network's other taps, and learns bindings as the knobs
say. It imports nothing heavy (no scapy, not the lab), because a controller-answered ARP must
resolve in well under 2 ms.

Protocol with the runner, one JSON object per line:

- stdout: events ``{"t": lab clock, "event": ...}``: ``ready``, ``learned``, ``answered``,
  ``relayed``, ``dropped``, ``ignored``, ``expired``, and ``reply`` (to a command);
- stdin: commands ``{"id": N, "cmd": "dump" | "flush", "network": NAME | null}``. End of
  stdin means the runner is gone: the controller exits.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

# NFLOG (linux/netfilter/nfnetlink_log.h), reached over NETLINK_NETFILTER by hand.
NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PACKET_HDR = 1
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_PHYSINDEV = 6
NFULA_HWADDR = 8
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_HWHEADER = 16
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST = b"\xff" * 6
ZERO_IP = b"\x00" * 4
_ARP = struct.Struct("!HHBBH6s4s6s4s")


def mac_text(raw: bytes) -> str:
    """``fa:16:3e:..`` from six bytes."""
    return raw.hex(":")


def ip_text(raw: bytes) -> str:
    """Dotted quad from four bytes."""
    return socket.inet_ntoa(raw)


def arp_reply(dst_mac: bytes, src_mac: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An Ethernet ARP reply ``spa is-at src_mac``, padded to the 60-byte minimum frame."""
    frame = (
        dst_mac
        + src_mac
        + struct.pack("!H", ETH_P_ARP)
        + _ARP.pack(1, ETH_P_IP, 6, 4, 2, src_mac, spa, tha, tpa)
    )
    return frame.ljust(60, b"\x00")


@dataclass
class Binding:
    """One IP → MAC binding of the controller's cache."""

    mac: bytes
    source: str
    """fixed, garp, arp-reply or ip."""
    port: str
    learned: float
    fixed: bool = False

    def as_json(self, ip: str, now: float) -> dict[str, Any]:
        """The binding as ``arp_cache()`` shows it."""
        return {
            "ip": ip,
            "mac": mac_text(self.mac),
            "source": self.source,
            "port": self.port,
            "age": round(now - self.learned, 4),
            "fixed": self.fixed,
        }


@dataclass
class Network:
    """A network as the controller sees it: knobs, taps and its binding cache."""

    name: str
    knobs: dict[str, Any]
    taps: dict[int, str] = field(default_factory=dict)
    """ifindex → tap name."""
    bindings: dict[bytes, Binding] = field(default_factory=dict)
    """IPv4 address (4 bytes) → binding."""

    @property
    def ttl(self) -> float | None:
        """The lifetime of learned bindings, for ``update: ttl=N``."""
        update = str(self.knobs["update"])
        return float(update.removeprefix("ttl=").rstrip("s")) if update.startswith("ttl=") else None


class Controller:
    """The controller's state and frame handling; :meth:`serve` is its loop."""

    def __init__(self, config: dict[str, Any], out: TextIO) -> None:
        self.out = out
        self.group = int(config["group"])
        self.state_path: str | None = config.get("state")
        """The pairs' state file (``lab.sdn.ports``), read for ``bind_pairs``."""
        self.networks: dict[str, Network] = {}
        self.by_ifindex: dict[int, Network] = {}
        self.senders: dict[int, socket.socket] = {}
        for name, net_cfg in config["networks"].items():
            net = Network(name, net_cfg["knobs"])
            for port in net_cfg["ports"]:
                index = socket.if_nametoindex(port["tap"])
                net.taps[index] = port["tap"]
                self.by_ifindex[index] = net
                sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                sender.bind((port["tap"], 0))
                self.senders[index] = sender
                mac = bytes.fromhex(port["mac"].replace(":", ""))
                for ip in port["fixed_ips"]:
                    if ":" not in ip:
                        net.bindings[socket.inet_aton(ip)] = Binding(
                            mac, "fixed", port["tap"], time.time(), fixed=True
                        )
            self.networks[name] = net
        self.nflog = self._open_nflog()

    # -- NFLOG --------------------------------------------------------------------------------

    def _open_nflog(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind((0, 0))
        cmd = struct.pack("B", NFULNL_CFG_CMD_BIND).ljust(4, b"\x00")
        self._config(sock, [(NFULA_CFG_CMD, cmd)])
        # Copy whole frames, and hand each one over at once: by default the kernel batches
        # logged packets behind a queue threshold and a flush timer, which would wreck ARP
        # latency.
        mode = struct.pack(">IBB", 0xFFFF, NFULNL_COPY_PACKET, 0).ljust(8, b"\x00")
        self._config(sock, [(NFULA_CFG_MODE, mode), (NFULA_CFG_QTHRESH, struct.pack(">I", 1))])
        return sock

    def _config(self, sock: socket.socket, attrs: list[tuple[int, bytes]]) -> None:
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.group)
        for kind, value in attrs:
            body += struct.pack("HH", 4 + len(value), kind) + value
            body += b"\x00" * (-len(value) % 4)
        kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        sock.send(
            struct.pack("IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
        )
        reply = sock.recv(65536)
        _, rtype = struct.unpack_from("IH", reply)
        if rtype == NLMSG_ERROR:
            (code,) = struct.unpack_from("i", reply, 16)
            if code != 0:
                raise OSError(-code, f"NFLOG config of group {self.group}: {os.strerror(-code)}")

    def on_netlink(self) -> None:
        """Handle every NFLOG message of one datagram."""
        try:
            data = self.nflog.recv(1 << 17)
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # The kernel dropped copies it could not queue: say so, and carry on.
            self.event("error", reason="NFLOG receive buffer overrun: frames were lost")
            return
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("IH", data, offset)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                self.on_packet(self._attrs(data, offset + 20, offset + length))
            offset += (length + 3) & ~3

    @staticmethod
    def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
        attrs = {}
        while start + 4 <= end:
            alen, kind = struct.unpack_from("HH", data, start)
            if alen < 4:
                break
            attrs[kind & 0x3FFF] = data[start + 4 : start + alen]
            start += (alen + 3) & ~3
        return attrs

    # -- frames -------------------------------------------------------------------------------

    def on_packet(self, attrs: dict[int, bytes]) -> None:
        """One frame handed over by nft: its prefix says why."""
        prefix = attrs.get(NFULA_PREFIX, b"").rstrip(b"\x00").decode()
        # In the bridge family the physical input device is the tap, the "input device" the bridge.
        raw_index = attrs.get(NFULA_IFINDEX_PHYSINDEV) or attrs.get(NFULA_IFINDEX_INDEV)
        index = struct.unpack(">I", raw_index)[0] if raw_index else 0
        net = self.by_ifindex.get(index)
        payload = attrs.get(NFULA_PAYLOAD, b"")
        proto = (
            struct.unpack(">H", attrs[NFULA_PACKET_HDR][:2])[0] if NFULA_PACKET_HDR in attrs else 0
        )
        hw = attrs.get(NFULA_HWADDR, b"")
        src_mac = hw[4:10] if len(hw) >= 10 else b""
        if net is None:
            return
        tap = net.taps[index]
        if prefix.startswith("drop"):
            self.event(
                "dropped",
                network=net.name,
                port=tap,
                reason="port-security",
                **_describe(proto, src_mac, payload),
            )
            return
        if prefix == "learn":
            if proto == ETH_P_ARP and len(payload) >= 28:
                _, _, _, _, _, sha, spa, _, _ = _ARP.unpack_from(payload)
                self.learn(net, spa, sha, "arp-reply", tap)
            elif proto == ETH_P_IP and len(payload) >= 20 and src_mac:
                self.learn(net, payload[12:16], src_mac, "ip", tap)
            return
        if prefix == "trap" and proto == ETH_P_ARP and len(payload) >= 28:
            header = attrs.get(NFULA_HWHEADER, b"")
            self.on_arp(net, index, payload, header if len(header) == 14 else b"", src_mac)

    def on_arp(self, net: Network, index: int, arp: bytes, header: bytes, src_mac: bytes) -> None:
        """A trapped ARP frame: a GARP, or a request to answer, relay or drop."""
        _, ptype, hlen, plen, op, sha, spa, _, tpa = _ARP.unpack_from(arp)
        if ptype != ETH_P_IP or hlen != 6 or plen != 4:
            return
        knobs, tap = net.knobs, net.taps[index]
        frame = (header or (BROADCAST + (src_mac or sha) + b"\x08\x06")) + arp
        if spa == tpa and spa != ZERO_IP:
            self.on_garp(net, index, frame, sha, spa)
            return
        if op != 1:
            self.relay(net, index, frame, ip_text(tpa), "broadcast-reply")
            return
        mode = knobs["arp"]
        binding = self.answer_for(net, tpa) if mode != "flood" else None
        if binding is not None:
            if binding.mac != sha:
                # To the Ethernet source, as OVN's responder does (eth.dst = eth.src).
                self.senders[index].send(arp_reply(src_mac or sha, binding.mac, tpa, sha, spa))
                self.event(
                    "answered",
                    network=net.name,
                    port=tap,
                    ip=ip_text(tpa),
                    mac=mac_text(binding.mac),
                    asker=ip_text(spa),
                    source=binding.source,
                )
            return
        if mode == "proxy-learning" and knobs["arp_miss"] == "drop":
            self.event(
                "dropped",
                network=net.name,
                port=tap,
                reason="no-binding",
                ip=ip_text(tpa),
                asker=ip_text(spa),
            )
            return
        self.relay(net, index, frame, ip_text(tpa), "miss" if mode != "flood" else "flood")

    def on_garp(self, net: Network, index: int, frame: bytes, sha: bytes, spa: bytes) -> None:
        """A gratuitous ARP: honoured, flooded, or only recorded, as the knobs say."""
        knobs, tap = net.knobs, net.taps[index]
        if knobs["garp"] == "dropped":
            self.event(
                "dropped",
                network=net.name,
                port=tap,
                reason="garp-dropped",
                ip=ip_text(spa),
                mac=mac_text(sha),
            )
            return
        learning = knobs["arp"] == "proxy-learning"
        honoured = learning and ("garp" in knobs["learn_from"] or knobs["update"] == "on-garp")
        if honoured:
            self.learn(net, spa, sha, "garp", tap)
        if knobs["garp"] == "flooded":
            self.relay(net, index, frame, ip_text(spa), "garp")
        elif not honoured:
            self.event(
                "dropped",
                network=net.name,
                port=tap,
                reason="garp-not-honoured",
                ip=ip_text(spa),
                mac=mac_text(sha),
            )

    def relay(self, net: Network, index: int, frame: bytes, ip: str, why: str) -> None:
        """Send ``frame`` out of every other tap of ``net``: the controller's own flood."""
        for other, sender in self.senders.items():
            if other != index and other in net.taps:
                sender.send(frame)
        self.event("relayed", network=net.name, port=net.taps[index], ip=ip, reason=why)

    # -- the cache ----------------------------------------------------------------------------

    def answer_for(self, net: Network, ip: bytes) -> Binding | None:
        """The binding a request for ``ip`` is answered with: fixed, then pair, then learned."""
        binding = net.bindings.get(ip)
        if binding is not None and binding.fixed:
            return binding
        if net.knobs.get("bind_pairs"):
            paired = self.pair_binding(net, ip)
            if paired is not None:
                return paired
        if net.knobs["arp"] != "proxy-learning":
            return None  # responder-static answers only what the control plane knows
        return self.lookup(net, ip)

    def pair_binding(self, net: Network, ip: bytes) -> Binding | None:
        """The first port of ``net`` (scenario order) with ``ip`` as an allowed-pair host address.

        Read from the state file on each call: pairs change at run time, from the runner or
        from ``vrrp-lab port-set`` in another terminal, and misses are rare enough.
        """
        if not self.state_path:
            return None
        try:
            with open(self.state_path) as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                ports = json.load(f)["ports"]
        except (OSError, ValueError, KeyError):
            return None
        wanted = ip_text(ip)
        for entry in ports.values():
            spec = entry["spec"]
            if spec["network"] != net.name:
                continue
            for pair in entry["pairs"]:
                if pair["ip_address"] in (wanted, f"{wanted}/32"):
                    mac = pair.get("mac_address") or spec["mac"]
                    raw = bytes.fromhex(mac.replace(":", ""))
                    return Binding(raw, "pair", spec["tap"], time.time(), fixed=True)
        return None

    def lookup(self, net: Network, ip: bytes) -> Binding | None:
        """The live binding for ``ip``; an expired learned binding is evicted on the way."""
        binding = net.bindings.get(ip)
        ttl = net.ttl
        expired = ttl is not None and binding is not None and not binding.fixed
        if expired and binding is not None and time.time() - binding.learned > (ttl or 0):
            del net.bindings[ip]
            self.event("expired", network=net.name, ip=ip_text(ip), mac=mac_text(binding.mac))
            return None
        return binding

    def learn(self, net: Network, ip: bytes, mac: bytes, source: str, tap: str) -> None:
        """Apply the update policy to a (ip, mac) seen from ``source``."""
        if ip == ZERO_IP:
            return
        binding = self.lookup(net, ip)
        now = time.time()
        if binding is None:
            net.bindings[ip] = Binding(mac, source, tap, now)
            self.event(
                "learned",
                network=net.name,
                ip=ip_text(ip),
                mac=mac_text(mac),
                source=source,
                port=tap,
            )
            return
        if binding.mac == mac:
            if not binding.fixed:
                binding.learned, binding.port = now, tap  # a refresh restarts a TTL
            return
        update = net.knobs["update"]
        if not binding.fixed and update == "on-garp" and source == "garp":
            net.bindings[ip] = Binding(mac, source, tap, now)
            self.event(
                "learned",
                network=net.name,
                ip=ip_text(ip),
                mac=mac_text(mac),
                source=source,
                port=tap,
                replaced=mac_text(binding.mac),
            )
            return
        self.event(
            "ignored",
            network=net.name,
            ip=ip_text(ip),
            mac=mac_text(mac),
            source=source,
            port=tap,
            kept=mac_text(binding.mac),
            reason="fixed" if binding.fixed else str(update),
        )

    # -- commands and events ------------------------------------------------------------------

    def on_command(self, line: str) -> None:
        """Run one command from the runner and answer with a ``reply`` event."""
        try:
            cmd = json.loads(line)
        except ValueError:
            self.event("error", reason=f"not JSON: {line[:80]!r}")
            return
        wanted = cmd.get("network")
        nets = [n for n in self.networks.values() if wanted in (None, n.name)]
        now = time.time()
        if cmd.get("cmd") == "dump":
            cache = {
                n.name: [b.as_json(ip_text(ip), now) for ip, b in sorted(n.bindings.items())]
                for n in nets
            }
            self.event("reply", id=cmd.get("id"), cache=cache)
        elif cmd.get("cmd") == "flush":
            flushed = 0
            for n in nets:
                learned = [ip for ip, b in n.bindings.items() if not b.fixed]
                for ip in learned:
                    del n.bindings[ip]
                flushed += len(learned)
            self.event("reply", id=cmd.get("id"), flushed=flushed)
        else:
            self.event("reply", id=cmd.get("id"), error=f"unknown command {cmd.get('cmd')!r}")

    def event(self, kind: str, **fields: Any) -> None:
        """Write one event line, stamped on the lab clock."""
        self.out.write(json.dumps({"t": time.time(), "event": kind, **fields}) + "\n")
        self.out.flush()

    def serve(self, commands: int) -> None:
        """Handle frames and commands (read from descriptor ``commands``) until its end."""
        selector = selectors.DefaultSelector()
        selector.register(self.nflog, selectors.EVENT_READ, "nflog")
        selector.register(commands, selectors.EVENT_READ, "commands")
        self.event("ready", networks=sorted(self.networks), pid=os.getpid())
        pending = b""
        while True:
            for key, _ in selector.select():
                if key.data == "nflog":
                    self.on_netlink()
                    continue
                # Raw reads, not readline(): a buffered reader could hold a second command
                # that the selector would never report again.
                chunk = os.read(commands, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self.on_command(line.decode())


def _describe(proto: int, src_mac: bytes, payload: bytes) -> dict[str, Any]:
    """What a dropped frame claimed to be, for the event."""
    out: dict[str, Any] = {"ethertype": f"0x{proto:04x}", "src_mac": mac_text(src_mac)}
    if proto == ETH_P_ARP and len(payload) >= 28:
        _, _, _, _, op, sha, spa, _, tpa = _ARP.unpack_from(payload)
        out.update(op=op, sha=mac_text(sha), spa=ip_text(spa), tpa=ip_text(tpa))
    elif proto == ETH_P_IP and len(payload) >= 20:
        out.update(src_ip=ip_text(payload[12:16]), dst_ip=ip_text(payload[16:20]))
    return out


def main(argv: list[str]) -> int:
    """Entry point: ``python -m lab.sdn.controller CONFIG.json``."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m lab.sdn.controller CONFIG.json\n")
        return 2
    with open(argv[0]) as f:
        config = json.load(f)
    controller = Controller(config, sys.stdout)
    # Latency over memory: the per-frame objects are freed by reference counting, so the cycle
    # collector only adds pauses to the ARP path.
    gc.disable()
    with contextlib.suppress(OSError):
        os.nice(-5)  # ahead of the instances' daemons; refused rootless, which is fine
    controller.serve(sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
