"""A network namespace's state, read whole, and what changed between two readings.

The lab promises to leave the host as it found it (docs/architecture.md#leak-checks): the
root namespace's links, addresses, routes, policy rules, nft ruleset and network sysctls, and
the mounts a lab could leave (:func:`lab_mounts`), are the same after a run as before.
:func:`snapshot` reads all of that, :func:`differences` says in one line per change what is
not the same.

:func:`snapshot` reads the caller's own namespace, or another one (a name under
``/run/netns`` or a namespace file such as ``/proc/PID/ns/net``) from a thread that enters
it. Only the network namespace changes: the mount table is always the caller's mount
namespace's. ``python -m lab.host_state`` prints a snapshot of its own namespace as JSON.

Everything but the reading is pure: :func:`differences`, :func:`steady_ruleset`,
:func:`nft_entries`, :func:`sysctl_name` and :func:`steady_sysctls` need no privileges.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab import linux

#: Network sysctls that change by themselves, with nobody touching the namespace: left out of
#: a snapshot. Found by reading ``/proc/sys/net`` over and over, idle and with labs running
#: beside it (every other value stayed put); the reason is why each one moves.
VOLATILE_SYSCTLS: Mapping[str, str] = {
    "net.netfilter.nf_conntrack_count": (
        "a gauge: the connections conntrack tracks in this namespace right now"
    ),
    "net.core.netdev_rss_key": (
        "random: filled once with random bytes by the first driver that asks for an RSS key, "
        "a global shown in the root namespace"
    ),
    "net.ipv4.tcp_fastopen_key": (
        "random: generated the first time anything in the namespace uses TCP Fast Open"
    ),
}

#: Why a sysctl file is not read at all (never in a snapshot, whatever its value):
#: ``*.route.flush`` are write-only (mode 0200, EACCES); ``net.ipv6.conf.*.stable_secret``
#: reads EIO until a secret is set. Any other file that refuses to be read is skipped the
#: same way, by its errno.
UNREADABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EIO, errno.EINVAL})

#: The link flags (``IFF_*``, ``<linux/if.h>``) by bit, for readable differences.
IFF_NAMES: Mapping[int, str] = {
    0x1: "UP",
    0x2: "BROADCAST",
    0x4: "DEBUG",
    0x8: "LOOPBACK",
    0x10: "POINTOPOINT",
    0x20: "NOTRAILERS",
    0x40: "RUNNING",
    0x80: "NOARP",
    0x100: "PROMISC",
    0x200: "ALLMULTI",
    0x400: "MASTER",
    0x800: "SLAVE",
    0x1000: "MULTICAST",
    0x2000: "PORTSEL",
    0x4000: "AUTOMEDIA",
    0x8000: "DYNAMIC",
    0x10000: "LOWER_UP",
    0x20000: "DORMANT",
    0x40000: "ECHO",
}

_FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}

#: Route attributes that change by themselves (RTA_CACHEINFO: use counts and lifetimes;
#: RTA_EXPIRES: the seconds an RA-learned route has left).
_VOLATILE_ROUTE_ATTRS = frozenset({"RTA_CACHEINFO", "RTA_EXPIRES"})

#: Address attributes that change by themselves: IFA_CACHEINFO carries the lifetimes left and
#: the times of the last changes.
_VOLATILE_ADDR_ATTRS = frozenset({"IFA_CACHEINFO"})


@dataclass(frozen=True)
class Link:
    """One network interface, as much of it as a lab could change."""

    name: str
    index: int
    kind: str
    """The rtnetlink kind (``veth``, ``bridge``, ``macvlan``...), ``""`` for a physical one."""
    mac: str
    mtu: int
    flags: tuple[str, ...]
    """The ``IFF_*`` flags set, by name."""
    operstate: str
    master: str
    """The name of the link's master (a bridge, a bond), ``""`` for none."""


