"""The file trackers of the keepalived model: ``track_file`` blocks (``vrrp_track_file`` is
keepalived's deprecated spelling) and the ``track_file`` entries of an instance.

keepalived 2.2.7 reads them in keepalived/trackers/track_file.c (``track_file_*_handler``,
``vrrp_alloc_track_file``). A tracked file holds a number; what it does to an instance is
:mod:`vrrp.tracking`'s, watching it :mod:`vrrp.watch`'s. As in the rest of :mod:`vrrp.config`,
what keepalived reports as a configuration error and then repairs (a block without ``file``, a
weight out of range, an entry naming a block defined later or not at all) is a
:class:`ConfigError` here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from .errors import ConfigError, Problem
from .tracked import TrackEntry, blocks_by_name, tracked_entry_problems
from .values import VRRP_PRIO_OWNER, IntRange, check_bool, check_word

__all__ = [
    "FILE_WEIGHT",
    "TrackFile",
    "TrackedFile",
    "check_tracked_files",
    "track_file_problems",
]

FILE_WEIGHT = IntRange(-254, 254)
"""A file's weight, in the block and in an entry (keepalived's ``read_int_strvec`` bounds: 254
lets a negative value read from the file count)."""
INIT_VALUE = IntRange(-(2**31), 2**31 - 1)
"""``init_file``'s value (keepalived warns outside -254..254, and writes it anyway)."""


@dataclass
class TrackedFile:
    """A ``track_file NAME { ... }`` block; defaults are keepalived 2.2.7's.

    ``file`` is the path watched. ``weight`` (default 1) and ``reverse`` are the default of
    every entry naming it without its own weight. ``init_file`` writes ``init_value`` to the
    file at start when it is missing (``init_overwrite``: whatever it holds), or ``None`` for no
    such line.
    """

    name: str
    file: str
    _: KW_ONLY
    weight: int = 1
    reverse: bool = False
    init_value: int | None = None
    init_overwrite: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check each field; raise :class:`ConfigError` if one is invalid."""
        check_word("track_file", self.name, "a name")
        # A '"' or a control character would not survive keepalived's quoting of the path.
        if (
            not isinstance(self.file, str)
            or not self.file.strip()
            or any(c == '"' or ord(c) < 32 for c in self.file)
        ):
            raise ConfigError(
                f"file: expected a path without '\"' or control characters, got {self.file!r}"
            )
        FILE_WEIGHT.check("weight", self.weight)
        check_bool("weight reverse", self.reverse)
        INIT_VALUE.check_opt("init_file", self.init_value)
        check_bool("init_file overwrite", self.init_overwrite)
        if self.init_overwrite and self.init_value is None:
            raise ConfigError("init_file: expected 'overwrite' only with init_file")


@dataclass
class TrackFile(TrackEntry):
    """A ``track_file`` entry: ``NAME [weight -254..254 [reverse|noreverse]]``.

    ``weight`` and ``reverse`` are ``None`` when not written: the block's apply then; an entry's
    weight without a word keeps the block's ``reverse``, as keepalived's does.
    """

    keyword: ClassVar[str] = "track_file"
    weights: ClassVar[IntRange] = FILE_WEIGHT
    reverse_words: ClassVar[str] = "'reverse'/'noreverse'"


def track_file_problems(
    tracks: Sequence[TrackFile], priority: int, files: Mapping[str, TrackedFile]
) -> list[Problem]:
    """The errors of a ``vrrp_instance``'s ``track_file`` entries: an unknown or duplicate name,
    a weight on the address owner. Keyed ``("track_file", index)``."""
    owner = priority == VRRP_PRIO_OWNER
    return tracked_entry_problems("track_file", "track_file", tracks, owner, files)


def check_tracked_files(files: Sequence[TrackedFile]) -> dict[str, TrackedFile]:
    """Check a configuration's ``track_file`` blocks; return them by name. Raises
    :class:`ConfigError` on the first problem."""
    return blocks_by_name("track_file", files, TrackedFile)
