"""The keyword tables of the blocks an instance tracks by name: ``bfd_instance``,
``vrrp_script`` and ``track_file``, and of the ``vrrp_sync_group`` that tracks them for its
members, read as :mod:`.keywords` reads ``vrrp_instance`` (the same :class:`Keyword` and
:class:`Table`, walked by :mod:`.parser` and written by :mod:`.render`).

``bfd_instance`` follows keepalived/bfd/bfd_parser.c ``init_bfd_keywords``, ``vrrp_script``
keepalived/vrrp/vrrp_parser.c's ``vrrp_vscript_*`` handlers.
"""

from typing import Any

from .bfd import BfdInstance
from .errors import ConfigError
from .files import FILE_WEIGHT, INIT_VALUE, TrackedFile
from .keywords import (
    Keyword,
    Table,
    block,
    flag_keyword,
    line,
    milliseconds,
    no_block,
    number,
    one,
    script,
    script_line,
    track,
    track_bfd,
    track_file,
    track_line,
    track_process,
    track_script,
    track_script_line,
    weight_words,
    weighted_entry_line,
    words,
)
from .lexer import Node, split_quoted_escaped
from .processes import PROCESS_DELAY, PROCESS_WEIGHT, QUORUM, QUORUM_MAX, TrackedProcess
from .scripts import SCRIPT_COUNT, SCRIPT_SECONDS, VrrpScript
from .sync_groups import GROUP_NOTIFY_KEYWORDS, SyncGroup
from .values import (
    BARE_WORD,
    BFD_IDLE_TX,
    BFD_INTERVAL,
    BFD_MAX_HOPS,
    BFD_MULTIPLIER,
    BFD_TTL,
    IntRange,
    Milliseconds,
    check_word,
    coerce_ip,
)

__all__ = [
    "BFD_INSTANCE",
    "SYNC_GROUP",
    "TRACK_FILE",
    "TRACK_PROCESS",
    "VRRP_SCRIPT",
    "build_bfd_instance",
    "build_sync_group",
    "build_track_file",
    "build_track_process",
    "build_vrrp_script",
]


def weight_reverse(node: Node) -> tuple[int, bool]:
    """A block's ``weight N [reverse]``: the default of the entries tracking it."""
    no_block(node)
    weight, reverse = weight_words(
        "weight", list(node.tokens), "weight -253..253 optionally followed by 'reverse'"
    )
    if reverse is False:
        # keepalived's weight handlers know only 'reverse' here.
        raise ConfigError("weight: expected 'reverse' or nothing after the weight, got 'noreverse'")
    return weight, bool(reverse)


BLOCK_WEIGHT = Keyword(
    "weight",
    weight_reverse,
    ("weight", "reverse"),
    # Rendered whenever it says something: "weight 0 reverse" is not the default.
    lambda w, r: [f"weight {w}" + (" reverse" if r else "")] if w or r else [],
    always=True,
)
"""A tracked block's ``weight N [reverse]``: the default of the entries naming it."""


def _ms(name: str, domain: Milliseconds) -> Keyword:
    return Keyword(name, milliseconds(domain), (name,), line(name, domain.format))


_ADDRESS = one("an IPv4 or IPv6 address", coerce_ip)


BFD_INSTANCE = Table(
    (
        Keyword("neighbor_ip", _ADDRESS, ("neighbor_ip",), line("neighbor_ip")),
        # The British spelling keepalived also takes; the model renders the first.
        Keyword("neighbour_ip", _ADDRESS, ("neighbor_ip",)),
        Keyword("source_ip", _ADDRESS, ("source_ip",), line("source_ip")),
        _ms("min_rx", BFD_INTERVAL),
        _ms("min_tx", BFD_INTERVAL),
        _ms("idle_tx", BFD_IDLE_TX),
        Keyword("multiplier", number(BFD_MULTIPLIER), ("multiplier",), line("multiplier")),
        flag_keyword("passive"),
        # keepalived's two spellings of one setting, for either family.
        Keyword("ttl", number(BFD_TTL), ("ttl",), line("ttl")),
        Keyword("hoplimit", number(BFD_TTL), ("ttl",)),
        Keyword("max_hops", number(BFD_MAX_HOPS), ("max_hops",), line("max_hops")),
        BLOCK_WEIGHT,
        flag_keyword("vrrp"),
        flag_keyword("checker"),
    ),
    "BFD settings",
)
"""``bfd_instance NAME { ... }`` (keepalived/bfd/bfd_parser.c ``init_bfd_keywords``)."""


