"""The process trackers of the keepalived model: ``vrrp_track_process`` blocks and the
``track_process`` entries of an instance.

keepalived 2.2.7 reads them in keepalived/vrrp/vrrp_parser.c (``vrrp_tprocess_handler`` and the
``vrrp_tprocess_*_handler`` functions, ``vrrp_tprocess_end_handler``) and
keepalived/vrrp/vrrp_track.c (``alloc_track_process``); the defaults are vrrp_data.c
``alloc_vrrp_process``'s (quorum 1, no quorum_max, weight 0: the man page's "default is 1" is
not what the code does). What the count of matching processes does to an instance is
:mod:`vrrp.tracking`'s, the matching :mod:`vrrp.track_process`'s. As in the rest of
:mod:`vrrp.config`, what keepalived reports as a configuration error and then repairs or
ignores (a block without ``process``, a ``quorum`` above ``quorum_max``, ``param_match
exact``, an entry naming a block defined later or not at all) is a :class:`ConfigError` here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar, Literal

from .errors import ConfigError, Problem
from .tracked import TrackEntry, blocks_by_name, tracked_entry_problems
from .values import VRRP_PRIO_OWNER, IntRange, Seconds, check_bool, check_word

__all__ = [
    "PARAM_MATCHES",
    "PROCESS_DELAY",
    "PROCESS_WEIGHT",
    "QUORUM",
    "QUORUM_MAX",
    "TrackProcess",
    "TrackedProcess",
    "check_tracked_processes",
    "track_process_problems",
]

PROCESS_WEIGHT = IntRange(-254, 254)
"""A process's weight, in the block and in an entry (``read_int_strvec(..., -254, 254)``)."""
QUORUM = IntRange(1, 65535)
"""``quorum`` (``vrrp_tprocess_quorum_handler``)."""
QUORUM_MAX = IntRange(0, 65535)
"""``quorum_max`` (``vrrp_tprocess_quorum_max_handler``; 0: up only while none runs)."""
PROCESS_DELAY = Seconds(10**6, 1, 3600 * 10**6, "0.000001")
"""``delay``, ``fork_delay``, ``terminate_delay``: 0.000001..3600 s
(``read_decimal_unsigned_strvec(..., 1, 3600 * TIMER_HZ, TIMER_HZ_DIGITS)``)."""
PARAM_MATCHES = ("exact", "partial", "initial")
"""``param_match``'s modes; the file writes ``exact`` as a bare ``param_match``."""

ParamMatch = Literal["exact", "partial", "initial"]


@dataclass
class TrackedProcess:
    """A ``vrrp_track_process NAME { ... }`` block; defaults are keepalived 2.2.7's.

    ``process`` is the name (``/proc/PID/comm``) or, with ``full_command``, the first word of
    the command line (argv[0]) to match exactly. ``parameters`` (the words after it on the
    ``process`` line) are matched against the rest of the command line as ``param_match``
    says; parameters imply ``full_command`` and, without ``param_match``, ``exact``.
    ``param_match`` None (no parameters, no ``param_match``): any parameters. The process is
    up while quorum <= count <= ``quorum_max`` (None: no maximum); ``quorum`` None is 1, or 0
    with ``quorum_max 0``. ``fork_delay`` (``terminate_delay``) defers a change a process
    start (exit) causes.
    """

    name: str
    process: str
    _: KW_ONLY
    parameters: tuple[str, ...] = ()
    param_match: ParamMatch | None = None
    full_command: bool = False
    weight: int = 0
    reverse: bool = False
    quorum: int | None = None
    quorum_max: int | None = None
    fork_delay: float | None = None
    terminate_delay: float | None = None

    def __post_init__(self) -> None:
        self.parameters = tuple(self.parameters)
        self.validate()

    def validate(self) -> None:
        """Check each field; raise :class:`ConfigError` if one is invalid."""
        check_word("vrrp_track_process", self.name, "a name")
        for word in (self.process, *self.parameters):
            # A '"' or a control character would not survive keepalived's quoting; NUL
            # separates the words of a command line.
            if not isinstance(word, str) or not word or any(c == '"' or ord(c) < 32 for c in word):
                raise ConfigError(
                    f"process: expected words without '\"' or control characters, got {word!r}"
                )
        if self.param_match is not None and self.param_match not in PARAM_MATCHES:
            raise ConfigError(f"param_match: expected initial or partial, got {self.param_match!r}")
        check_bool("full_command", self.full_command)
        PROCESS_WEIGHT.check("weight", self.weight)
        check_bool("weight reverse", self.reverse)
        QUORUM.check_opt("quorum", self.quorum)
        QUORUM_MAX.check_opt("quorum_max", self.quorum_max)
        # keepalived: "Quorum is greater than quorum_max - ignoring" (or the reverse); quorum 1
        # with quorum_max 0 is its "none may run", in either order.
        if (
            self.quorum is not None
            and self.quorum_max is not None
            and self.quorum > max(self.quorum_max, 1)
        ):
            raise ConfigError(
                f"quorum: expected at most quorum_max ({self.quorum_max}), got {self.quorum}"
            )
        for keyword in ("fork_delay", "terminate_delay"):
            value = getattr(self, keyword)
            if value is not None:
                setattr(self, keyword, PROCESS_DELAY.seconds(keyword, value))

    @property
    def match(self) -> ParamMatch | None:
        """How the parameters are matched: None for not at all (``vrrp_tprocess_process_handler``
        makes parameters ``exact`` unless ``param_match`` says otherwise)."""
        if self.param_match is None and self.parameters:
            return "exact"
        return self.param_match

    @property
    def matches_command(self) -> bool:
        """Whether the command line is matched (else ``/proc/PID/comm``): ``full_command``,
        parameters and ``param_match`` each imply it."""
        return self.full_command or bool(self.parameters) or self.param_match is not None

    @property
    def effective_quorum(self) -> int:
        """The fewest matching processes that are up (``vrrp_tprocess_quorum_max_handler``:
        ``quorum_max 0`` alone makes it 0)."""
        if self.quorum_max == 0:
            return 0
        return 1 if self.quorum is None else self.quorum

    @property
    def effective_quorum_max(self) -> int | None:
        """The most matching processes that are up; None: no maximum (keepalived's
        UINT_MAX)."""
        return self.quorum_max


@dataclass
class TrackProcess(TrackEntry):
    """A ``track_process`` entry: ``NAME [weight -254..254 [reverse|noreverse]]``.

    ``weight`` and ``reverse`` are ``None`` when not written: the block's apply then; an entry's
    weight without a word keeps the block's ``reverse``, as keepalived's ``alloc_track_process``
    does.
    """

    keyword: ClassVar[str] = "track_process"
    weights: ClassVar[IntRange] = PROCESS_WEIGHT
    reverse_words: ClassVar[str] = "'reverse'/'noreverse'"


def track_process_problems(
    tracks: Sequence[TrackProcess], priority: int, processes: Mapping[str, TrackedProcess]
) -> list[Problem]:
    """The errors of a ``vrrp_instance``'s ``track_process`` entries: an unknown or duplicate
    name, a weight on the address owner. Keyed ``("track_process", index)``."""
    owner = priority == VRRP_PRIO_OWNER
    return tracked_entry_problems("track_process", "vrrp_track_process", tracks, owner, processes)


def check_tracked_processes(processes: Sequence[TrackedProcess]) -> dict[str, TrackedProcess]:
    """Check a configuration's ``vrrp_track_process`` blocks; return them by name. Raises
    :class:`ConfigError` on the first problem."""
    return blocks_by_name("vrrp_track_process", processes, TrackedProcess)
