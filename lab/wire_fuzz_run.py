"""The wire fuzzer's run: a bundled master/backup pair in a lab, fuzzed from the observer.

:func:`run_pair` starts the bundled daemon on ``ha_first`` (master, priority 200) and
``ha_second`` (backup, 100) of the seed topology on plain L2 (:func:`scenario_text`, dual
stack at MTU 1500 so IPv6 can run), in one family and mode, then sends
:func:`lab.wire_fuzz.generate`'s frames from the observer with AF_PACKET at a bounded rate,
and waits until the daemons' status counters account for every advert the oracle says
reaches them. It then compares, per router: the socket's and the instance's receive counters
by reason, the instance's discard keys, the kernel counters the oracle names
(``/proc/net/snmp``, ``netstat``, ``snmp6`` of the node's namespace), the raw sockets' queue
drops, the daemon's pid, and the transitions reported since the fuzz began; the fabric's
kernel counters (its bridge validates headers, and its own interface is a host on the
segment); and that the master still advertises and the backup still hears it. The daemons'
status is read from their control sockets (what ``python -m vrrp status`` reads), fast enough
to read both between two adverts of the master, whose own adverts the backup's counters hold
and which are taken out. The test and ``benchmarks/wire_fuzz.py`` both call it;
:class:`FuzzResult` carries the figures and prints them as a table.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab import Lab, clock
from lab.errors import WaitTimeout
from lab.routers import Router, make_router, master_down_interval
from lab.topology import bridge_name
from lab.wait import wait_until
from lab.wire_fuzz import FABRIC, Expected, expect, generate
from lab.wire_fuzz_oracle import ROLES, Pair, Peer

__all__ = [
    "ADVERT_INT",
    "KERNEL_COUNTERS",
    "FuzzResult",
    "RouterFigures",
    "pair_for",
    "router_config",
    "run_pair",
    "scenario_text",
]

REPO = Path(__file__).resolve().parents[1]
ADVERT_INT = 1.0
"""The pair's advert interval (s): a backup's Master_Down_Interval of 3.6 s outlasts any host
stall a shared two-core machine shows, so a transition seen is the daemon's doing."""
VRID = 1
PRIORITY = {"master": 200, "backup": 100}
NODES = {"master": "ha_first", "backup": "ha_second"}
VIP = {4: "10.200.51.10", 6: "2001:db8:51::10"}
SPARE = {4: "10.200.51.99", 6: "2001:db8:51::99"}
KERNEL_COUNTERS = (
    "Ip:InHdrErrors",
    "Ip:InAddrErrors",
    "Ip:InUnknownProtos",
    "Ip:ReasmOKs",
    "IpExt:InTruncatedPkts",
    "IpExt:InCsumErrors",
    "Ip6:Ip6InHdrErrors",
    "Ip6:Ip6InAddrErrors",
    "Ip6:Ip6InUnknownProtos",
    "Ip6:Ip6InTruncatedPkts",
    "Ip6:Ip6ReasmOKs",
)
"""The kernel counters compared with the oracle's (every one, expected 0 when it names none)."""
_ETH_P_ALL = 0x0003
_VRRP_PORT = f":{112:04X}"  # a raw socket's protocol shows as its port in /proc/net/raw


def scenario_text() -> str:
    """The seed topology on plain L2, dual stack (2001:db8:51::/64, each instance's IPv6
    address ending as its IPv4 one), MTU 1500; without the seed's routers and steps."""
    data = yaml.safe_load((REPO / "scenarios" / "seed.yaml").read_text())
    for network in data["networks"]:
        network["sdn"] = {"profile": "l2-plain"}
        network["mtu"] = 1500
        network["subnets"].append({"name": "v6", "cidr": "2001:db8:51::/64"})
    for instance in data["instances"]:
        for port in instance["ports"]:
            last = port["fixed_ips"][0].rsplit(".", 1)[1]
            port["fixed_ips"].append(f"2001:db8:51::{last}")
    for key in ("routers", "steps"):
        data.pop(key, None)
    return yaml.safe_dump(data, sort_keys=False)


def _addresses(lab: Lab, node: str, family: int) -> list[dict[str, Any]]:
    ifname = lab.node(node).ports[0].ifname
    flag = "-4" if family == 4 else "-6"
    out = lab.node(node).run(["ip", flag, "-j", "addr", "show", "dev", ifname]).stdout
    links = json.loads(out)
    return list(links[0]["addr_info"]) if links else []