def build_bfd_instance(name: str, values: dict[str, Any]) -> BfdInstance:
    """The model of a ``bfd_instance`` block from its name and keywords."""
    kwargs = dict(values)
    neighbor = _required(
        kwargs, "neighbor_ip", f"bfd_instance {name}", "neighbor_ip or neighbour_ip"
    )
    return BfdInstance(name, neighbor, **kwargs)


def command(node: Node) -> str:
    """``script COMMAND``: one word, quoted when it has arguments. keepalived runs only the
    first word after ``script`` (split again shell-like) and drops the rest silently, so
    ``script /bin/check arg`` would run ``/bin/check`` alone: refused here."""
    no_block(node)
    try:
        parts = split_quoted_escaped(node.text)[1:]
    except ValueError as exc:
        raise ConfigError(f"script: expected a well-formed quoted command ({exc})") from None
    if len(parts) != 1:
        got = " ".join(parts) or "nothing"
        raise ConfigError(
            f"script: expected the command as one word (quote it if it has arguments), got {got!r}"
        )
    return parts[0]


def script_owner(node: Node) -> tuple[str, str | None]:
    """``user USER [GROUP]``: who runs the script."""
    args = words(node, "a user name optionally followed by a group name", 1, 2)
    user = check_word("user", args[0], "a user name")
    group = check_word("user", args[1], "a group name") if len(args) == 2 else None
    return user, group


def _script_seconds(name: str) -> Keyword:
    return Keyword(name, number(SCRIPT_SECONDS, "whole seconds"), (name,), line(name))


VRRP_SCRIPT = Table(
    (
        Keyword("script", command, ("command",), line("script", lambda c: f'"{c}"')),
        _script_seconds("interval"),
        _script_seconds("timeout"),
        BLOCK_WEIGHT,
        Keyword("rise", number(SCRIPT_COUNT), ("rise",), line("rise")),
        Keyword("fall", number(SCRIPT_COUNT), ("fall",), line("fall")),
        Keyword(
            "user",
            script_owner,
            ("user", "group"),
            lambda u, g: [" ".join(["user", u, *([g] if g else [])])],
        ),
        flag_keyword("init_fail"),
    ),
    "script settings",
)
"""``vrrp_script NAME { ... }`` (keepalived/vrrp/vrrp_parser.c ``vrrp_script_handler``)."""


def build_vrrp_script(name: str, values: dict[str, Any]) -> VrrpScript:
    """The model of a ``vrrp_script`` block from its name and keywords."""
    kwargs = dict(values)
    command = _required(kwargs, "command", f"vrrp_script {name}", "the command to run", "script")
    return VrrpScript(name, command, **kwargs)


def _block_weight(node: Node, domain: IntRange) -> tuple[int, bool]:
    """A tracked block's ``weight N [reverse]``, N in ``domain``: keepalived's block handlers
    (``track_file_weight_handler``, ``vrrp_tprocess_weight_handler``) know only 'reverse'
    after the weight, where an entry also takes 'noreverse'."""
    no_block(node)
    usage = f"weight {domain.lo}..{domain.hi} optionally followed by 'reverse'"
    weight, reverse = weight_words("weight", list(node.tokens), usage, domain)
    if reverse is False:
        raise ConfigError("weight: expected 'reverse' or nothing after the weight, got 'noreverse'")
    return weight, bool(reverse)


