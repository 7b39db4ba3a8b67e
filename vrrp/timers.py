"""The VRRP timers, per RFC: Skew_Time, Master_Down_Interval and the windows derived from them.

This is the only place these formulas are written. The state machine (:mod:`vrrp.state`) uses
them to run its timers. The lab uses them for its RFC "theory" figures, its conformance
windows and its benchmarks. The three RFCs differ:

RFC 3768 (VRRPv2), §6.1
    ``Skew_Time = (256 - Priority) / 256`` seconds. It is **not** scaled by the advertisement
    interval. ``Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time``. The
    Advertisement_Interval is whole seconds (the 8-bit Adver Int field, §5.3.7). A backup
    never takes on a master's interval: §7.1 says to discard an advert whose interval differs
    from its own.
RFC 5798 (VRRPv3), §6.1
    ``Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256`` and
    ``Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time``, in centiseconds (the
    12-bit Max Adver Int field, §5.2.7). A backup takes on the master's interval as its
    Master_Adver_Interval (§6.4.2, lines 450-460). At that step it recomputes only
    Master_Down_Interval and keeps its Skew_Time from the interval it had before.
RFC 9568 (VRRPv3, obsoletes RFC 5798), §6.1 and §6.4.2
    The same formulas. When a backup takes on the master's interval it also recomputes
    Skew_Time ("Recompute the Skew_Time"), so both timers follow the new interval.

Intervals are centiseconds here, the v3 wire unit. Integer arithmetic with a single division
at the end keeps every case that is exact in binary exact (100 cs at priority 100 gives
Skew_Time 0.609375 s). Results are float seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Rfc",
    "Timers",
    "centiseconds",
    "master_down_interval",
    "skew_time",
]

#: Centiseconds per second: the unit of RFC 5798's Max Adver Int.
CENTISECONDS = 100
#: The 256 in every Skew_Time formula: one more than the highest priority (RFC 5798 §6.1).
_SKEW_DIVISOR = 256


class Rfc(enum.StrEnum):
    """The RFC whose §6.1 timers a VRRP router follows."""

    RFC3768 = "RFC 3768"
    """VRRPv2."""
    RFC5798 = "RFC 5798"
    """VRRPv3, where a backup keeps its Skew_Time when it takes on a master's interval."""
    RFC9568 = "RFC 9568"
    """VRRPv3 as updated, where a backup also recomputes Skew_Time (§6.4.2)."""

    @classmethod
    def of(cls, version: int, rfc9568: bool = False) -> Rfc:
        """The RFC for VRRP ``version`` (2 or 3). ``rfc9568`` picks RFC 9568's behaviour for
        v3 and is ignored for v2, which has no RFC 9568."""
        if version == 2:
            return cls.RFC3768
        if version == 3:
            return cls.RFC9568 if rfc9568 else cls.RFC5798
        raise ValueError(f"VRRP version must be 2 or 3, got {version}")

    @property
    def version(self) -> int:
        """The VRRP version number in the header: 2 for RFC 3768, 3 otherwise."""
        return 2 if self is Rfc.RFC3768 else 3

    @property
    def adopts_master_interval(self) -> bool:
        """Whether a backup takes the master's advertised interval as its Master_Adver_Interval
        (RFC 5798 / RFC 9568 §6.4.2). A v2 backup does not. It discards an advert whose
        interval differs from its own (RFC 3768 §7.1)."""
        return self is not Rfc.RFC3768

    @property
    def recomputes_skew_on_adoption(self) -> bool:
        """Whether a backup recomputes Skew_Time when it adopts a master's interval. RFC 9568
        §6.4.2 does. RFC 5798 §6.4.2 (455) recomputes only Master_Down_Interval."""
        return self is Rfc.RFC9568


def centiseconds(seconds: float) -> int:
    """``seconds`` as whole centiseconds. Raises ValueError for an interval VRRP cannot
    carry (finer than 0.01 s), so it is never rounded quietly."""
    cs = round(seconds * CENTISECONDS)
    if abs(cs - seconds * CENTISECONDS) > 1e-6:
        raise ValueError(f"{seconds!r} s is not a whole number of centiseconds")
    return cs