@dataclass(frozen=True)
class HostState:
    """A snapshot of one network namespace (and the reader's mount table).

    Every field is sorted, so two snapshots of the same state are equal. Routes, addresses,
    rules and mounts are one readable line each; ``nft`` maps an object of the ruleset
    (``"table inet foo"``, ``"chain inet foo input"``, ``"rules inet foo input"``...) to its
    normalised JSON; ``sysctls`` maps a dotted name to its value.
    """

    links: tuple[Link, ...]
    addresses: tuple[str, ...]
    routes: tuple[str, ...]
    rules: tuple[str, ...]
    nft: tuple[tuple[str, str], ...]
    sysctls: tuple[tuple[str, str], ...]
    mounts: tuple[str, ...]

    def as_json(self) -> str:
        """The snapshot as one JSON document (what ``python -m lab.host_state`` prints)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HostState:
        """The snapshot :meth:`as_json` wrote."""
        raw = json.loads(text)
        return cls(
            links=tuple(Link(**{**link, "flags": tuple(link["flags"])}) for link in raw["links"]),
            addresses=tuple(raw["addresses"]),
            routes=tuple(raw["routes"]),
            rules=tuple(raw["rules"]),
            nft=tuple((k, v) for k, v in raw["nft"]),
            sysctls=tuple((k, v) for k, v in raw["sysctls"]),
            mounts=tuple(raw["mounts"]),
        )


# -- reading ---------------------------------------------------------------------------------


def snapshot(netns: str | None = None) -> HostState:
    """Read the state of the network namespace ``netns``.

    ``None`` is the caller's own namespace. Otherwise ``netns`` is a name under
    ``/run/netns`` or the path of a namespace file (``/proc/PID/ns/net``), read from a
    throwaway thread that enters it (:func:`lab.linux.call_in_netns`): its netlink socket,
    ``/proc/sys/net`` and the ``nft`` it starts are that namespace's. The mount table is the
    caller's mount namespace's either way.
    """
    if netns is None:
        return _read_here()
    path = netns if "/" in netns else f"/run/netns/{netns}"
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return linux.call_in_netns(fd, _read_here)
    finally:
        os.close(fd)


def _read_here() -> HostState:
    from pyroute2 import IPRoute

    # The socket is made here, in the namespace being read, whatever threads pyroute2 uses.
    with IPRoute(use_socket=socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)) as ipr:
        raw_links = list(ipr.get_links())
        names = {msg["index"]: msg.get("IFLA_IFNAME") for msg in raw_links}
        links = tuple(sorted((_link(msg, names) for msg in raw_links), key=lambda x: x.name))
        addresses = tuple(sorted(_address(msg, names) for msg in ipr.get_addr()))
        routes: list[str] = []
        rules: list[str] = []
        for family in _FAMILIES:
            routes += (_route(msg, names) for msg in ipr.get_routes(family=family))
            rules += (_rule(msg) for msg in ipr.get_rules(family=family))
    return HostState(
        links=links,
        addresses=addresses,
        routes=tuple(sorted(routes)),
        rules=tuple(sorted(rules)),
        nft=nft_entries(_nft_ruleset()),
        sysctls=steady_sysctls(_read_sysctls()),
        mounts=lab_mounts(Path("/proc/self/mountinfo").read_text().splitlines()),
    )


#: Where a lab could leave a mount behind: under these directories (``ip netns add`` pins a
#: namespace under /run/netns; runs write in the temporary directory).
MOUNT_ROOTS = ("/run/netns/", "/var/run/netns/", f"{tempfile.gettempdir().rstrip('/')}/")


def lab_mounts(mountinfo: Iterable[str]) -> tuple[str, ...]:
    """The ``/proc/self/mountinfo`` lines of the mounts a lab could leave, sorted: a pinned
    namespace (any ``nsfs`` mount) and anything mounted under :data:`MOUNT_ROOTS`. The host's
    other mounts (a login's /run/user, a container runtime's) come and go with whatever else
    the machine does, and no lab makes one: comparing them would fail a run for another's
    doing."""
    kept = []
    for line in mountinfo:
        fields = line.split()
        if "-" not in fields[6:]:
            continue  # not a mountinfo line
        fstype = fields[fields.index("-", 6) + 1]
        if fstype == "nsfs" or fields[4].startswith(MOUNT_ROOTS):
            kept.append(line)
    return tuple(sorted(kept))


def _link(msg: Any, names: Mapping[int, str | None]) -> Link:
    info = msg.get("IFLA_LINKINFO")
    master = msg.get("IFLA_MASTER")
    return Link(
        name=msg.get("IFLA_IFNAME"),
        index=msg["index"],
        kind=(info.get("IFLA_INFO_KIND") if info else None) or "",
        mac=msg.get("IFLA_ADDRESS") or "",
        mtu=msg.get("IFLA_MTU") or 0,
        flags=tuple(name for bit, name in IFF_NAMES.items() if msg["flags"] & bit),
        operstate=msg.get("IFLA_OPERSTATE") or "",
        master=(names.get(master) or str(master)) if master else "",
    )


def _fields(msg: Any, skip: Iterable[str], prefix: str, names: Mapping[int, Any]) -> str:
    """A netlink message as ``key=value`` words: its header fields, then its attributes (less
    ``skip``), interface indices as names."""
    header = [
        f"{key}={value}"
        for key, value in msg.items()
        if key not in ("attrs", "header", "event", "family", "index")
    ]
    attrs = []
    for key, value in msg["attrs"]:
        if key in skip:
            continue
        short = key.removeprefix(prefix).lower()
        if short in ("oif", "iif") and value in names:
            value = names[value]
        elif hasattr(value, "get") and "attrs" in value:
            value = dict(value["attrs"])
        word = f"{short}={value}"
        if word not in header:  # the table and flags are in both, for instance
            attrs.append(word)
    return " ".join([_FAMILIES.get(msg["family"], str(msg["family"])), *header, *attrs])


def _address(msg: Any, names: Mapping[int, Any]) -> str:
    ifname = names.get(msg["index"], msg["index"])
    return f"{ifname} " + _fields(msg, _VOLATILE_ADDR_ATTRS, "IFA_", names)


def _route(msg: Any, names: Mapping[int, Any]) -> str:
    return _fields(msg, _VOLATILE_ROUTE_ATTRS, "RTA_", names)


def _rule(msg: Any) -> str:
    return _fields(msg, (), "FRA_", {})


def _nft_ruleset() -> Any:
    proc = subprocess.run(
        ["nft", "-j", "list", "ruleset"], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nft -j list ruleset failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def sysctl_name(path: str, root: str = "/proc/sys") -> str:
    """The dotted name of a sysctl file, as sysctl(8) writes it: a dot inside one component
    (an interface called ``eth0.100``) becomes a slash."""
    parts = Path(path).relative_to(root).parts
    return ".".join(part.replace(".", "/") for part in parts)


def _read_sysctls(root: str = "/proc/sys/net") -> dict[str, str]:
    values = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            try:
                with open(path) as f:
                    values[sysctl_name(path)] = f.read().strip()
            except OSError as exc:
                if exc.errno not in UNREADABLE_ERRNOS | {errno.ENOENT, errno.ENODEV}:
                    raise  # an interface that went away mid-walk is ENOENT or ENODEV
    return values


def steady_sysctls(values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``values`` without :data:`VOLATILE_SYSCTLS`, sorted by name."""
    return tuple(sorted((k, v) for k, v in values.items() if k not in VOLATILE_SYSCTLS))


