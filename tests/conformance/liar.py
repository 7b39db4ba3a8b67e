"""A scripted VRRP stand-in that breaks exactly one rule: proof that each check can fail.

Run inside a lab node as ``python liar.py -f WRAPPER --flaw NAME``. It reads the same
``keepalived.conf`` the lab gives every router (the notify FIFO from ``global_defs``, one
``vrrp_instance``), and plays a small RFC 5798 router on the instance's interface with AF_PACKET
frames built with scapy: the backup/master machine of §6.4, adverts, GARPs, ARP and echo
answers for its VIPs, priority 0 on SIGTERM. It puts nothing in the kernel (no VIP, no VMAC
interface): everything a check can see, it sends itself.

``--flaw`` names the one rule it breaks (see :data:`FLAWS`); ``none`` breaks nothing, so the
same checks that fail on a flaw pass on it. This is test code: the product has no such switch.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vrrp import config as kconfig
from vrrp.packet import Advert, ChecksumForm, compute_checksum, encode, vmac

#: Each flaw and the row whose rule it breaks.
FLAWS = {
    "none": "",
    "ttl254": "P01",
    "accept-ttl": "P02",
    "wrong-group": "P03",
    "accept-type": "P04",
    "bad-checksum": "P05",
    "accept-short": "P06",
    "accept-interval0": "P07",
    "physical-mac": "P08",
    "vip-source": "P09",
    "short-mdi": "T01",
    "own-interval": "T02",
    "jitter": "T03",
    "owner-waits": "F01",
    "no-priority0": "F02",
    "ignore-priority0": "F03",
    "always-preempt": "F04",
    "lower-ip-wins": "F05",
    "answer-losing": "F06",
    "no-garp": "A01",
    "arp-as-backup": "A02",
    "accept-always": "A03",
    "any-unicast-source": "U01",
}
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
GROUP = "224.0.0.18"


class Liar:
    """One VRRP instance, honest except for :attr:`flaw`."""

    def __init__(self, wrapper: str, flaw: str) -> None:
        text = Path(wrapper).read_text()
        cfg = kconfig.load(wrapper)
        inst = cfg.instances[0]
        included = "".join(Path(p).read_text() for p in _includes(text))
        self.flaw = flaw
        self.name = inst.name
        self.ifname = inst.interface
        self.vrid = inst.virtual_router_id
        self.version = inst.version or cfg.global_defs.vrrp_version
        self.adv = inst.advert_int
        self.priority = inst.priority or (255 if inst.state == "MASTER" else 100)
        self.preempt = not inst.nopreempt
        self.accept = bool(inst.accept)  # the RFC default: Accept_Mode False
        self.rfc9568 = "rfc9568" in included
        self.vips = [str(v.address.ip) for v in inst.virtual_ipaddress]
        self.family = 6 if ":" in self.vips[0] else 4
        self.peers = [str(p.address) for p in inst.unicast_peer]
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((self.ifname, 0))
        self.mac = Path(f"/sys/class/net/{self.ifname}/address").read_text().strip()
        self.ip = (
            str(inst.unicast_src_ip)
            if inst.unicast_src_ip
            else _link_local(self.ifname)
            if self.family == 6
            else _primary(self.ifname)
        )
        # Honest means RFC 5798 §7.2: always the VMAC, whatever use_vmac says.
        self.vmac = vmac(self.vrid, self.family)
        self.src_mac = self.mac if flaw == "physical-mac" else self.vmac
        fifo = cfg.global_defs.vrrp_notify_fifo
        self.fifo = os.open(fifo.path, os.O_WRONLY) if fifo else None
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.state = "INIT"
        self.master_adv = self.adv
        self.down_at = 0.0
        self.advert_at = 0.0
        self.stop = False

    # -- timers ------------------------------------------------------------------------------

    def skew(self) -> float:
        interval = self.master_adv if self.rfc9568 else self.adv
        return (256 - self.priority) * interval / 256

    def mdi(self) -> float:
        factor = 2 if self.flaw == "short-mdi" else 3
        return factor * self.master_adv + self.skew()

    # -- output ------------------------------------------------------------------------------

    def notify(self, state: str) -> None:
        self.state = state
        if self.fifo is not None:
            os.write(self.fifo, f'INSTANCE "{self.name}" {state} {self.priority}\n'.encode())

    def send_advert(self, priority: int | None = None) -> None:
        prio = self.priority if priority is None else priority
        interval = self.adv
        advert = (
            Advert.v3(self.vrid, prio, self.vips, interval_cs=round(interval * 100))
            if self.version == 3
            else Advert.v2(self.vrid, prio, self.vips, interval_s=int(interval))
        )
        src = self.vips[0] if self.flaw == "vip-source" else self.ip
        ttl = 254 if self.flaw == "ttl254" else 255
        form = ChecksumForm.RFC9568 if self.rfc9568 else ChecksumForm.RFC5798
        dests = self.peers or ["224.0.0.19" if self.flaw == "wrong-group" else GROUP]
        if self.family == 6:
            group = "ff02::13" if self.flaw == "wrong-group" else "ff02::12"
            for dst in self.peers or [group]:
                msg = encode(advert, src=src, dst=dst)
                if self.flaw == "bad-checksum":
                    msg = msg[:6] + bytes([msg[6] ^ 0x5A, msg[7]]) + msg[8:]
                ip6 = IPv6(src=src, dst=dst, hlim=ttl, nh=112) / Raw(msg)
                if self.peers:
                    # Unicast: the kernel resolves the peer (IPPROTO_RAW keeps our header).
                    self.raw6.sendto(bytes(ip6), (dst, 0))
                    continue
                group_mac = "33:33:00:00:00:" + group.rsplit(":", 1)[1].zfill(2)
                self.sock.send(bytes(Ether(src=self.src_mac, dst=group_mac) / ip6))
            return
        for dst in dests:
            msg = encode(advert, src=src, dst=dst, checksum_form=form)
            if self.flaw == "bad-checksum":
                msg = msg[:6] + bytes([msg[6] ^ 0x5A, msg[7]]) + msg[8:]
            ip = IP(src=src, dst=dst, ttl=ttl, proto=112) / Raw(msg)
            if self.peers:
                # Unicast: the kernel resolves the peer's MAC (IP_HDRINCL keeps our header).
                self.raw.sendto(bytes(ip), (dst, 0))
            else:
                octets = ipaddress.IPv4Address(dst).packed
                group_mac = f"01:00:5e:{octets[1] & 0x7F:02x}:{octets[2]:02x}:{octets[3]:02x}"
                self.sock.send(bytes(Ether(src=self.src_mac, dst=group_mac) / ip))

    def send_garps(self) -> None:
        if self.flaw == "no-garp":
            return
        if self.family == 6:
            # Unsolicited NAs (Override set, Solicited clear) naming the VMAC (RFC 5798 §8.2.2).
            for vip in self.vips:
                frame = (
                    Ether(src=self.vmac, dst="33:33:00:00:00:01")
                    / IPv6(src=self.ip, dst="ff02::1", hlim=255)
                    / ICMPv6ND_NA(tgt=vip, R=0, S=0, O=1)
                    / ICMPv6NDOptDstLLAddr(lladdr=self.vmac)
                )
                self.sock.send(bytes(frame))
            return
        for vip in self.vips:
            frame = Ether(src=self.vmac, dst="ff:ff:ff:ff:ff:ff") / ARP(
                op=1, hwsrc=self.vmac, psrc=vip, hwdst="ff:ff:ff:ff:ff:ff", pdst=vip
            )
            self.sock.send(bytes(frame))

    # -- states ------------------------------------------------------------------------------

    def become_master(self, now: float) -> None:
        self.notify("MASTER")
        self.send_advert()
        self.send_garps()
        self.advert_at = now + self.period()

    def become_backup(self, now: float, interval: float | None = None) -> None:
        if interval is not None:
            self.master_adv = interval
        self.notify("BACKUP")
        self.down_at = now + self.mdi()

    def period(self) -> float:
        if self.flaw == "jitter":
            return self.adv * random.uniform(0.5, 1.5)
        return self.adv

    # -- input -------------------------------------------------------------------------------

    def on_frame(self, data: bytes, now: float) -> None:
        frame = Ether(data)
        if frame.haslayer(ARP):
            self.on_arp(frame[ARP])
        elif frame.haslayer(IP) and frame[IP].proto == 112:
            ihl = (data[14] & 0x0F) * 4
            ip = frame[IP]
            self.on_advert(ip.src, ip.dst, ip.ttl, data[14 + ihl : 14 + ip.len])
        elif frame.haslayer(IPv6) and frame[IPv6].nh == 112:
            ip6 = frame[IPv6]
            self.on_advert(ip6.src, ip6.dst, ip6.hlim, data[54 : 54 + ip6.plen])
        elif frame.haslayer(ICMPv6ND_NS):
            self.on_ns(frame)
        elif (
            frame.haslayer(ICMP)
            and frame[ICMP].type == 8
            and frame[IP].dst in self.vips
            and self.state == "MASTER"
            and (self.accept or self.flaw == "accept-always")
        ):
            reply = (
                Ether(src=self.vmac, dst=frame.src)
                / IP(src=frame[IP].dst, dst=frame[IP].src)
                / ICMP(type=0, id=frame[ICMP].id, seq=frame[ICMP].seq)
                / frame[ICMP].payload
            )
            self.sock.send(bytes(reply))
        elif (
            frame.haslayer(ICMPv6EchoRequest)
            and frame[IPv6].dst in self.vips
            and self.state == "MASTER"
            and (self.accept or self.flaw == "accept-always")
        ):
            request = frame[ICMPv6EchoRequest]
            reply = (
                Ether(src=self.vmac, dst=frame.src)
                / IPv6(src=frame[IPv6].dst, dst=frame[IPv6].src)
                / ICMPv6EchoReply(id=request.id, seq=request.seq, data=request.data)
            )
            self.sock.send(bytes(reply))

    def on_arp(self, arp: ARP) -> None:
        if arp.op != 1 or arp.pdst not in self.vips or arp.psrc == arp.pdst:
            return
        if self.state == "MASTER" or self.flaw == "arp-as-backup":
            reply = Ether(src=self.vmac, dst=arp.hwsrc) / ARP(
                op=2, hwsrc=self.vmac, psrc=arp.pdst, hwdst=arp.hwsrc, pdst=arp.psrc
            )
            self.sock.send(bytes(reply))

    def on_ns(self, frame: Ether) -> None:
        ns = frame[ICMPv6ND_NS]
        if ns.tgt not in self.vips:
            return
        if self.state == "MASTER" or self.flaw == "arp-as-backup":
            reply = (
                Ether(src=self.vmac, dst=frame.src)
                / IPv6(src=ns.tgt, dst=frame[IPv6].src, hlim=255)
                / ICMPv6ND_NA(tgt=ns.tgt, R=0, S=1, O=1)
                / ICMPv6NDOptDstLLAddr(lladdr=self.vmac)
            )
            self.sock.send(bytes(reply))

    def valid(self, src: str, dst: str, ttl: int, msg: bytes) -> tuple[int, float] | None:
        """(priority, interval) of an acceptable advert, else None (discarded, RFC §7.1)."""
        if len(msg) < 8:
            return None
        ver, kind, vrid, prio, count = msg[0] >> 4, msg[0] & 0x0F, msg[1], msg[2], msg[3]
        if src == self.ip or (vrid != self.vrid and self.flaw != "accept-type"):
            return None
        if ttl != 255 and self.flaw != "accept-ttl":
            return None
        if (ver != self.version or kind != 1) and self.flaw != "accept-type":
            return None
        if ver not in (2, 3):
            ver = self.version  # accept-type reads an unknown version as its own
        if (
            self.peers
            and self.flaw != "any-unicast-source"
            and (src not in self.peers or dst != self.ip)
        ):
            return None
        size = 8 + (16 if self.family == 6 else 4) * count + (8 if ver == 2 else 0)
        if (count == 0 or len(msg) != size) and self.flaw != "accept-short":
            return None
        interval = (
            ((struct.unpack_from("!H", msg, 4)[0] & 0x0FFF) / 100 if ver == 3 else float(msg[5]))
            if len(msg) >= 6
            else 0.0
        )
        if interval == 0 and self.flaw != "accept-interval0":
            return None
        field = struct.unpack_from("!H", msg, 6)[0]
        forms = (
            (ChecksumForm.RFC5798, ChecksumForm.RFC9568) if ver == 3 else (ChecksumForm.RFC3768,)
        )
        good = (
            {compute_checksum(msg, src=src, dst=dst, version=ver, form=form) for form in forms}
            if ver in (2, 3)
            else set()
        )
        if field not in good and self.flaw != "accept-short":
            return None
        if ver == 2 and interval != self.adv and self.flaw != "own-interval":
            return None
        return prio, interval

    def on_advert(self, src: str, dst: str, ttl: int, msg: bytes) -> None:
        found = self.valid(src, dst, ttl, msg)
        if found is None:
            return
        prio, interval = found
        now = time.monotonic()
        adopt = None if self.flaw == "own-interval" else interval
        if self.state == "BACKUP":
            if prio == 0:
                self.down_at = now + self.skew()
            elif (not self.preempt and self.flaw != "always-preempt") or prio >= self.priority:
                if adopt is not None:
                    self.master_adv = adopt
                self.down_at = now + self.mdi()
        elif self.state == "MASTER":
            mine = ipaddress.ip_address(self.ip)
            theirs = ipaddress.ip_address(src)
            higher_ip = theirs < mine if self.flaw == "lower-ip-wins" else theirs > mine
            if prio == 0:
                if self.flaw != "ignore-priority0":
                    self.send_advert()
                    self.advert_at = now + self.period()
            elif prio > self.priority or (prio == self.priority and higher_ip):
                self.become_backup(now, adopt)
            elif self.rfc9568 != (self.flaw == "answer-losing"):
                self.send_advert()
                self.advert_at = now + self.period()

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        # As the bundled daemon does: scapy and the rest are loaded, so freeze them out of the
        # cyclic GC's reach. A full collection over them takes 12 ms on a quiet host and
        # 20-30 ms on a busy one, and the honest stand-in's T03 periods showed exactly such a
        # late advert, which no host probe saw (the process's own pause, not the host's).
        gc.collect()
        gc.freeze()
        now = time.monotonic()
        if self.priority == 255 and self.flaw != "owner-waits":
            self.become_master(now)
        else:
            self.become_backup(now)
        while not self.stop:
            now = time.monotonic()
            if self.state == "BACKUP" and now >= self.down_at:
                self.become_master(now)
            elif self.state == "MASTER" and now >= self.advert_at:
                self.send_advert()
                self.advert_at += self.period()
            due = self.down_at if self.state == "BACKUP" else self.advert_at
            try:
                ready, _, _ = select.select([self.sock], [], [], max(0.0, due - now))
            except InterruptedError:
                continue
            while ready:
                try:
                    data, addr = self.sock.recvfrom(65535, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if addr[2] != PACKET_OUTGOING:
                    self.on_frame(data, time.monotonic())
        if self.state == "MASTER" and self.flaw != "no-priority0":
            self.send_advert(priority=0)
        self.notify("STOP")
        return 0


def _includes(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.strip().startswith("include ")]


def _primary(ifname: str) -> str:
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        siocgifaddr = 0x8915
        packed = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", ifname.encode()))
    return socket.inet_ntoa(packed[20:24])


def _link_local(ifname: str) -> str:
    for line in Path("/proc/net/if_inet6").read_text().splitlines():
        raw, _, _, scope, _, name = line.split()
        if name == ifname and scope == "20":
            return str(ipaddress.IPv6Address(bytes.fromhex(raw)))
    raise SystemExit(f"{ifname} has no IPv6 link-local address")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="config", required=True)
    parser.add_argument("--flaw", choices=sorted(FLAWS), default="none")
    args, _ = parser.parse_known_args()
    return Liar(args.config, args.flaw).run()


if __name__ == "__main__":
    sys.exit(main())
