"""The walker: a statement tree plus the keyword tables give a validated :class:`Config`.

Each block is read with its :class:`~.keywords.Table`: a known keyword's converter gives the
value of its model fields, anything else becomes a :class:`~.model.Statement` on
``Config.unused`` (with a warning, as keepalived logs and carries on).  Errors get the
location of the statement they are about.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bfd import (
    BfdInstance,
    bfd_instance_problems,
    check_bfd_name,
    duplicate_bfd_problem,
    track_bfd_problems,
)
from .errors import ConfigError, ConfigWarning
from .files import TrackedFile, track_file_problems
from .keywords import GLOBAL_DEFS, TOP_LEVEL, VRRP_INSTANCE, Keyword, Table
from .lexer import Node, lex, tree
from .model import (
    TOP,
    Config,
    GlobalDefs,
    Statement,
    VrrpInstance,
    instance_problems,
    same_vrid_problem,
)
from .processes import TrackedProcess, track_process_problems
from .scripts import VrrpScript, track_script_problems
from .sync_groups import SyncGroup, member_problems, sync_group_problems
from .tracker_tables import (
    BFD_INSTANCE,
    SYNC_GROUP,
    TRACK_FILE,
    TRACK_PROCESS,
    VRRP_SCRIPT,
    build_bfd_instance,
    build_sync_group,
    build_track_file,
    build_track_process,
    build_vrrp_script,
)
from .values import check_word

__all__ = ["load", "parse"]


@dataclass
class _Block:
    """The values read from one block and the statement each came from."""

    node: Node
    name: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[object, Node] = field(default_factory=dict)
    """By field, and by (field, index) for list entries: to locate cross-field problems."""


def _error(node: Node, message: str) -> ConfigError:
    return ConfigError(message, node.filename, node.line)


#: The tracker entries that name a block, and the block's keyword: an entry must come after
#: its block (keepalived ignores one naming a block defined later).
_NAMED_BLOCKS = {
    "track_bfd": "bfd_instance",
    "track_script": "vrrp_script",
    "track_file": "track_file",
    "track_process": "vrrp_track_process",
}


def _new_block(node: Node, kind: str, name: str, blocks: list[_Block]) -> _Block:
    """A ``kind`` block ``name`` read at ``node``, added to ``blocks``: a :class:`ConfigError`
    at ``node`` if one of them has that name already (keepalived refuses a second)."""
    for other in blocks:
        if other.name == name:
            raise _error(
                node,
                f"{kind}: expected a unique name, got {name!r} "
                f"(already defined at {other.node.filename}:{other.node.line})",
            )
    block = _Block(node, name)
    blocks.append(block)
    return block


def _located(node: Node, build: Callable[..., Any], *args: Any) -> Any:
    """Run ``build(*args)`` (a converter or model constructor); give its error this node's
    location."""
    try:
        return build(*args)
    except ConfigError as exc:
        raise _error(node, exc.message) from None


def _children(node: Node, what: str) -> list[Node]:
    if node.children is None:
        raise _error(node, f"{node.tokens[0]}: expected a '{{' block of {what}")
    return node.children


def _header(node: Node, count: int) -> list[str]:
    """The words of a block's opening statement before its '{'."""
    args = node.tokens[1:]
    if len(args) != count:
        what = "a name" if count else "nothing"
        raise _error(
            node,
            f"{node.tokens[0]}: expected {what} before '{{', got {' '.join(args) or 'nothing'!r}",
        )
    return args


class _Parser:
    def __init__(self) -> None:
        self.warnings: list[ConfigWarning] = []
        self.unused: list[Statement] = []
        self.instances: list[_Block] = []
        self.sync_groups: list[_Block] = []
        #: The blocks an instance tracks by name, by their keyword (bfd_instance, vrrp_script).
        self.tracked: dict[str, list[_Block]] = {
            "bfd_instance": [],
            "vrrp_script": [],
            "track_file": [],
            "vrrp_track_process": [],
        }
        #: By vrrp_instance, the names of those blocks read before it: keepalived looks a
        #: track_bfd or track_script up as it reads it, so one naming a later block is ignored.
        self.before: dict[str, dict[str, set[str]]] = {}

    def warn(self, node: Node, message: str) -> ConfigWarning:
        warning = ConfigWarning(message, node.filename, node.line)
        self.warnings.append(warning)
        return warning

    def keep(self, node: Node, scope: str, warning: ConfigWarning | None = None) -> Statement:
        """Record a statement the parser does not use, with its block."""
        statement = self.kept(node, scope, warning)
        self.unused.append(statement)
        return statement

    @staticmethod
    def kept(node: Node, scope: str, warning: ConfigWarning | None = None) -> Statement:
        keyword, *args = node.tokens
        block = None
        if node.children is not None:
            inner = keyword if scope == TOP else f"{scope}/{keyword}"
            block = tuple(_Parser.kept(child, inner) for child in node.children)
        return Statement(keyword, tuple(args), node.filename, node.line, scope, block, warning)

    def unknown(self, node: Node, table: Table, scope: str) -> None:
        keyword = node.tokens[0]
        # The unknown keyword's block (if any) is not interpreted; see the package docstring.
        if keyword in table.unsupported:
            warning = self.warn(node, f"unsupported keyword '{keyword}' ignored")
        else:
            warning = self.warn(node, f"unknown keyword '{keyword}'")
        self.keep(node, scope, warning)

    # -- one block, by its table ------------------------------------------------------------

    def walk(self, block: _Block, children: list[Node], table: Table, scope: str) -> None:
        for node in children:
            keyword = table.by_name.get(node.tokens[0])
            if keyword is None:
                self.unknown(node, table, scope)
            elif keyword.table is not None:
                inner = _Block(node)
                sub = keyword.table
                self.walk(inner, _children(node, sub.what), sub, f"{scope}/{keyword.name}")
                build = sub.build
                assert build is not None
                value = _located(node, build, inner.values)
                self.set(block, node, keyword, value, table.warn_repeats)
            elif keyword.entries:
                (name,) = keyword.fields
                convert = keyword.convert
                assert convert is not None
                items = block.values.setdefault(name, [])
                for child in _children(node, keyword.what):
                    block.where[(name, len(items))] = child
                    items.append(_located(child, convert, child))
                block.where.setdefault(name, node)
            else:
                convert = keyword.convert
                assert convert is not None
                value = _located(node, convert, node)
                if not keyword.fields:
                    self.keep(node, scope)
                else:
                    self.set(block, node, keyword, value, table.warn_repeats)

    def set(self, block: _Block, node: Node, keyword: Keyword, value: Any, warn: bool) -> None:
        """Record a value; a repeated keyword is a warning (keepalived uses the last one,
        except for notify scripts where it keeps the first)."""
        key = keyword.fields[0]
        if key in block.where:
            prev = block.where[key]
            if warn:
                kept = "first" if keyword.keep_first else "last"
                self.warn(
                    node,
                    f"{node.tokens[0]} repeated (also at {prev.filename}:{prev.line}); "
                    f"using the {kept}",
                )
            if keyword.keep_first:
                return
        values = value if len(keyword.fields) > 1 else (value,)
        for name, item in zip(keyword.fields, values, strict=True):
            block.values[name] = item
        block.where[key] = node

    # -- the file ----------------------------------------------------------------------------

    def run(self, nodes: list[Node]) -> Config:
        settings = _Block(Node([], "", "", 0))
        for node in nodes:
            keyword = node.tokens[0]
            if keyword == "global_defs":
                _header(node, 0)
                children = _children(node, GLOBAL_DEFS.what)
                self.walk(settings, children, GLOBAL_DEFS, "global_defs")
            elif keyword == "vrrp_instance":
                self.instance(node)
            elif keyword == "bfd_instance":
                self.named(node, BFD_INSTANCE, lambda name: check_bfd_name("bfd_instance", name))
            elif keyword in ("track_file", "vrrp_track_file"):
                # keepalived's old spelling is the same block.
                check = lambda name: check_word("track_file", name, "a name")  # noqa: E731
                self.named(node, TRACK_FILE, check, kind="track_file")
            elif keyword == "vrrp_track_process":
                check = lambda name: check_word("vrrp_track_process", name, "a name")  # noqa: E731
                self.named(node, TRACK_PROCESS, check)
            elif keyword == "vrrp_script":
                self.named(
                    node, VRRP_SCRIPT, lambda name: check_word("vrrp_script", name, "a name")
                )
            elif keyword == "vrrp_sync_group":
                self.sync_group(node)
            else:
                self.unknown(node, TOP_LEVEL, TOP)
        gd = GlobalDefs(**settings.values)
        bfds = self.finish_bfds()
        scripts = {
            b.name: _located(b.node, build_vrrp_script, b.name, b.values)
            for b in self.tracked["vrrp_script"]
        }
        files = {
            b.name: _located(b.node, build_track_file, b.name, b.values)
            for b in self.tracked["track_file"]
        }
        processes = {
            b.name: _located(b.node, build_track_process, b.name, b.values)
            for b in self.tracked["vrrp_track_process"]
        }
        instances = [self.finish(b, gd, bfds, scripts, files, processes) for b in self.instances]
        self.check_vrids(instances)
        groups = self.finish_sync_groups(instances, scripts, files, bfds, processes)
        config = Config(
            global_defs=gd,
            instances=instances,
            bfd_instances=list(bfds.values()),
            vrrp_scripts=list(scripts.values()),
            track_files=list(files.values()),
            track_processes=list(processes.values()),
            sync_groups=groups,
        )
        config.warnings = self.warnings
        config.unused = self.unused
        return config

    def instance(self, node: Node) -> None:
        (name,) = _header(node, 1)
        _located(node, lambda: check_word("vrrp_instance", name, "an instance name"))
        block = _new_block(node, "vrrp_instance", name, self.instances)
        self.before[name] = {
            kind: {b.name for b in blocks} for kind, blocks in self.tracked.items()
        }
        children = _children(node, VRRP_INSTANCE.what)
        self.walk(block, children, VRRP_INSTANCE, f"vrrp_instance {name}")

    def sync_group(self, node: Node) -> None:
        """A ``vrrp_sync_group`` block: read now, its members resolved at the end of the file
        (as keepalived's ``vrrp_complete_init`` does), its trackers' names looked up now."""
        (name,) = _header(node, 1)
        _located(node, lambda: check_word("vrrp_sync_group", name, "a group name"))
        block = _new_block(node, "vrrp_sync_group", name, self.sync_groups)
        children = _children(node, SYNC_GROUP.what)
        lists = [child for child in children if child.tokens[0] == "group"]
        if len(lists) > 1:
            # keepalived: "Group list already specified for sync group", the second skipped.
            raise _error(
                lists[1],
                f"group: expected one group block in vrrp_sync_group {name}, got a second "
                f"(the first at {lists[0].filename}:{lists[0].line})",
            )
        self.before[f"vrrp_sync_group {name}"] = {
            kind: {b.name for b in blocks} for kind, blocks in self.tracked.items()
        }
        self.walk(block, children, SYNC_GROUP, f"vrrp_sync_group {name}")

    def finish_sync_groups(
        self,
        instances: list[VrrpInstance],
        scripts: dict[str, VrrpScript],
        files: dict[str, TrackedFile],
        bfds: dict[str, BfdInstance],
        processes: dict[str, TrackedProcess],
    ) -> list[SyncGroup]:
        """The ``vrrp_sync_group`` models, each checked against the instances and the tracked
        blocks; a member's problem is located at its entry in the instance."""
        by_name = {inst.name: inst for inst in instances}
        blocks = {b.name: b for b in self.instances}
        taken: dict[str, str] = {}
        groups = []
        for b in self.sync_groups:
            group = _located(b.node, build_sync_group, b.name, b.values)
            errors, warnings = sync_group_problems(
                group, by_name, taken, scripts, files, bfds, processes
            )
            for problem in warnings:
                self.warn(self.where(b, problem.key), problem.message)
            if errors:
                raise _error(self.group_where(b, errors[0].key), errors[0].message)
            scope = f"vrrp_sync_group {b.name}"
            for keyword, kind in _NAMED_BLOCKS.items():
                self.defined_before(b, keyword, getattr(group, keyword), kind, scope)
            for member in group.group:
                problems = member_problems(group, by_name[member], scripts, files, bfds, processes)
                if problems:
                    where = self.where(blocks[member], problems[0].key)
                    raise _error(where, f"vrrp_instance {member}: {problems[0].message}")
                taken[member] = group.name
            groups.append(group)
        return groups

    def group_where(self, b: _Block, key: object) -> Node:
        """Where a sync group's problem is: the ``group`` line naming the member, or the
        entry."""
        if isinstance(key, tuple) and key[0] == "group":
            for (field_name, *_), node in (
                (k, n) for k, n in b.where.items() if isinstance(k, tuple)
            ):
                if field_name == "group" and key[1] in node.tokens:
                    return node
        return self.where(b, key)

    def named(
        self,
        node: Node,
        table: Table,
        check_name: Callable[[str], object],
        kind: str | None = None,
    ) -> None:
        """A block an instance tracks by name (``bfd_instance``, ``vrrp_script``,
        ``track_file``); ``kind``: its keyword, when the file spells it otherwise."""
        kind = kind or node.tokens[0]
        (name,) = _header(node, 1)
        _located(node, check_name, name)
        block = _new_block(node, kind, name, self.tracked[kind])
        self.walk(block, _children(node, table.what), table, f"{kind} {name}")

    def finish_bfds(self) -> dict[str, BfdInstance]:
        """The ``bfd_instance`` models by name, each checked alone and against the earlier ones."""
        done: dict[str, BfdInstance] = {}
        for b in self.tracked["bfd_instance"]:
            bfd = _located(b.node, build_bfd_instance, b.name, b.values)
            problems = bfd_instance_problems(bfd)
            if problems:
                raise _error(self.where(b, problems[0].key), problems[0].message)
            for other in done.values():
                duplicate = duplicate_bfd_problem(other, bfd)
                if duplicate:
                    raise _error(self.where(b, "neighbor_ip"), duplicate)
            done[b.name] = bfd
        return done

    def finish(
        self,
        b: _Block,
        gd: GlobalDefs,
        bfds: dict[str, BfdInstance],
        scripts: dict[str, VrrpScript],
        files: dict[str, TrackedFile],
        processes: dict[str, TrackedProcess],
    ) -> VrrpInstance:
        for required in ("interface", "virtual_router_id"):
            if required not in b.values:
                raise _error(
                    b.node,
                    f"vrrp_instance {b.name}: missing '{required}' "
                    f"(expected {required} in every vrrp_instance)",
                )
        kwargs = dict(b.values)
        interface = kwargs.pop("interface")
        vrid = kwargs.pop("virtual_router_id")
        inst = _located(b.node, lambda: VrrpInstance(b.name, interface, vrid, **kwargs))
        errors, warnings = instance_problems(inst, gd)
        for problem in warnings:
            self.warn(self.where(b, problem.key), f"vrrp_instance {b.name}: {problem.message}")
        errors += track_bfd_problems(inst.track_bfd, inst.effective_priority, bfds)
        errors += track_script_problems(inst.track_script, inst.effective_priority, scripts)
        errors += track_file_problems(inst.track_file, inst.effective_priority, files)
        errors += track_process_problems(inst.track_process, inst.effective_priority, processes)
        if errors:
            raise _error(self.where(b, errors[0].key), errors[0].message)
        for keyword, kind in _NAMED_BLOCKS.items():
            self.defined_before(b, keyword, getattr(inst, keyword), kind)
        return inst

    def defined_before(
        self, b: _Block, keyword: str, tracks: list[Any], kind: str, scope: str | None = None
    ) -> None:
        """Refuse a ``keyword`` entry of instance ``b`` (or of the block ``scope`` names)
        naming a ``kind`` block defined after it (keepalived ignores such an entry)."""
        scope = scope or f"vrrp_instance {b.name}"
        before = self.before[b.name if scope.startswith("vrrp_instance ") else scope]
        for i, track in enumerate(tracks):
            if track.name not in before[kind]:
                later = next(x for x in self.tracked[kind] if x.name == track.name).node
                raise _error(
                    self.where(b, (keyword, i)),
                    f"{keyword}: expected a {kind} defined before {scope} "
                    f"(keepalived ignores one defined later), got {track.name!r} (defined at "
                    f"{later.filename}:{later.line})",
                )

    @staticmethod
    def where(b: _Block, key: object) -> Node:
        node = b.where.get(key)
        if node is None and isinstance(key, tuple):
            node = b.where.get(key[0])
        return node or b.node

    def check_vrids(self, instances: list[VrrpInstance]) -> None:
        for i, inst in enumerate(instances):
            for other in instances[:i]:
                problem = same_vrid_problem(other, inst)
                if problem:
                    raise _error(self.where(self.instances[i], "virtual_router_id"), problem)


def parse(text: str, filename: str = "<string>") -> Config:
    """Parse keepalived.conf ``text``; ``filename`` is used in messages and to resolve
    relative ``include`` patterns (the current directory for ``"<string>"``).

    Raises :class:`ConfigError` (``FILE:LINE: ...``) for invalid configurations.
    Unknown keywords end up in ``Config.warnings``, and with every other statement the
    parser does not model in ``Config.unused``.
    """
    return _Parser().run(tree(lex(text, filename)))


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse the keepalived.conf at ``path`` (see :func:`parse`)."""
    return parse(Path(path).read_text(encoding="utf-8", errors="replace"), os.fspath(path))
