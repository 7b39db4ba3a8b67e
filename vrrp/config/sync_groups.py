"""The ``vrrp_sync_group`` blocks of the keepalived model, and their checks.

keepalived 2.2.7 reads a sync group in keepalived/vrrp/vrrp_parser.c (``vrrp_sync_group_handler``,
``vrrp_group_handler``, ``vrrp_group_track_*_handler``, ``vrrp_gnotify_*_handler``,
``vrrp_sg_tracking_weight_handler``), resolves its members at the end of the file
(vrrp_sync.c ``vrrp_sync_set_group``, called from vrrp.c ``vrrp_complete_init``), and applies its
tracking rules in vrrp.c (``vrrp_complete_instance``, ``sync_group_tracking_init``). What the
group does at run time is :mod:`vrrp.sync_group`'s.

As in the rest of :mod:`vrrp.config`, what keepalived reports as a configuration error and then
repairs or ignores is a :class:`ConfigError` here:

* a member that is not a ``vrrp_instance`` (keepalived: "doesn't exist - ignoring"), an instance
  in two groups ("cannot exist in more than one sync group; ignoring"), a group without members
  ("no virtual router(s). removing");
* members of which some are the address owner and some not (keepalived: "This won't work.");
* a weighted group tracker when a member is the address owner (keepalived clears the weight);
* a member's own weighted ``track_interface``, ``track_script``, ``track_file``,
  ``track_bfd`` or ``track_process`` unless the group has ``sync_group_tracking_weight``
  (keepalived makes the interface and a default-weight file unweighted and drops the others:
  the members of a group must not have diverging priorities); the man page says "track
  scripts/files configured against member VRRP instances will have their tracking weights
  automatically set to zero";
* the same interface, script, file, BFD instance or process tracked by the group and by a
  member (keepalived merges the two, taking the group's weight unless the member's is 0).

A group with one member is a warning, as keepalived runs it ("this probably isn't what you
want"). ``sync_group_tracking_weight`` is a keyword of the ``vrrp_sync_group`` block in 2.2.7 (not
of ``global_defs``); the group's own trackers' weights apply to every member whatever it says.
"""

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from .bfd import BfdInstance, TrackBfd
from .commands import NotifyScript
from .errors import ConfigError, Problem
from .files import TrackedFile, TrackFile
from .processes import TrackedProcess, TrackProcess
from .scripts import TrackScript, VrrpScript
from .tracked import TrackInterface, entries_of, tracked_entry_problems
from .values import VRRP_PRIO_OWNER, check_bool, check_type, check_word, fail

__all__ = [
    "GROUP_NOTIFY_KEYWORDS",
    "SyncGroup",
    "check_sync_groups",
    "member_problems",
    "sync_group_problems",
]

GROUP_NOTIFY_KEYWORDS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
"""The notify script fields of a ``vrrp_sync_group``, in the order they are rendered."""

_TRACKERS = ("track_interface", "track_script", "track_file", "track_bfd", "track_process")


