"""The BFD part of the keepalived model: ``bfd_instance`` blocks and ``track_bfd`` entries.

keepalived 2.2.7 reads them in keepalived/bfd/bfd_parser.c (``init_bfd_keywords``) and
keepalived/vrrp/vrrp_track.c (``alloc_track_bfd``); the defaults are keepalived/include/bfd.h's.
As in the rest of :mod:`vrrp.config`, what keepalived reports as a configuration error and
then repairs (a duplicate neighbour, ``max_hops`` above the TTL, a weighted ``track_bfd`` on
the address owner, a ``track_bfd`` naming an instance defined later in the file) is a
:class:`ConfigError` here.

Times are seconds in the model, as everywhere in :mod:`vrrp.config`; the file writes them in
milliseconds with up to three decimals (keepalived keeps microseconds).
"""

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from .errors import ConfigError, Problem
from .tracked import TrackEntry, tracked_entry_problems
from .values import (
    BFD_IDLE_TX,
    BFD_INTERVAL,
    BFD_MAX_HOPS,
    BFD_MULTIPLIER,
    BFD_NAME_MAX,
    BFD_TTL,
    TRACK_WEIGHT,
    VRRP_PRIO_OWNER,
    IPAddress,
    check_bool,
    check_type,
    check_word,
    coerce_ip,
    fail,
    family_name,
)

__all__ = [
    "BFD_DEFAULT_TTL",
    "BfdInstance",
    "TrackBfd",
    "bfd_instance_problems",
    "check_bfd_instances",
    "check_bfd_name",
    "duplicate_bfd_problem",
    "track_bfd_problems",
]

BFD_DEFAULT_TTL = 255
"""The TTL / hop limit sent (and the reference of the receive check) without ``ttl``: RFC 5881
§5's 255. keepalived uses 255 for IPv4 but 64 for IPv6 (``BFD_CONTROL_HOPLIMIT``), which a
single-hop peer such as FRR's bfdd drops; the bundled daemon uses 255 for both families."""

_KEEPALIVED_IPV6_HOPLIMIT = 64


def check_bfd_name(keyword: str, value: object) -> str:
    """``value`` if it is a BFD instance name keepalived keeps (a word of at most 31 characters)."""
    name = check_word(keyword, value, "a BFD instance name")
    if len(name) > BFD_NAME_MAX:
        raise fail(keyword, f"a BFD instance name of at most {BFD_NAME_MAX} characters", name)
    return name


@dataclass
class BfdInstance:
    """A ``bfd_instance NAME { ... }`` block; defaults are keepalived 2.2.7's.

    ``name`` and ``neighbor_ip`` (also spelt ``neighbour_ip`` in the file) are required; the
    rest is keyword-only. ``min_rx``, ``min_tx`` and ``idle_tx`` are seconds (the file writes
    milliseconds). ``ttl`` is ``None`` when not configured (see :attr:`effective_ttl`).
    ``max_hops`` -1 means 255: no receive check. ``weight`` and ``reverse`` are the default of
    every ``track_bfd`` naming this instance without its own weight. ``vrrp`` and ``checker``
    say which keepalived processes hear its events (neither: both).
    """

    name: str
    neighbor_ip: IPAddress
    _: KW_ONLY
    source_ip: IPAddress | None = None
    min_rx: float = 0.010
    min_tx: float = 0.010
    idle_tx: float = 1.0
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None
    max_hops: int = 0
    weight: int = 0
    reverse: bool = False
    vrrp: bool = False
    checker: bool = False

    def __post_init__(self) -> None:
        self.neighbor_ip = coerce_ip("neighbor_ip", self.neighbor_ip)
        if self.source_ip is not None:
            self.source_ip = coerce_ip("source_ip", self.source_ip)
        self.min_rx = BFD_INTERVAL.seconds("min_rx", self.min_rx)
        self.min_tx = BFD_INTERVAL.seconds("min_tx", self.min_tx)
        self.idle_tx = BFD_IDLE_TX.seconds("idle_tx", self.idle_tx)
        self.validate()

    def validate(self) -> None:
        """Check each field on its own; raise :class:`ConfigError` if one is invalid.

        What needs several fields (the families, ``max_hops`` against the TTL) is
        :func:`bfd_instance_problems`.
        """
        check_bfd_name("bfd_instance", self.name)
        coerce_ip("neighbor_ip", self.neighbor_ip)
        if self.source_ip is not None:
            coerce_ip("source_ip", self.source_ip)
        BFD_INTERVAL.ticks("min_rx", self.min_rx)
        BFD_INTERVAL.ticks("min_tx", self.min_tx)
        BFD_IDLE_TX.ticks("idle_tx", self.idle_tx)
        BFD_MULTIPLIER.check("multiplier", self.multiplier)
        check_bool("passive", self.passive)
        BFD_TTL.check_opt("ttl", self.ttl)
        BFD_MAX_HOPS.check("max_hops", self.max_hops)
        TRACK_WEIGHT.check("weight", self.weight)
        check_bool("weight reverse", self.reverse)
        check_bool("vrrp", self.vrrp)
        check_bool("checker", self.checker)

    @property
    def family(self) -> int:
        """4 or 6, the neighbour's family."""
        return self.neighbor_ip.version

    @property
    def effective_ttl(self) -> int:
        """The TTL / hop limit the bundled daemon sends and checks against: ``ttl``, else 255
        for both families (RFC 5881 §5; see :data:`BFD_DEFAULT_TTL`)."""
        return BFD_DEFAULT_TTL if self.ttl is None else self.ttl

    @property
    def keepalived_ttl(self) -> int:
        """The TTL / hop limit keepalived 2.2.7 uses: ``ttl``, else 255 (IPv4) or 64 (IPv6)."""
        if self.ttl is not None:
            return self.ttl
        return BFD_DEFAULT_TTL if self.family == 4 else _KEEPALIVED_IPV6_HOPLIMIT

    @property
    def effective_max_hops(self) -> int:
        """``max_hops`` as keepalived keeps it (in a uint8: -1 is 255, which disables the check)."""
        return self.max_hops & 0xFF

    @property
    def notifies_vrrp(self) -> bool:
        """Whether the VRRP process hears this instance's events (``vrrp``, or neither flag)."""
        return self.vrrp or not self.checker


