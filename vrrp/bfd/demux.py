"""The session table of a BFD endpoint (RFC 5880 §6.8.6, RFC 5881 §3): which session a
received packet belongs to, and the allocation of local discriminators.

Pure code beside :mod:`vrrp.bfd.session`: no sockets, no clock.
"""

from __future__ import annotations

import ipaddress
import random

from vrrp.bfd.packet import Control, Discard, SessionState
from vrrp.bfd.session import Session

__all__ = ["Demux"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
"""A peer address of either family."""

_Binding = tuple[IPAddress, str | int]
_MAX_DISCRIMINATOR = 0xFFFF_FFFF


def _address(value: str | IPAddress) -> IPAddress:
    """Parse an address, dropping any IPv6 zone: the interface is keyed separately."""
    address = ipaddress.ip_address(value) if isinstance(value, str) else value
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(address.packed)
    return address


class Demux:
    """The session table of a BFD endpoint: which session a received packet belongs to.

    RFC 5880 §6.8.6: a nonzero Your Discriminator selects the session. A zero one (allowed
    only in Down and AdminDown) leaves the choice to the application; for single hop RFC
    5881 §3 binds each session to one peer address and one interface, and a packet "with a
    zero value of Your Discriminator MUST be associated with the session bound to the
    remote system, interface, and protocol". Interfaces are whatever hashable the driver
    uses (a name or an ifindex), consistently.
    """

    def __init__(self) -> None:
        """An empty table."""
        self._by_discr: dict[int, tuple[Session, _Binding]] = {}
        self._by_binding: dict[_Binding, Session] = {}

    def __len__(self) -> int:
        """The number of sessions."""
        return len(self._by_discr)

    def add(
        self,
        session: Session,
        *,
        peer: str | IPAddress,
        interface: str | int,
    ) -> None:
        """Register ``session``, bound to ``peer`` on ``interface``.

        Raises ValueError if its discriminator or its binding is already taken: §6.8.1
        wants discriminators unique on the system, RFC 5881 §3 one session per peer and
        interface.
        """
        discr = session.local_discriminator
        binding = (_address(peer), interface)
        if discr in self._by_discr:
            raise ValueError(f"discriminator {discr} is already in use")
        if binding in self._by_binding:
            raise ValueError(f"a session for {binding[0]} on {interface!r} already exists")
        self._by_discr[discr] = (session, binding)
        self._by_binding[binding] = session

    def remove(self, session: Session) -> None:
        """Forget ``session``; KeyError if it was not registered."""
        _, binding = self._by_discr.pop(session.local_discriminator)
        del self._by_binding[binding]

    def lookup(
        self,
        control: Control,
        *,
        source: str | IPAddress,
        interface: str | int,
    ) -> Session | Discard:
        """The session ``control`` (from ``source``, received on ``interface``) is for.

        Returns the discard reason instead when there is none: NO_SESSION for an unknown
        discriminator or binding, BINDING when the discriminator names a session bound to
        another peer or interface (RFC 5881 §3), YOUR_DISCRIMINATOR for a zero one outside
        Down/AdminDown (already refused by :func:`vrrp.bfd.packet.decode`).
        """
        binding = (_address(source), interface)
        if control.your_discriminator:
            entry = self._by_discr.get(control.your_discriminator)
            if entry is None:
                return Discard.NO_SESSION
            session, bound = entry
            return session if bound == binding else Discard.BINDING
        if control.state not in (SessionState.DOWN, SessionState.ADMIN_DOWN):
            return Discard.YOUR_DISCRIMINATOR
        return self._by_binding.get(binding, Discard.NO_SESSION)

    def allocate_discriminator(self, rng: random.Random | None = None) -> int:
        """A nonzero discriminator no registered session uses.

        §6.8.1: bfd.LocalDiscr "SHOULD be set to a random (but still unique) value to
        improve security", so the default source is the system's CSPRNG.
        """
        rng = rng or random.SystemRandom()
        while True:
            candidate = rng.randint(1, _MAX_DISCRIMINATOR)
            if candidate not in self._by_discr:
                return candidate