@dataclass
class SyncGroup:
    """A ``vrrp_sync_group NAME { ... }`` block.

    ``group`` names the member ``vrrp_instance`` blocks. The ``track_*`` entries apply to every
    member as if each tracked them itself (weights included). The notify scripts run on the
    group's transitions (the generic ``notify`` gets ``GROUP NAME STATE 0`` appended).
    ``sync_group_tracking_weight`` lets the members keep weights on their own trackers.
    """

    name: str
    group: list[str]
    _: KW_ONLY
    track_interface: list[TrackInterface] = field(default_factory=list)
    track_script: list[TrackScript] = field(default_factory=list)
    track_file: list[TrackFile] = field(default_factory=list)
    track_bfd: list[TrackBfd] = field(default_factory=list)
    track_process: list[TrackProcess] = field(default_factory=list)
    notify_master: NotifyScript | None = None
    notify_backup: NotifyScript | None = None
    notify_fault: NotifyScript | None = None
    notify_stop: NotifyScript | None = None
    notify: NotifyScript | None = None
    sync_group_tracking_weight: bool = False

    def __post_init__(self) -> None:
        self.group = [self.group] if isinstance(self.group, str) else list(self.group)
        self.track_interface = entries_of(self.track_interface, TrackInterface)
        self.track_script = entries_of(self.track_script, TrackScript)
        self.track_file = entries_of(self.track_file, TrackFile)
        self.track_bfd = entries_of(self.track_bfd, TrackBfd)
        self.track_process = entries_of(self.track_process, TrackProcess)
        for keyword in GROUP_NOTIFY_KEYWORDS:
            value = getattr(self, keyword)
            if isinstance(value, str):
                setattr(self, keyword, NotifyScript(value))
        self.validate()

    def validate(self) -> None:
        """Check each field on its own; raise :class:`ConfigError` if one is invalid."""
        check_word("vrrp_sync_group", self.name, "a group name")
        if not self.group:
            raise ConfigError(
                f"vrrp_sync_group {self.name}: expected a 'group {{ }}' block naming its "
                "vrrp_instance members (keepalived removes a group without members)"
            )
        for name in self.group:
            check_word("group", name, "a vrrp_instance name")
        for keyword, kind in zip(
            _TRACKERS, (TrackInterface, TrackScript, TrackFile, TrackBfd, TrackProcess), strict=True
        ):
            for entry in getattr(self, keyword):
                check_type(keyword, entry, kind).validate()
        for keyword in GROUP_NOTIFY_KEYWORDS:
            value = getattr(self, keyword)
            if value is not None:
                check_type(keyword, value, NotifyScript).validate(keyword)
        check_bool("sync_group_tracking_weight", self.sync_group_tracking_weight)

    def tracked_names(self, keyword: str) -> set[str]:
        """The names the group's ``keyword`` entries track."""
        return {entry.name for entry in getattr(self, keyword)}


