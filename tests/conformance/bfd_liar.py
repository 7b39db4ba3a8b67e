"""A scripted BFD stand-in that breaks exactly one rule: proof that each B row can fail.

Run inside a lab node as ``python bfd_liar.py -f WRAPPER --flaw NAME``. It reads the same
wrapper config the lab gives every router (the notify FIFO from ``global_defs``, the
``vrrp_instance`` name, and the ``bfd_instance`` of the included ``keepalived.conf``), reports
its VRRP instance ``BACKUP`` on the FIFO (so the driver sees it start, as any daemon) and plays
one RFC 5880 asynchronous session towards the neighbour on UDP sockets: the pure
:class:`vrrp.bfd.session.Session` for the protocol, :func:`vrrp.bfd.packet.decode` with the TTL
for the reception checks. It sends no VRRP at all: the B rows look at BFD only.

``--flaw`` names the one rule it breaks (see :data:`FLAWS`); ``none`` breaks nothing, so the
same checks that fail on a flaw pass on it. This is test code: the product has no such switch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vrrp.bfd.packet import (
    CONTROL_PORT,
    SOURCE_PORTS,
    BfdError,
    Control,
    Diag,
    SessionState,
    decode,
    encode,
)
from vrrp.bfd.session import Send, Session, SessionParams, StateChanged

#: Each flaw and the row whose rule it breaks.
FLAWS = {
    "none": "",
    "ttl64": "B01",
    "skip-init": "B02",
    "ignore-min-rx": "B03",
    "no-final": "B04",
    "own-multiplier": "B05",
    "fast-before-up": "B06",
    "admin-down-as-failure": "B07",
    "ignore-your-discriminator": "B08",
    "accept-malformed": "B09",
}
_SIZE = struct.Struct("!BBBBIIIII")
#: Linux's IP_RECVTTL (linux/in.h), which Python's socket module does not name.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)


class FlawedSession(Session):
    """The pure session with the stand-in's flaw in the one place it lives."""

    flaw = "none"

    def _advertised(self) -> tuple[int, int]:
        if self.flaw == "fast-before-up":
            # The configured rate in every state: no slow rate before Up (RFC 5880 §6.8.3).
            return self._params.desired_min_tx_us, self._params.required_min_rx_us
        return super()._advertised()

    def _tx_interval_us(self) -> int:
        if self.flaw == "ignore-min-rx":
            return self._tx_in_use_us  # the peer's Required Min RX never slows it (§6.8.7)
        return super()._tx_interval_us()

    def _detection_time_us(self) -> int | None:
        detection = super()._detection_time_us()
        if self.flaw == "own-multiplier" and detection is not None:
            # Its own Detect Mult where the remote's belongs (§6.8.4).
            assert self._remote_detect_mult is not None
            return detection // self._remote_detect_mult * self._params.detect_mult
        return detection

    def _transition(self, now: float, received: SessionState) -> list[StateChanged | Send]:
        if (
            self.flaw == "skip-init"
            and self._state is SessionState.DOWN
            and received is SessionState.DOWN
        ):
            return self._set_state(now, SessionState.UP, Diag.NONE)  # Down → Up, no Init
        return super()._transition(now, received)  # type: ignore[return-value]


@dataclasses.dataclass
class BfdConfig:
    """The one ``bfd_instance`` the stand-in runs (keepalived's keywords and defaults)."""

    name: str
    neighbor: str
    source: str
    min_rx: float = 0.010
    min_tx: float = 0.010
    multiplier: int = 5


def read_config(wrapper: str) -> tuple[str | None, str, BfdConfig]:
    """The notify FIFO, the VRRP instance name and the ``bfd_instance`` of ``wrapper``."""
    text = Path(wrapper).read_text()
    fifo = re.search(r"vrrp_notify_fifo\s+(\S+)", text)
    for include in re.findall(r"^\s*include\s+(\S+)", text, re.M):
        text += "\n" + Path(include).read_text()
    instance = re.search(r"vrrp_instance\s+(\S+)\s*\{", text)
    block = re.search(r"bfd_instance\s+(\S+)\s*\{([^}]*)\}", text)
    if block is None or instance is None:
        raise SystemExit(f"{wrapper}: no vrrp_instance or bfd_instance")
    words = dict(
        line.split(None, 1) for line in block.group(2).splitlines() if len(line.split()) == 2
    )
    bfd = BfdConfig(
        block.group(1),
        words.get("neighbor_ip") or words["neighbour_ip"],
        words["source_ip"],
        float(words.get("min_rx", 10)) / 1000,
        float(words.get("min_tx", 10)) / 1000,
        int(words.get("multiplier", 5)),
    )
    return (fifo.group(1) if fifo else None), instance.group(1), bfd