def file_weight(node: Node) -> tuple[int, bool]:
    """A ``track_file`` block's ``weight N [reverse]`` (-254..254)."""
    return _block_weight(node, FILE_WEIGHT)


def init_file(node: Node) -> tuple[int, bool]:
    """``init_file [VALUE] [overwrite]``: the value written at start (default 0), and whether
    over an existing file."""
    args = words(node, "an optional integer and an optional 'overwrite'", 0, 2)
    value, overwrite = 0, False
    for word in args:
        if word == "overwrite" and not overwrite:
            overwrite = True
        elif word.lstrip("-").isdigit():
            value = INIT_VALUE.from_text("init_file", word)
        else:
            raise ConfigError(f"init_file: expected an integer or 'overwrite', got {word!r}")
    return value, overwrite


TRACK_FILE = Table(
    (
        Keyword(
            "file",
            one("a path", lambda _k, path: path),
            ("file",),
            line("file", lambda p: f'"{p}"'),
        ),
        Keyword(
            "weight",
            file_weight,
            ("weight", "reverse"),
            # Rendered when it is not keepalived's default, weight 1.
            lambda w, r: (
                [f"weight {w}" + (" reverse" if r else "")] if (w, r) != (1, False) else []
            ),
            always=True,
        ),
        Keyword(
            "init_file",
            init_file,
            ("init_value", "init_overwrite"),
            lambda v, o: [" ".join(["init_file", str(v), *(["overwrite"] if o else [])])],
        ),
    ),
    "file settings",
)
"""``track_file NAME { ... }`` and its old spelling ``vrrp_track_file`` (keepalived/trackers/
track_file.c ``add_track_file_keywords``)."""


def build_track_file(name: str, values: dict[str, Any]) -> TrackedFile:
    """The model of a ``track_file`` block from its name and keywords."""
    kwargs = dict(values)
    path = _required(kwargs, "file", f"track_file {name}", "the path to watch")
    return TrackedFile(name, path, **kwargs)


def process_words(node: Node) -> tuple[str, tuple[str, ...]]:
    """``process NAME [PARAMETER...]``: the name or argv[0], and the parameters (each word
    quoted or not, as keepalived's ``vrrp_tprocess_process_handler`` reads them)."""
    args = words(node, "a process name or path, optionally followed by its parameters", 1, 10**6)
    return args[0], tuple(args[1:])


def param_match(node: Node) -> str:
    """``param_match [initial|partial]``: bare, the parameters must match exactly."""
    args = words(node, "nothing (exact), 'initial' or 'partial'", 0, 1)
    if not args:
        return "exact"
    if args[0] not in ("initial", "partial"):
        # keepalived 2.2.7 knows no 'exact' word: "Invalid param_match type exact - ignoring".
        raise ConfigError(
            f"param_match: expected nothing (exact match), 'initial' or 'partial', got {args[0]!r}"
        )
    return args[0]


def process_weight(node: Node) -> tuple[int, bool]:
    """A ``vrrp_track_process`` block's ``weight N [reverse]`` (-254..254)."""
    return _block_weight(node, PROCESS_WEIGHT)


def _quoted(word: str) -> str:
    return word if BARE_WORD.fullmatch(word) else f'"{word}"'


def _delay(name: str) -> Keyword:
    return Keyword(
        name,
        one(PROCESS_DELAY.expected, PROCESS_DELAY.from_text),
        (name,),
        line(name, PROCESS_DELAY.format),
    )