def sync_group_problems(
    group: SyncGroup,
    instances: Mapping[str, Any],
    taken: Mapping[str, str],
    scripts: Mapping[str, VrrpScript],
    files: Mapping[str, TrackedFile],
    bfds: Mapping[str, BfdInstance],
    processes: Mapping[str, TrackedProcess],
) -> tuple[list[Problem], list[Problem]]:
    """The errors and warnings of one group against the configuration: its members
    (``instances`` by name; ``taken``, the groups already holding an instance) and its trackers
    (the blocks by name). Keyed ``("group", NAME)`` for a member, ``(keyword, index)`` for an
    entry. The rules are vrrp_sync.c ``vrrp_sync_set_group`` and vrrp.c
    ``sync_group_tracking_init``'s."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    seen: set[str] = set()
    members = []
    for name in group.group:
        key = ("group", name)
        inst = instances.get(name)
        if inst is None:
            known = ", ".join(sorted(instances)) or "none"
            errors.append(
                Problem(
                    f"group: expected the name of a vrrp_instance (known: {known}), got {name!r}",
                    key,
                )
            )
        elif name in seen:
            errors.append(
                Problem(f"group: expected each vrrp_instance once, got {name!r} again", key)
            )
        elif name in taken:
            errors.append(
                Problem(
                    f"group: expected a vrrp_instance in no other sync group, got {name!r} (in "
                    f"vrrp_sync_group {taken[name]} already; keepalived ignores it here)",
                    key,
                )
            )
        else:
            members.append(inst)
        seen.add(name)
    if errors:
        return errors, warnings
    owners = [m.name for m in members if m.effective_priority == VRRP_PRIO_OWNER]
    if owners and len(owners) != len(members):
        others = [m.name for m in members if m.name not in owners]
        errors.append(
            Problem(
                "group: expected every member or none to be the address owner (keepalived: "
                f'"This won\'t work."), got owner {owners[0]} and non-owner {others[0]}',
                ("group", others[0]),
            )
        )
    if len(members) == 1:
        warnings.append(
            Problem(
                f"vrrp_sync_group {group.name} has only 1 virtual router - this probably "
                "isn't what you want",
                "group",
            )
        )
    owner = bool(owners)
    errors += tracked_entry_problems(
        "track_script", "vrrp_script", group.track_script, owner, scripts
    )
    errors += tracked_entry_problems("track_file", "track_file", group.track_file, owner, files)
    errors += tracked_entry_problems("track_bfd", "bfd_instance", group.track_bfd, owner, bfds)
    errors += tracked_entry_problems(
        "track_process", "vrrp_track_process", group.track_process, owner, processes
    )
    seen_if: set[str] = set()
    for i, track in enumerate(group.track_interface):
        if track.name in seen_if:
            message = f"expected each interface once, got {track.name!r} again"
        elif track.weight and owner:
            message = (
                f"expected no weight on {track.name} for the address owner (priority 255 "
                f"cannot be adjusted), got {track.weight}"
            )
        else:
            message = ""
        seen_if.add(track.name)
        if message:
            errors.append(Problem(f"track_interface: {message}", ("track_interface", i)))
    return errors, warnings


def member_problems(
    group: SyncGroup,
    inst: Any,
    scripts: Mapping[str, VrrpScript],
    files: Mapping[str, TrackedFile],
    bfds: Mapping[str, BfdInstance],
    processes: Mapping[str, TrackedProcess],
) -> list[Problem]:
    """The errors of a member ``inst``'s own trackers in ``group``: a weighted one unless
    ``sync_group_tracking_weight`` (vrrp.c ``vrrp_complete_instance``), one the group tracks too.
    Keyed ``(keyword, index)`` in the instance."""
    problems: list[Problem] = []
    blocks: dict[str, Mapping[str, Any]] = {
        "track_script": scripts,
        "track_file": files,
        "track_bfd": bfds,
        "track_process": processes,
    }
    for keyword in _TRACKERS:
        for i, track in enumerate(getattr(inst, keyword)):
            key = (keyword, i)
            if track.name in group.tracked_names(keyword):
                problems.append(
                    Problem(
                        f"{keyword}: expected {track.name!r} tracked by the instance or by its "
                        f"vrrp_sync_group {group.name}, not both (keepalived merges them)",
                        key,
                    )
                )
                continue
            if group.sync_group_tracking_weight:
                continue
            if keyword == "track_interface":
                weight = track.weight
            else:
                block = blocks[keyword].get(track.name)
                weight = track.resolve(block)[0] if block is not None else 0
            if weight:
                default = " (a track_file's default weight is 1: say 'weight 0')" * (
                    keyword == "track_file"
                )
                problems.append(
                    Problem(
                        f"{keyword}: expected no weight on {track.name} in a member of "
                        f"vrrp_sync_group {group.name}, got {weight}{default} (keepalived "
                        "ignores it unless the group has sync_group_tracking_weight)",
                        key,
                    )
                )
    return problems


def check_sync_groups(
    groups: Sequence[SyncGroup],
    instances: Mapping[str, Any],
    scripts: Mapping[str, VrrpScript],
    files: Mapping[str, TrackedFile],
    bfds: Mapping[str, BfdInstance],
    processes: Mapping[str, TrackedProcess],
) -> None:
    """Check a configuration's sync groups against its instances and tracked blocks. Raises
    :class:`ConfigError` on the first problem."""
    taken: dict[str, str] = {}
    names: set[str] = set()
    for group in groups:
        check_type("vrrp_sync_group", group, SyncGroup).validate()
        if group.name in names:
            raise fail("vrrp_sync_group", "a unique name", f"{group.name} twice")
        names.add(group.name)
        errors, _ = sync_group_problems(group, instances, taken, scripts, files, bfds, processes)
        if errors:
            raise ConfigError(f"vrrp_sync_group {group.name}: {errors[0].message}")
        for name in group.group:
            problems = member_problems(group, instances[name], scripts, files, bfds, processes)
            if problems:
                raise ConfigError(f"vrrp_instance {name}: {problems[0].message}")
            taken[name] = group.name