def lenient(data: bytes) -> Control | None:
    """Whatever the octets say, with no reception check at all (the ``accept-malformed``
    flaw): only what cannot be read at all is dropped."""
    if len(data) < _SIZE.size:
        return None
    vers, flags, mult, _length, mine, yours, tx, rx, echo = _SIZE.unpack_from(data)
    return Control(
        version=vers >> 5,
        diag=vers & 0x1F,
        state=flags >> 6,
        poll=bool(flags & 0x20),
        final=bool(flags & 0x10),
        auth_present=bool(flags & 0x04),
        demand=bool(flags & 0x02),
        detect_mult=mult,
        my_discriminator=mine,
        your_discriminator=yours,
        desired_min_tx_us=tx,
        required_min_rx_us=rx,
        required_min_echo_rx_us=echo,
    )


class BfdLiar:
    """One BFD session, honest except for :attr:`flaw`."""

    def __init__(self, wrapper: str, flaw: str) -> None:
        fifo, self.instance, cfg = read_config(wrapper)
        self.flaw = flaw
        self.family = 6 if ":" in cfg.neighbor else 4
        af = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        self.peer = cfg.neighbor
        self.rx = socket.socket(af, socket.SOCK_DGRAM)
        if self.family == 4:
            self.rx.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        else:
            self.rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        self.rx.bind((cfg.source, CONTROL_PORT))
        self.tx = socket.socket(af, socket.SOCK_DGRAM)
        self.tx.bind((cfg.source, random.choice(SOURCE_PORTS)))
        ttl = 64 if flaw == "ttl64" else 255
        if self.family == 4:
            self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        else:
            self.tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        FlawedSession.flaw = flaw
        self.session = FlawedSession(
            SessionParams(
                local_discriminator=random.randint(1, 0xFFFF_FFFF),
                desired_min_tx=cfg.min_tx,
                required_min_rx=cfg.min_rx,
                detect_mult=cfg.multiplier,
            )
        )
        self.fifo = os.open(fifo, os.O_WRONLY) if fifo else None
        self.stop = False

    def notify(self, state: str) -> None:
        if self.fifo is not None:
            os.write(self.fifo, f'INSTANCE "{self.instance}" {state} 100\n'.encode())

    def execute(self, actions: list[StateChanged | Send]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self.flaw == "no-final" and action.control.final:
                    continue  # a Poll is never answered (RFC 5880 §6.8.7)
                self.tx.sendto(encode(action.control), (self.peer, CONTROL_PORT))

    def accept(self, data: bytes, ttl: int | None) -> Control | None:
        """The packet if this session takes it (RFC 5881 §5, RFC 5880 §6.8.6), else None."""
        mine = self.session.local_discriminator
        if self.flaw == "accept-malformed":
            control = lenient(data)
        else:
            try:
                control = decode(data, ttl=None if self.flaw == "ttl64" else ttl)
            except BfdError:
                return None
        if control is None:
            return None
        if control.your_discriminator not in (0, mine):
            if self.flaw != "ignore-your-discriminator":
                return None  # names no session of ours
            control = dataclasses.replace(control, your_discriminator=mine)
        if self.flaw == "admin-down-as-failure" and control.state is SessionState.ADMIN_DOWN:
            return None  # the peer's AdminDown is not heard: the session times out instead
        return control

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        self.notify("BACKUP")
        self.execute(self.session.start(time.monotonic()))
        space = socket.CMSG_SPACE(4)
        while not self.stop:
            deadline = self.session.next_deadline()
            wait = 0.2 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([self.rx], [], [], min(wait, 0.2))
            except InterruptedError:
                continue
            while ready:
                try:
                    data, ancillary, _, _ = self.rx.recvmsg(512, space, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                ttl = next((int.from_bytes(d[:4], sys.byteorder) for _, _, d in ancillary), None)
                control = self.accept(data, ttl)
                if control is not None:
                    self.execute(self.session.received(time.monotonic(), control))
            self.execute(self.session.tick(time.monotonic()))
        self.notify("STOP")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="config", required=True)
    parser.add_argument("--flaw", choices=sorted(FLAWS), default="none")
    args, _ = parser.parse_known_args()
    return BfdLiar(args.config, args.flaw).run()


if __name__ == "__main__":
    sys.exit(main())