TRACK_PROCESS = Table(
    (
        Keyword(
            "process",
            process_words,
            ("process", "parameters"),
            lambda p, params: ["process " + " ".join(_quoted(w) for w in (p, *params))],
        ),
        Keyword(
            "param_match",
            param_match,
            ("param_match",),
            lambda m: ["param_match" + ("" if m == "exact" else f" {m}")],
        ),
        Keyword(
            "weight",
            process_weight,
            ("weight", "reverse"),
            lambda w, r: [f"weight {w}" + (" reverse" if r else "")] if w or r else [],
            always=True,
        ),
        Keyword("quorum", number(QUORUM), ("quorum",), line("quorum")),
        Keyword("quorum_max", number(QUORUM_MAX), ("quorum_max",), line("quorum_max")),
        # 'delay' sets both; the model renders the two.
        Keyword(
            "delay",
            lambda node: (PROCESS_DELAY.from_text("delay", words(node, "seconds", 1)[0]),) * 2,
            ("fork_delay", "terminate_delay"),
        ),
        _delay("fork_delay"),
        _delay("terminate_delay"),
        flag_keyword("full_command"),
    ),
    "process settings",
)
"""``vrrp_track_process NAME { ... }`` (keepalived/vrrp/vrrp_parser.c, the keywords installed
after ``vrrp_tprocess_handler``)."""


def build_track_process(name: str, values: dict[str, Any]) -> TrackedProcess:
    """The model of a ``vrrp_track_process`` block from its name and keywords."""
    kwargs = dict(values)
    process = _required(kwargs, "process", f"vrrp_track_process {name}", "the process name or path")
    return TrackedProcess(name, process, **kwargs)


def _required(
    kwargs: dict[str, Any], field: str, block: str, expected: str, keyword: str | None = None
) -> Any:
    """``kwargs[field]``, taken out of ``kwargs``; the block's error naming ``keyword`` (default:
    the field) when it was not given."""
    if field not in kwargs:
        raise ConfigError(
            f"{block}: missing '{keyword or field}' (expected {expected} in every "
            f"{block.split()[0]})"
        )
    return kwargs.pop(field)


def group_names(node: Node) -> tuple[str, ...]:
    """One line of a ``group { }`` block: one or more ``vrrp_instance`` names (keepalived's
    ``read_value_block`` takes every word of every line)."""
    no_block(node)
    return tuple(check_word("group", name, "a vrrp_instance name") for name in node.tokens)


def _group_entries(name: str, convert: Any, text: Any, what: str) -> Keyword:
    return Keyword(name, convert, (name,), block(name, text), entries=True, what=what)


SYNC_GROUP = Table(
    (
        Keyword(
            "group",
            group_names,
            ("group",),
            # Stored flat (see build_sync_group): one name a line.
            block("group", str),
            entries=True,
            what="vrrp_instance names",
        ),
        _group_entries("track_interface", track, track_line, "interface names"),
        _group_entries("track_script", track_script, track_script_line, "vrrp_script names"),
        _group_entries("track_file", track_file, weighted_entry_line, "track_file names"),
        _group_entries("track_bfd", track_bfd, weighted_entry_line, "BFD instance names"),
        _group_entries(
            "track_process", track_process, weighted_entry_line, "vrrp_track_process names"
        ),
        *(Keyword(n, script, (n,), script_line(n), keep_first=True) for n in GROUP_NOTIFY_KEYWORDS),
        flag_keyword("sync_group_tracking_weight"),
    ),
    "sync group settings",
    unsupported=frozenset({"smtp_alert", "global_tracking", "notify_priority_changes"}),
)
"""``vrrp_sync_group NAME { ... }`` (keepalived/vrrp/vrrp_parser.c ``vrrp_sync_group_handler``
and the keywords installed after it)."""


def build_sync_group(name: str, values: dict[str, Any]) -> SyncGroup:
    """The model of a ``vrrp_sync_group`` block from its name and keywords (the ``group``
    block's lines, each a tuple of names, made one list)."""
    kwargs = dict(values)
    lines = kwargs.pop("group", [])
    members = [member for names in lines for member in names]
    return SyncGroup(name, members, **kwargs)
