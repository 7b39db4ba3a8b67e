"""What every ``vrrp_instance`` entry naming a tracked block is and is held to (``track_bfd``
naming a ``bfd_instance``, ``track_script`` a ``vrrp_script``, ``track_file`` a ``track_file``):
one :class:`TrackEntry` with each kind's keyword, weights and ``reverse`` rule; and keepalived
2.2.7's checks, which look the name up as the entry is read, ignore one not found or seen
before, and take no weight on the address owner (vrrp_track.c ``alloc_track_bfd``,
``alloc_track_script``; track_file.c ``vrrp_alloc_track_file``; vrrp.c
``vrrp_complete_instance``). Each is an error here. Beside them :class:`TrackInterface`, the
entry naming an interface (here rather than in :mod:`.model` so that :mod:`.sync_groups`, which
:mod:`.model` imports, can use it too).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import ConfigError, Problem
from .values import TRACK_WEIGHT, IntRange, check_bool, check_ifname, check_type, check_word

__all__ = [
    "TrackEntry",
    "TrackInterface",
    "blocks_by_name",
    "entries_of",
    "tracked_entry_problems",
]


@dataclass
class TrackEntry:
    """An entry naming a tracked block: ``NAME [weight W [reverse...]]``.

    ``weight`` and ``reverse`` are ``None`` when not written: the block's own apply then. Each
    kind of entry says its keyword, its weights' range, the words it takes after a weight, and
    whether an entry's weight without such a word keeps the block's ``reverse``.
    """

    name: str
    weight: int | None = None
    reverse: bool | None = None

    keyword: ClassVar[str] = "track"
    weights: ClassVar[IntRange] = TRACK_WEIGHT
    reverse_words: ClassVar[str] = "'reverse'"
    inherits_reverse: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.validate()

    def check_name(self) -> None:
        """Check :attr:`name` (a word, unless the kind says more)."""
        check_word(self.keyword, self.name, "a name")

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        self.check_name()
        self.weights.check_opt(f"{self.keyword} weight", self.weight)
        if self.reverse is not None:
            check_bool(f"{self.keyword} reverse", self.reverse)
            if self.weight is None:
                raise ConfigError(f"{self.keyword}: expected a weight before {self.reverse_words}")

    def resolve(self, block: Any) -> tuple[int, bool]:
        """The (weight, reverse) in force for this entry, given the block it names (which has
        ``weight`` and ``reverse`` of its own)."""
        if self.weight is None:
            return block.weight, block.reverse
        if self.reverse is None:
            return self.weight, bool(block.reverse) if self.inherits_reverse else False
        return self.weight, self.reverse


@dataclass
class TrackInterface:
    """A ``track_interface`` entry: ``IFACE [weight -253..253 [reverse]]``.

    Without a weight, the instance goes to FAULT when the interface goes down.
    """

    name: str
    weight: int | None = None
    reverse: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        check_ifname("track_interface", self.name)
        TRACK_WEIGHT.check_opt("track_interface weight", self.weight)
        check_bool("track_interface reverse", self.reverse)
        if self.reverse and self.weight is None:
            raise ConfigError("track_interface: expected a weight before 'reverse'")


_Entry = TypeVar("_Entry")


def entries_of(values: object, kind: type[_Entry]) -> list[_Entry]:
    """A tracker field's entries as ``kind``: a list, a tuple or a single value (so
    ``track_script="chk"`` is one entry, not three letters), each name made an entry."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        values = [values]
    return [v if isinstance(v, kind) else kind(v) for v in values]


def tracked_entry_problems(
    keyword: str,
    kind: str,
    tracks: Sequence[TrackEntry],
    owner: bool,
    blocks: Mapping[str, Any],
    check: Callable[[Any], str | None] | None = None,
) -> list[Problem]:
    """The errors of an instance's ``keyword`` entries naming ``kind`` blocks: an unknown or
    duplicate name, what ``check(block)`` says is wrong with the block named, a weight on the
    address ``owner``. Keyed ``(keyword, index)``."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, track in enumerate(tracks):
        key = (keyword, i)
        block = blocks.get(track.name)
        if block is None:
            known = ", ".join(sorted(blocks)) or "none"
            message = f"expected the name of a {kind} (known: {known}), got {track.name!r}"
        elif track.name in seen:
            message = f"expected each {kind} once, got {track.name!r} again"
        else:
            seen.add(track.name)
            message = (check(block) if check is not None else None) or ""
            weight, _ = track.resolve(block)
            if not message and weight and owner:
                message = (
                    f"expected no weight on {track.name} for the address owner (priority 255 "
                    f"cannot be adjusted), got {weight}"
                )
        if message:
            problems.append(Problem(f"{keyword}: {message}", key))
    return problems


class _NamedBlock(Protocol):
    name: str

    def validate(self) -> None: ...


_Block = TypeVar("_Block", bound=_NamedBlock)


def blocks_by_name(kind: str, blocks: Sequence[_Block], model: type[_Block]) -> dict[str, _Block]:
    """A configuration's ``kind`` blocks by name, each checked (``model``'s ``validate``) and
    named once. Raises :class:`ConfigError` on the first problem."""
    done: dict[str, _Block] = {}
    for block in blocks:
        check_type(kind, block, model).validate()
        if block.name in done:
            raise ConfigError(f"{kind}: expected a unique name, got {block.name!r} twice")
        done[block.name] = block
    return done