@dataclass
class TrackBfd(TrackEntry):
    """A ``track_bfd`` entry: ``NAME [weight -253..253 [reverse|noreverse]]``.

    ``weight`` and ``reverse`` are ``None`` when not written: the ``bfd_instance``'s own
    ``weight`` (and ``reverse``) apply then. Note keepalived's rule for ``reverse``: without
    the word it is inherited from the ``bfd_instance`` even when the entry has a weight, so
    ``noreverse`` is needed to undo an instance's ``reverse``. Weight 0 means unweighted: the
    VRRP instance is in FAULT while the session is not Up (while it is Up with ``reverse``).
    """

    keyword: ClassVar[str] = "track_bfd"
    reverse_words: ClassVar[str] = "'reverse'/'noreverse'"

    def check_name(self) -> None:
        """A BFD instance name keepalived keeps."""
        check_bfd_name("track_bfd", self.name)


def bfd_instance_problems(bfd: BfdInstance) -> list[Problem]:
    """The errors of one ``bfd_instance`` that need several of its fields (keepalived's
    ``bfd_end_handler``); each keyed by the field to locate it."""
    problems: list[Problem] = []
    if bfd.source_ip is not None and bfd.source_ip.version != bfd.family:
        problems.append(
            Problem(
                f"source_ip: expected an {family_name(bfd.family)} address like neighbor_ip "
                f"{bfd.neighbor_ip}, got {bfd.source_ip}",
                "source_ip",
            )
        )
    ttl = bfd.keepalived_ttl
    if bfd.effective_max_hops > ttl:
        # keepalived clamps it to the TTL with a configuration error; on IPv6 without a
        # hoplimit its TTL is 64, so say how to get there.
        hint = (
            " (keepalived's default IPv6 hoplimit is 64: set hoplimit)" if bfd.ttl is None else ""
        )
        problems.append(
            Problem(
                f"max_hops: expected at most the ttl/hoplimit {ttl}{hint}, got {bfd.max_hops}",
                "max_hops",
            )
        )
    return problems


def duplicate_bfd_problem(a: BfdInstance, b: BfdInstance) -> str | None:
    """keepalived refuses a second instance for the same neighbour unless both name different
    source addresses (``find_bfd_by_addr``); the message for ``b``, or None."""
    if a.neighbor_ip != b.neighbor_ip:
        return None
    if a.source_ip is not None and b.source_ip is not None and a.source_ip != b.source_ip:
        return None
    return (
        f"neighbor_ip: expected a neighbour not used by bfd_instance {a.name} (or both with "
        f"different source_ip), got {b.neighbor_ip}"
    )


def track_bfd_problems(
    tracks: Sequence[TrackBfd], priority: int, bfds: Mapping[str, BfdInstance]
) -> list[Problem]:
    """The errors of a ``vrrp_instance``'s ``track_bfd`` entries: an unknown or duplicate name,
    an instance whose events do not reach VRRP, a weight on the address owner. Keyed
    ``("track_bfd", index)``."""

    def reaches_vrrp(bfd: BfdInstance) -> str | None:
        if bfd.notifies_vrrp:
            return None
        return (
            f"expected a bfd_instance whose events reach VRRP, got {bfd.name!r} (it has "
            "'checker' and no 'vrrp')"
        )

    owner = priority == VRRP_PRIO_OWNER
    return tracked_entry_problems("track_bfd", "bfd_instance", tracks, owner, bfds, reaches_vrrp)


def check_bfd_instances(bfds: Sequence[BfdInstance]) -> dict[str, BfdInstance]:
    """Check a configuration's ``bfd_instance`` blocks (each, and each against the earlier
    ones); return them by name. Raises :class:`ConfigError` on the first problem."""
    done: dict[str, BfdInstance] = {}
    for bfd in bfds:
        check_type("bfd_instance", bfd, BfdInstance).validate()
        if bfd.name in done:
            raise ConfigError(f"bfd_instance: expected a unique name, got {bfd.name!r} twice")
        messages = [p.message for p in bfd_instance_problems(bfd)]
        messages += [m for other in done.values() if (m := duplicate_bfd_problem(other, bfd))]
        if messages:
            raise ConfigError(f"bfd_instance {bfd.name}: {messages[0]}")
        done[bfd.name] = bfd
    return done
