"""Receive statistics of a codec: totals, and one counter per reason a message was discarded.

VRRP (:class:`vrrp.packet.Counters`, by :class:`vrrp.packet.Reason`) and BFD
(:class:`vrrp.bfd.packet.Counters`, by :class:`vrrp.bfd.packet.Discard`) count the same way, so
both are this class over their own reasons. Pure: no I/O.
"""

from __future__ import annotations

from enum import Enum
from typing import Generic, TypeVar

R = TypeVar("R", bound=Enum)


class DiscardCounters(Generic[R]):
    """Messages received and accepted, and discards by reason (every reason listed, from 0)."""

    def __init__(self, reasons: type[R]) -> None:
        """Start with every counter at zero, so reports always list every reason."""
        self.received = 0
        """Messages handed to the codec's ``decode``."""
        self.accepted = 0
        """Messages that passed every check of ``decode``."""
        self._by_reason: dict[R, int] = dict.fromkeys(reasons, 0)

    def count(self, reason: R) -> int:
        """Add one discard for ``reason``; return that reason's new total."""
        self._by_reason[reason] += 1
        return self._by_reason[reason]

    def __getitem__(self, reason: R) -> int:
        """The number of discards for ``reason`` so far."""
        return self._by_reason[reason]

    @property
    def discarded(self) -> int:
        """All discards, whatever the reason."""
        return sum(self._by_reason.values())

    def as_dict(self) -> dict[str, int | dict[str, int]]:
        """A JSON-ready snapshot: totals and a ``reasons`` map keyed by each reason's value."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            "discarded": self.discarded,
            "reasons": {r.value: n for r, n in self._by_reason.items()},
        }

    def __repr__(self) -> str:
        """Show the totals and the non-zero reasons."""
        nonzero = {r.value: n for r, n in self._by_reason.items() if n}
        return f"Counters(received={self.received}, accepted={self.accepted}, {nonzero})"