# -- the nft ruleset ---------------------------------------------------------------------------


def steady_ruleset(node: Any, key: str | None = None) -> Any:
    """A piece of ``nft -j list ruleset`` without what changes by itself or by re-creation:
    object handles, counters' packets and bytes, quotas' use and elements' time to expiry."""
    if isinstance(node, list):
        return [steady_ruleset(item) for item in node]
    if not isinstance(node, dict):
        return node
    dropped = {"handle", "expires"}
    if key == "counter":
        dropped |= {"packets", "bytes"}
    if key == "quota":
        dropped |= {"used"}
    return {k: steady_ruleset(v, k) for k, v in node.items() if k not in dropped}


def nft_entries(ruleset: Any) -> tuple[tuple[str, str], ...]:
    """``nft -j list ruleset`` as sorted ``(what, normalised JSON)`` pairs.

    ``what`` is ``"table FAMILY NAME"``, ``"rules FAMILY TABLE CHAIN"`` (a chain's rules, in
    order, as one entry) or ``"KIND FAMILY TABLE NAME"`` for a chain, set, map, flowtable or
    named object. ``metainfo`` (nft's own version) is left out.
    """
    entries: dict[str, Any] = {}
    for item in ruleset.get("nftables", []):
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        body = steady_ruleset(body, kind)
        if kind == "table":
            entries[f"table {body['family']} {body['name']}"] = body
        elif kind == "rule":
            where = f"rules {body['family']} {body['table']} {body['chain']}"
            entries.setdefault(where, []).append(body.get("expr", body))
        else:
            kind = kind.replace(" ", "-")  # "ct helper", "ct timeout": one word in the key
            entries[f"{kind} {body.get('family')} {body.get('table')} {body.get('name')}"] = body
    return tuple(sorted((k, _compact(v)) for k, v in entries.items()))


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- differences -------------------------------------------------------------------------------


