"""The script trackers of the keepalived model: ``vrrp_script`` blocks and ``track_script``
entries.

keepalived 2.2.7 reads them in keepalived/vrrp/vrrp_parser.c (``vrrp_script_handler`` and the
``vrrp_vscript_*`` handlers) and keepalived/vrrp/vrrp_track.c (``alloc_track_script``); the
defaults are keepalived/include/vrrp_track.h's (``VRRP_SCRIPT_DI``, ``_DT``, ``_DW``). As in
the rest of :mod:`vrrp.config`, what keepalived reports as a configuration error and then
repairs (an interval of 0, a script without ``script``, a ``track_script`` naming a script
defined later or not at all, the same script tracked twice) is a :class:`ConfigError` here.

What the tracked result does to an instance is :mod:`vrrp.tracking`'s; how the daemon runs
the scripts, :mod:`vrrp.checks`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from .commands import NotifyScript
from .errors import Problem
from .tracked import TrackEntry, blocks_by_name, tracked_entry_problems
from .values import (
    INT_MAX,
    TRACK_WEIGHT,
    UINT_MAX,
    VRRP_PRIO_OWNER,
    IntRange,
    check_bool,
    check_word,
)

__all__ = [
    "SCRIPT_COUNT",
    "SCRIPT_SECONDS",
    "TrackScript",
    "VrrpScript",
    "check_vrrp_scripts",
    "track_script_problems",
]

SCRIPT_SECONDS = IntRange(1, UINT_MAX // 1_000_000)
"""``interval`` and ``timeout``: whole seconds, at least 1 (keepalived reads an unsigned
integer of seconds, and 0 only to set it to 1 with a configuration error)."""
SCRIPT_COUNT = IntRange(1, INT_MAX)
"""``rise`` and ``fall``."""


@dataclass
class VrrpScript:
    """A ``vrrp_script NAME { ... }`` block; defaults are keepalived 2.2.7's.

    ``command`` is the ``script`` line, quotes and escapes kept as keepalived reads them.
    ``timeout`` is ``None`` when not written: a run then has the ``interval`` to finish.
    ``weight`` and ``reverse`` are the default of every ``track_script`` naming this script
    without its own weight; weight 0 means the instance goes to FAULT while the script fails.
    ``rise`` successes in a row make a failed script good, ``fall`` failures in a row make a
    good one fail. ``init_fail``: the script counts as failed until it first succeeds;
    otherwise it starts undecided, and one result decides it.
    """

    name: str
    command: str
    _: KW_ONLY
    interval: int = 1
    timeout: int | None = None
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check each field; raise :class:`ConfigError` if one is invalid."""
        check_word("vrrp_script", self.name, "a script name")
        # The command and its owner follow a notify script's rules.
        NotifyScript(self.command, self.user, self.group).validate("script")
        SCRIPT_SECONDS.check("interval", self.interval)
        SCRIPT_SECONDS.check_opt("timeout", self.timeout)
        TRACK_WEIGHT.check("weight", self.weight)
        check_bool("weight reverse", self.reverse)
        SCRIPT_COUNT.check("rise", self.rise)
        SCRIPT_COUNT.check("fall", self.fall)
        check_bool("init_fail", self.init_fail)

    @property
    def argv(self) -> list[str]:
        """The argument vector the daemon executes."""
        return NotifyScript(self.command).argv

    @property
    def time_limit(self) -> int:
        """How long one run may take before it is terminated and counts as a failure (s)."""
        return self.interval if self.timeout is None else self.timeout


@dataclass
class TrackScript(TrackEntry):
    """A ``track_script`` entry: ``NAME [weight -253..253 [reverse]]``.

    ``weight`` and ``reverse`` are ``None`` when not written: the ``vrrp_script``'s own apply
    then. An entry's ``weight`` without ``reverse`` does not inherit the script's ``reverse``
    (keepalived reads the entry's word, and only takes the script's when no weight is given).
    """

    keyword: ClassVar[str] = "track_script"
    inherits_reverse: ClassVar[bool] = False


def track_script_problems(
    tracks: Sequence[TrackScript], priority: int, scripts: Mapping[str, VrrpScript]
) -> list[Problem]:
    """The errors of a ``vrrp_instance``'s ``track_script`` entries: an unknown or duplicate
    name, a weight on the address owner. Keyed ``("track_script", index)``."""
    owner = priority == VRRP_PRIO_OWNER
    return tracked_entry_problems("track_script", "vrrp_script", tracks, owner, scripts)


def check_vrrp_scripts(scripts: Sequence[VrrpScript]) -> dict[str, VrrpScript]:
    """Check a configuration's ``vrrp_script`` blocks; return them by name. Raises
    :class:`ConfigError` on the first problem."""
    return blocks_by_name("vrrp_script", scripts, VrrpScript)