def skew_time(rfc: Rfc, priority: int, interval_cs: int) -> float:
    """Skew_Time in seconds, for a router of ``priority`` (1..255).

    - RFC 3768 §6.1: ``(256 - Priority) / 256`` s. ``interval_cs`` plays no part.
    - RFC 5798 / RFC 9568 §6.1: ``((256 - Priority) * Master_Adver_Interval) / 256``, where
      ``interval_cs`` is the Master_Adver_Interval in centiseconds.
    """
    headroom = _SKEW_DIVISOR - priority
    if rfc is Rfc.RFC3768:
        return headroom / _SKEW_DIVISOR
    return headroom * interval_cs / (_SKEW_DIVISOR * CENTISECONDS)


def master_down_interval(interval_cs: int, skew: float) -> float:
    """Master_Down_Interval in seconds, ``3 * interval + Skew_Time`` (§6.1 of all three RFCs).

    ``interval_cs`` is the v3 Master_Adver_Interval, or the v2 Advertisement_Interval, in
    centiseconds. ``skew`` is passed in rather than computed because under RFC 5798 a backup's
    Skew_Time can lag behind the interval it adopted (see :class:`Timers`).
    """
    return 3 * interval_cs / CENTISECONDS + skew


@dataclass(frozen=True, slots=True)
class Timers:
    """A backup's §6.1 timers: what it waits before it takes over.

    ``interval_cs`` is the interval the backup times the master by. For v3 that is its
    Master_Adver_Interval. For v2 it is its own Advertisement_Interval.
    ``skew_interval_cs`` is the interval its Skew_Time was last computed from. It is the same
    unless an RFC 5798 backup adopted a master's interval (see :meth:`adopt`). None means
    ``interval_cs``.
    """

    rfc: Rfc
    priority: int
    interval_cs: int
    skew_interval_cs: int | None = None

    def __post_init__(self) -> None:
        """Reject figures no VRRP router can have."""
        if not 1 <= self.priority <= 255:
            raise ValueError(f"priority must be 1..255, got {self.priority}")
        if self.interval_cs < 1:
            raise ValueError(f"interval must be at least 1 cs, got {self.interval_cs}")

    @classmethod
    def of(cls, version: int, priority: int, advert_int: float, *, rfc9568: bool = False) -> Timers:
        """The timers of a backup configured with ``advert_int`` seconds (keepalived's unit)."""
        return cls(Rfc.of(version, rfc9568), priority, centiseconds(advert_int))

    @property
    def advert_int(self) -> float:
        """The interval the backup times the master by, in seconds."""
        return self.interval_cs / CENTISECONDS

    @property
    def skew_time(self) -> float:
        """Skew_Time in seconds (§6.1; see :func:`skew_time`)."""
        skew_cs = self.interval_cs if self.skew_interval_cs is None else self.skew_interval_cs
        return skew_time(self.rfc, self.priority, skew_cs)

    @property
    def master_down_interval(self) -> float:
        """Master_Down_Interval in seconds (§6.1; see :func:`master_down_interval`)."""
        return master_down_interval(self.interval_cs, self.skew_time)

    def adopt(self, master_interval_cs: int) -> Timers:
        """These timers after the backup accepts an advert carrying ``master_interval_cs``
        (§6.4.2).

        - RFC 3768: unchanged. A v2 backup keeps its own interval, since §7.1 discards an
          advert whose interval differs.
        - RFC 5798: the new Master_Adver_Interval, with Skew_Time still computed from the
          interval the backup had before.
        - RFC 9568: the new interval for both timers.
        """
        if not self.rfc.adopts_master_interval:
            return self
        if self.rfc.recomputes_skew_on_adoption:
            return Timers(self.rfc, self.priority, master_interval_cs)
        skew_cs = self.interval_cs if self.skew_interval_cs is None else self.skew_interval_cs
        return Timers(self.rfc, self.priority, master_interval_cs, skew_cs)

    def detection(self, priority_zero: bool) -> float:
        """How long after the master's last advert the backup takes over, in seconds.

        After a priority-0 advert that is Skew_Time: §6.4.2 sets the Master_Down_Timer to
        Skew_Time (RFC 3768 and RFC 5798 lines 425-430). After silence it is the full
        Master_Down_Interval.
        """
        return self.skew_time if priority_zero else self.master_down_interval

    def silent_failure_window(self) -> tuple[float, float]:
        """When a backup takes over after a master that went silent, in seconds from the
        moment it went silent: ``[Master_Down_Interval - interval, Master_Down_Interval]``.

        The master's last advert came up to one interval before it went silent, and the
        Master_Down_Timer runs from that advert (§6.4.2).
        """
        mdi = self.master_down_interval
        return mdi - self.advert_int, mdi