def differences(before: HostState, after: HostState) -> list[str]:
    """One readable line per difference between two snapshots; ``[]`` when they are equal.

    For instance ``sysctl net.ipv4.ip_forward: 0 -> 1``, ``link vrrp-xyz added (dummy)``,
    ``nft table inet foo added``, ``route added: inet ...``. The sysctls of an interface that
    came or went (``net.ipv4.conf.IFNAME.*``) are one line with that interface, and the
    objects of an nft table that came or went are its one line.
    """
    lines = _link_differences(before.links, after.links)
    came = {link.name for link in after.links} ^ {link.name for link in before.links}
    lines += _line_differences("address", before.addresses, after.addresses)
    lines += _line_differences("route", before.routes, after.routes)
    lines += _line_differences("rule", before.rules, after.rules)
    lines += _nft_differences(dict(before.nft), dict(after.nft))
    lines += _sysctl_differences(dict(before.sysctls), dict(after.sysctls), came)
    lines += _line_differences("mount", before.mounts, after.mounts)
    return lines


def _link_differences(before: Sequence[Link], after: Sequence[Link]) -> list[str]:
    old = {link.name: link for link in before}
    new = {link.name: link for link in after}
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            lines.append(f"link {name} added ({new[name].kind or 'physical'})")
        elif name not in new:
            lines.append(f"link {name} removed ({old[name].kind or 'physical'})")
        else:
            was, now = asdict(old[name]), asdict(new[name])
            for key in was:
                if was[key] != now[key]:
                    lines.append(f"link {name} {key}: {_show(was[key])} -> {_show(now[key])}")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(value) or "-"
    return str(value) if value != "" else "-"


def _line_differences(what: str, before: Sequence[str], after: Sequence[str]) -> list[str]:
    old, new = Counter(before), Counter(after)
    return [f"{what} removed: {line}" for line in sorted((old - new).elements())] + [
        f"{what} added: {line}" for line in sorted((new - old).elements())
    ]


def _nft_differences(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    def table_of(what: str) -> str:
        _kind, family, table = what.split(" ", 3)[:3]
        return f"{family} {table}"

    whole = {what.split(" ", 1)[1] for what in old.keys() ^ new.keys() if what.startswith("table ")}
    lines = []
    for what in sorted(old.keys() | new.keys()):
        if not what.startswith("table ") and table_of(what) in whole:
            continue  # its table came or went: that table's line says it
        if what not in old:
            lines.append(f"nft {what} added")
        elif what not in new:
            lines.append(f"nft {what} removed")
        elif old[what] != new[what]:
            lines += _nft_changed(what, old[what], new[what])
    return lines


def _nft_changed(what: str, was: str, now: str) -> list[str]:
    if not what.startswith("rules "):
        return [f"nft {what} changed: {was} -> {now}"]
    where = what.removeprefix("rules ")
    old = Counter(_compact(rule) for rule in json.loads(was))
    new = Counter(_compact(rule) for rule in json.loads(now))
    lines = [f"nft rule removed from {where}: {rule}" for rule in sorted((old - new).elements())]
    lines += [f"nft rule added to {where}: {rule}" for rule in sorted((new - old).elements())]
    return lines or [f"nft rules of {where} reordered"]


def _sysctl_differences(
    old: Mapping[str, str], new: Mapping[str, str], links: set[str]
) -> list[str]:
    """The sysctls whose value changed, one line each, and those that came or went with a
    link of ``links`` (the links added or removed), one line per link. A sysctl that came or
    went alone is a kernel module's doing, not a value anyone set: not a difference."""

    def link_of(name: str) -> str | None:
        parts = name.split(".")
        if len(parts) > 3 and parts[2] in ("conf", "neigh"):
            ifname = parts[3].replace("/", ".")
            return ifname if ifname in links else None
        return None

    lines = []
    per_link: Counter[tuple[str, str]] = Counter()
    for name in sorted(old.keys() | new.keys()):
        if name not in old or name not in new:
            ifname = link_of(name)
            if ifname is not None:
                per_link[(ifname, "added" if name not in old else "removed")] += 1
                continue
        if name not in old or name not in new:
            # Not a link's: a kernel module loaded (or unloaded) with it. A lab's first nft
            # rule with conntrack loads nf_conntrack, and net.netfilter.* appear in every
            # namespace, the root one too; nothing a lab can undo, and no value it set.
            continue
        if old[name] != new[name]:
            lines.append(f"sysctl {name}: {old[name]} -> {new[name]}")
    for (ifname, how), count in sorted(per_link.items()):
        lines.append(f"sysctl net.*.{{conf,neigh}}.{ifname}.*: {count} {how} with link {ifname}")
    return lines


if __name__ == "__main__":
    print(snapshot().as_json())