def bridge_facts(lab: Lab) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """What the fabric's bridge does to the segment's frames, by family: which it validates
    (``br_netfilter`` calls the IP hooks, ``bridge-nf-call-iptables`` / ``-ip6tables`` in the
    fabric's namespace, and checks the header first, whether or not any rule is loaded), and
    which its own interface's stack receives (IPv4 always; IPv6 unless disabled there)."""
    bridge = bridge_name(lab.node(NODES["master"]).ports[0].network.name)

    def sysctl(path: str) -> str:
        res = lab.fabric.run(["cat", f"/proc/sys/net/{path}"], check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    checks = tuple(
        family
        for family, name in ((4, "iptables"), (6, "ip6tables"))
        if sysctl(f"bridge/bridge-nf-call-{name}") == "1"
    )
    listens = (4,) + ((6,) if sysctl(f"ipv6/conf/{bridge}/disable_ipv6") == "0" else ())
    return checks, listens


def pair_for(lab: Lab, family: int, mode: str) -> Pair:
    """The oracle's view of the lab's pair: MACs, addresses (link-locals read from the nodes),
    priorities, and what the bridge between them checks."""
    checks, listens = bridge_facts(lab)
    peers: dict[str, Peer] = {}
    for role, node in (*NODES.items(), ("observer", "observer")):
        n = lab.node(node)
        if family == 4:
            address = unicast = str(n.ports[0].ips[0])
            link_local = None
        else:
            # The lab's build waited for every IPv6 address to leave DAD (lab.Lab): the
            # link-local read here is the node's, usable as a source and a destination.
            addrs = _addresses(lab, node, 6)
            link_local = next(a["local"] for a in addrs if a["local"].startswith("fe80"))
            unicast = next(str(ip) for ip in n.ports[0].ips if ip.version == 6)
            address = unicast if mode == "unicast" and role != "observer" else link_local
        peers[role] = Peer(n.mac, address, unicast, link_local, PRIORITY.get(role, 0))
    return Pair(
        family=4 if family == 4 else 6,
        mode="unicast" if mode == "unicast" else "multicast",
        vrid=VRID,
        interval_cs=round(ADVERT_INT * 100),
        vips=(VIP[family],),
        master=peers["master"],
        backup=peers["backup"],
        observer=peers["observer"],
        spare=SPARE[family],
        bridge_checks=checks,
        bridge_listens=listens,
    )


def router_config(pair: Pair, role: str) -> str:
    """The ``keepalived.conf`` of one router of the pair (VRRPv3, no VMAC)."""
    me = pair.master if role == "master" else pair.backup
    other = pair.backup if role == "master" else pair.master
    peers = ""
    if pair.mode == "unicast":
        peers = (
            f"    unicast_src_ip {me.unicast}\n"
            f"    unicast_peer {{\n        {other.unicast}\n    }}\n"
        )
    prefix = "/64" if pair.family == 6 else ""
    return (
        "vrrp_instance fuzz {\n"
        "    interface ens3\n"
        f"    virtual_router_id {pair.vrid}\n"
        "    version 3\n"
        f"    priority {me.priority}\n"
        f"    advert_int {pair.interval_cs / 100:g}\n"
        f"{peers}"
        "    virtual_ipaddress {\n"
        f"        {pair.vips[0]}{prefix}\n"
        "    }\n"
        "}\n"
    )


# --- reading what the kernel and the daemons counted -------------------------------------


def kernel_counters(pid: int) -> Counter[str]:
    """The network namespace of ``pid``'s IP counters, as ``Group:Name``, and ``raw-drops``
    (the VRRP raw sockets' receive queue overflows)."""
    out: Counter[str] = Counter()
    for name in ("snmp", "netstat"):
        lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            group, keys = head.split(":", 1)
            for key, value in zip(keys.split(), values.split(":", 1)[1].split(), strict=False):
                out[f"{group}:{key}"] = int(value)
    for line in Path(f"/proc/{pid}/net/snmp6").read_text().splitlines():
        key, value = line.split()
        out[f"Ip6:{key}"] = int(value)
    for name in ("raw", "raw6"):
        for line in Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(_VRRP_PORT):
                out["raw-drops"] += int(fields[-1])
    return out


def _daemon_counters(status: dict[str, Any], family: int) -> Counter[str]:
    """One daemon's counters, flat: ``socket:*``, ``instance:*``, ``discard:*`` and
    ``adverts_sent``."""
    inst = status["instances"]["fuzz"]
    out: Counter[str] = Counter({"adverts_sent": inst["adverts_sent"], "pid": status["pid"]})
    sock = status["receive"].get(f"ens3/ipv{family}", {"reasons": {}})
    for prefix, rx in (("socket", sock), ("instance", inst["rx"])):
        for key in ("received", "accepted"):
            out[f"{prefix}:{key}"] = rx.get(key, 0)
        for reason, n in rx["reasons"].items():
            out[f"{prefix}:{reason}"] = n
    for key, n in inst["discards"].items():
        out[f"discard:{key}"] = n
    return out


def _minus(now: Counter[str], before: Counter[str]) -> Counter[str]:
    """``now`` less ``before``, key by key (negative differences kept); ``pid`` as it is now."""
    out = Counter({k: now[k] - before[k] for k in now.keys() | before.keys() if k != "pid"})
    out["pid"] = now["pid"]
    return out


def _snapshot(routers: dict[str, Router], family: int) -> dict[str, Counter[str]]:
    """Both daemons' counters, read so that no master advert fell between the two reads
    (the master's ``adverts_sent`` is the same before and after the backup's)."""

    def read() -> tuple[bool, dict[str, Counter[str]]]:
        first = _daemon_counters(routers["master"].status(), family)
        backup = _daemon_counters(routers["backup"].status(), family)
        master = _daemon_counters(routers["master"].status(), family)
        return first["adverts_sent"] == master["adverts_sent"], {
            "master": master,
            "backup": backup,
        }

    return wait_until(
        read,
        timeout=4 * ADVERT_INT,
        what="a read of both daemons between two master adverts",
        accept=lambda r: r[0],
    )[1]


# --- the result --------------------------------------------------------------------------


@dataclass
class RouterFigures:
    """One router's expected and observed figures for a fuzz run."""

    role: str
    node: str
    expected: Expected
    seen: Counter[str] = field(default_factory=Counter)
    """Deltas over the fuzz: daemon counters (the master's own adverts taken out of the
    backup's) and kernel counters."""
    heard: int = 0
    """Adverts of the master the backup counted over the fuzz (taken out of ``seen``)."""
    pid_before: int = 0
    pid_after: int | None = None
    transitions: list[str] = field(default_factory=list)
    state: str = ""

    def want(self) -> Counter[str]:
        """What ``seen`` should be, from the oracle."""
        e = self.expected
        out: Counter[str] = Counter()
        for prefix, counts in (("socket", e.socket), ("instance", e.instance)):
            for key, n in counts.items():
                out[f"{prefix}:{key}"] = n
        for key, n in e.discards.items():
            out[f"discard:{key}"] = n
        out.update(e.kernel)
        return out

    def mismatches(self) -> dict[str, tuple[int, int]]:
        """Every counter whose observed delta differs from the expected one."""
        want, seen = self.want(), self.seen
        keys = set(want) | {k for k, v in seen.items() if v}
        return {k: (want[k], seen[k]) for k in sorted(keys) if want[k] != seen[k]}

    @property
    def crashed(self) -> bool:
        """The daemon is gone or was replaced."""
        return self.pid_after != self.pid_before


@dataclass
class FuzzResult:
    """One fuzz run: what was sent, each router's figures, and every problem found."""

    family: int
    mode: str
    seed: int
    count: int
    frames: int = 0
    seconds: float = 0.0
    routers: list[RouterFigures] = field(default_factory=list)
    bridge_checks: tuple[int, ...] = ()
    """The families whose headers the fabric's bridge validated (``br_netfilter``)."""
    bridge: dict[str, tuple[int, int]] = field(default_factory=dict)
    """The fabric's kernel counters: expected and seen deltas."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No crash, no transition, every counter as the oracle says, still advertising."""
        return not self.problems

    @property
    def rate(self) -> float:
        """Adverts sent per second."""
        return self.count / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (one line of the benchmark's output)."""
        return {
            "family": self.family,
            "mode": self.mode,
            "seed": self.seed,
            "adverts": self.count,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "problems": self.problems,
            "bridge_checks": list(self.bridge_checks),
            "bridge": {k: {"expected": w, "seen": n} for k, (w, n) in self.bridge.items()},
            "routers": {
                r.role: {
                    "node": r.node,
                    "sent": r.expected.sent,
                    "valid": r.expected.valid,
                    "kernel_drops": dict(r.expected.kernel_drops),
                    "expected": dict(r.want()),
                    "seen": dict(r.seen),
                    "master_adverts_heard": r.heard,
                    "crashed": r.crashed,
                    "transitions": r.transitions,
                    "state": r.state,
                }
                for r in self.routers
            },
        }

    def table(self) -> str:
        """The figures as a table: expected and seen, per router, every counter."""
        head = (
            f"wire fuzz: IPv{self.family} {self.mode}, seed {self.seed}: {self.count} adverts "
            f"({self.frames} frames) in {self.seconds:.2f} s ({self.rate:.0f}/s)"
        )

        def expected_only(get: Callable[[Expected], int]) -> list[str]:
            return [c for r in self.routers for c in (str(get(r.expected)), "")]

        # The identity first: sent = kernel drops + daemon drops + valid, per router.
        rows: list[tuple[str, list[str]]] = [
            ("sent", expected_only(lambda e: e.sent)),
            ("dropped by the kernel", expected_only(lambda e: sum(e.kernel_drops.values()))),
        ]
        rules = sorted(set().union(*(r.expected.kernel_drops for r in self.routers)))
        for rule in rules:
            rows.append((f"  {rule}", expected_only(lambda e, rule=rule: e.kernel_drops[rule])))
        daemon = expected_only(lambda e: e.sent - e.valid - sum(e.kernel_drops.values()))
        rows.append(("dropped by the daemon", daemon))
        rows.append(("valid (taken, no state change)", expected_only(lambda e: e.valid)))
        # Then every counter, expected and seen ("!" where they differ).
        keys = sorted(set().union(*(r.want().keys() | r.seen.keys() for r in self.routers)))
        order = ("socket:", "instance:", "discard:", "Ip", "raw")
        keys.sort(key=lambda k: next(i for i, p in enumerate(order) if k.startswith(p)))
        for key in keys:
            cells = []
            for r in self.routers:
                want, seen = r.want()[key], r.seen[key]
                cells += [str(want), str(seen) + ("" if want == seen else " !")]
            rows.append((key, cells))
        for key, (want, got) in self.bridge.items():
            rows.append((f"fabric {key}", [str(want), str(got) + ("" if want == got else " !")]))
        rows.append(("crashes", [c for r in self.routers for c in ("0", str(int(r.crashed)))]))
        rows.append(
            ("transitions", [c for r in self.routers for c in ("0", str(len(r.transitions)))])
        )
        rows.append(("master adverts heard", [c for r in self.routers for c in ("", str(r.heard))]))
        width = max(len(k) for k, _ in rows) + 2
        title = "".join(f"{r.role + ' (' + r.node + ')':>24}" for r in self.routers)
        sub = "".join(f"{'expected':>12}{'seen':>12}" for _ in self.routers)
        lines = [head, " " * width + title, " " * width + sub]
        lines += [f"{k:<{width}}" + "".join(f"{c:>12}" for c in cells) for k, cells in rows]
        lines += [f"problem: {p}" for p in self.problems] or ["no problem found"]
        return "\n".join(lines)


# --- the run -----------------------------------------------------------------------------


def _send(
    lab: Lab,
    frames: list[bytes],
    rate: float,
    progress: Callable[[int, int], None] | None,
) -> float:
    """Send ``frames`` from the observer's port at ``rate`` per second; the seconds taken."""
    observer = lab.node("observer")
    sock = observer.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    pace = threading.Event()  # never set: its wait() is the pacing timer
    step = max(1, len(frames) // 20)
    with sock:
        sock.bind((observer.ports[0].ifname, 0))
        start = time.monotonic()
        for i, frame in enumerate(frames):
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                pace.wait(ahead)
            sock.send(frame)
            if progress is not None and ((i + 1) % step == 0 or i + 1 == len(frames)):
                progress(i + 1, len(frames))
        return time.monotonic() - start


def run_pair(
    lab: Lab,
    family: int,
    mode: str,
    *,
    seed: int,
    count: int,
    rate: float = 400.0,
    progress: Callable[[int, int], None] | None = None,
) -> FuzzResult:
    """Fuzz a fresh bundled pair in ``lab`` (built from :func:`scenario_text`) with ``count``
    adverts of ``seed`` at ``rate`` frames per second; stop the pair and return the figures."""
    result = FuzzResult(family, mode, seed, count)
    pair = pair_for(lab, family, mode)
    items = list(generate(pair, seed, count))
    expected = expect(items)
    frames = [f for item in items for f in item.frames]
    result.frames = len(frames)
    routers: dict[str, Router] = {}
    try:
        for role in ROLES:
            config = router_config(pair, role)
            routers[role] = make_router("bundled", lab.node(NODES[role]), config)
            routers[role].start()
        # The master takes over after its Master_Down_Interval; the backup hears it at once.
        bound = master_down_interval(PRIORITY["master"], ADVERT_INT) + 2 * ADVERT_INT
        routers["master"].wait_state("MASTER", timeout=bound)
        routers["backup"].wait_state("BACKUP", timeout=bound)
        before = _snapshot(routers, family)
        pids = {role: lab.node(NODES[role]).pid for role in ROLES}
        kernel_before = {role: kernel_counters(pids[role]) for role in ROLES}
        bridge_before = kernel_counters(lab.fabric.pid)
        started = clock.now()
        result.seconds = _send(lab, frames, rate, progress)
        wanted = {role: expected[role].socket["received"] for role in ROLES}

        def accounted() -> dict[str, Counter[str]]:
            now = _snapshot(routers, family)
            delta = {role: _minus(now[role], before[role]) for role in ROLES}
            heard = delta["master"]["adverts_sent"]
            for key in ("socket:received", "socket:accepted", "instance:received"):
                delta["backup"][key] -= heard
            delta["backup"]["instance:accepted"] -= heard
            delta["backup"]["heard"] = heard
            return delta

        try:
            seen = wait_until(
                accounted,
                timeout=max(3 * ADVERT_INT, len(frames) / rate),
                what=f"the daemons' sockets to count what reaches them ({wanted})",
                accept=lambda d: all(d[r]["socket:received"] >= wanted[r] for r in ROLES),
            )
        except WaitTimeout as exc:
            result.problems.append(str(exc))
            seen = accounted()
        except OSError as exc:  # a control socket gone: the daemon died under the fuzz
            result.problems.append(f"a daemon stopped answering its control socket: {exc}")
            seen = {role: Counter({"pid": -1}) for role in ROLES}
        for role in ROLES:
            router = routers[role]
            figures = RouterFigures(role, NODES[role], expected[role])
            figures.heard = seen[role].pop("heard", 0)
            seen[role].pop("adverts_sent", None)
            # The daemon's own word for its pid, before and after: a restart shows too.
            figures.pid_before = before[role]["pid"]
            figures.pid_after = seen[role].pop("pid") if router.running else None
            kernel = kernel_counters(pids[role])
            for key in (*KERNEL_COUNTERS, "raw-drops"):
                seen[role][key] = kernel[key] - kernel_before[role][key]
            figures.seen = Counter({k: v for k, v in seen[role].items() if v})
            figures.transitions = [
                str(t) for t in router.events.snapshot(since=started) if t.kind == "INSTANCE"
            ]
            figures.state = router.state()
            result.routers.append(figures)
            for key, (want, got) in figures.mismatches().items():
                result.problems.append(f"{role}: {key} expected {want}, seen {got}")
            if figures.crashed:
                result.problems.append(f"{role}: the daemon is gone ({router.log_tail()})")
            if figures.transitions:
                result.problems.append(f"{role}: transitions {figures.transitions}")
        result.bridge_checks = pair.bridge_checks
        bridge_now = kernel_counters(lab.fabric.pid)
        for key in KERNEL_COUNTERS:
            want, got = expected[FABRIC].kernel[key], bridge_now[key] - bridge_before[key]
            if want or got:
                result.bridge[key] = (want, got)
            if want != got:
                result.problems.append(f"fabric bridge: {key} expected {want}, seen {got}")
        if not any(r.crashed for r in result.routers):
            _still_advertising(routers, family, result)
    finally:
        for router in routers.values():
            router.close()
    return result


def _still_advertising(routers: dict[str, Router], family: int, result: FuzzResult) -> None:
    """The master sends, and the backup accepts, at least one more advert after the fuzz."""
    try:
        last = _snapshot(routers, family)
    except (WaitTimeout, OSError) as exc:
        result.problems.append(f"after the fuzz: {exc}")
        return

    def more() -> dict[str, int]:
        now = _snapshot(routers, family)
        return {
            "master sent": now["master"]["adverts_sent"] - last["master"]["adverts_sent"],
            "backup accepted": now["backup"]["instance:accepted"]
            - last["backup"]["instance:accepted"],
        }

    try:
        wait_until(
            more,
            timeout=4 * ADVERT_INT,
            what="another advert from the master, accepted by the backup",
            accept=lambda d: min(d.values()) >= 1,
        )
    except (WaitTimeout, OSError) as exc:
        result.problems.append(f"after the fuzz: {exc}")
