"""The traffic faults' nftables table, ``lab_faults``: what the active faults render to, and
how it is loaded (docs/architecture.md#faults).

The catalogue (:mod:`lab.faults`) keeps which partitions, advert losses and BFD drops are
active; this module turns them into one table per namespace that holds taps, re-rendered whole
and swapped atomically with one ``nft -f`` per namespace on every change, so the faults never
touch the SDN layer's tables:

* ``table bridge lab_faults`` in the fabric: its base chain hooks the Linux bridge's forward
  path, where ``iifname``/``oifname`` are the ingress and egress bridge ports (the ``tap``
  devices); flooded frames traverse it once per egress port;
* ``table netdev lab_faults`` wherever ``engine: ovn`` taps live (the fabric, a second
  chassis's hypervisor): OVN has no Linux bridge, so an egress chain on those taps
  (:mod:`lab.ovn.faults`).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lab import clock
from lab.errors import CommandFailed
from lab.node import Namespace
from lab.ovn import faults as ovn_faults
from lab.wait import wait_until

if TYPE_CHECKING:
    from lab.lab import Lab

#: The nftables table that holds every traffic fault, in each namespace that holds taps.
NFT_TABLE = "lab_faults"
#: IP protocol number of VRRP.
VRRP_PROTO = 112
#: The UDP destination ports ``bfd-loss`` drops: single-hop BFD Control and Echo (RFC 5881 §4).
BFD_PORTS = (3784, 3785)
#: ``bfd-loss`` between every pair of instances.
EVERY_PAIR = ("*", "*")


def taps(lab: Lab, node: str) -> list[str]:
    """The fabric-side devices of every port of ``node``."""
    return [p.tap for p in lab.node(node).ports]


def render(
    lab: Lab,
    partitions: set[tuple[str, str]],
    advert_loss: Mapping[str, float],
    bfd_loss: set[tuple[str, str]],
) -> dict[Namespace, str]:
    """The whole ``lab_faults`` table for the active faults, replacing the previous one: the
    fabric's, and a second chassis's netdev table where ovn taps live there.

    ``table …`` then ``delete table …`` then the definition, in one ``nft -f`` transaction per
    namespace: the table is swapped atomically whether or not it existed.
    """
    rules: list[str] = []
    for a, b in sorted(partitions):
        taps_a, taps_b = _nft_set(taps(lab, a)), _nft_set(taps(lab, b))
        rules.append(f'iifname {taps_a} oifname {taps_b} counter drop comment "partition {a}"')
        rules.append(f'iifname {taps_b} oifname {taps_a} counter drop comment "partition {b}"')
    for source, percent in sorted(advert_loss.items()):
        match = "" if source == "*" else f"iifname {_nft_set(taps(lab, source))} "
        tag = f'comment "advert-loss {source}"'
        for proto in ("ether type ip ip protocol", "ether type ip6 ip6 nexthdr"):
            # The first counter sees every advert, the second only the dropped ones.
            # Drawn in hundredths of a percent; a total loss needs no random draw.
            draw = "" if percent >= 100 else f"numgen random mod 10000 < {round(percent * 100)} "
            rules.append(f"{match}{proto} {VRRP_PROTO} counter {draw}counter drop {tag}")
    for a, b in sorted(bfd_loss):
        rules += bfd_rules(lab, a, b)
    body = "\n".join(f"        {rule}" for rule in rules)
    ovn_rules = ovn_faults.rules(
        lab,
        partitions,
        advert_loss,
        bfd_loss,
        vrrp_proto=VRRP_PROTO,
        bfd_ports=BFD_PORTS,
    )
    out = ovn_faults.tables(lab, NFT_TABLE, ovn_rules)
    out[lab.fabric] = out.get(lab.fabric, "") + (
        f"table bridge {NFT_TABLE}\n"
        f"delete table bridge {NFT_TABLE}\n"
        f"table bridge {NFT_TABLE} {{\n"
        "    chain forward {\n"
        # Before the SDN layer's filter (priority 0): a fault drops before any policy looks.
        "        type filter hook forward priority -10; policy accept;\n"
        f"{body}\n"
        "    }\n"
        "}\n"
    )
    return out


def bfd_rules(lab: Lab, a: str, b: str) -> list[str]:
    """The rules that drop BFD between ``a`` and ``b`` (both ways), or everywhere
    (:data:`EVERY_PAIR`)."""
    ports = "{ " + ", ".join(str(p) for p in BFD_PORTS) + " }"
    tag = f'comment "bfd-loss {a}<->{b}"'
    if (a, b) == EVERY_PAIR:
        paths = [""]
    else:
        taps_a, taps_b = _nft_set(taps(lab, a)), _nft_set(taps(lab, b))
        paths = [f"iifname {taps_a} oifname {taps_b} ", f"iifname {taps_b} oifname {taps_a} "]
    return [
        f"{path}{proto} udp udp dport {ports} counter drop {tag}"
        for path in paths
        for proto in ("ether type ip ip protocol", "ether type ip6 ip6 nexthdr")
    ]


def _nft_set(names: Sequence[str]) -> str:
    """An nft anonymous set of interface names."""
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{{ {quoted} }}"


def apply(rulesets: dict[Namespace, str]) -> tuple[float, float]:
    """Run ``nft -f -`` in each namespace with its ruleset; return (first handed over, last
    nft exited). Every nft is started and waiting before the first ruleset is handed over,
    so the transactions of a two-chassis lab commit within one short stretch."""
    procs = [
        (
            ns,
            text,
            ns.popen(
                ["nft", "-f", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for ns, text in rulesets.items()
    ]
    try:
        for _, _, proc in procs:
            wait_until(
                lambda proc=proc: proc.poll() is not None or _reading_stdin(proc.pid),
                timeout=10,
                what="nft to wait for its ruleset on stdin",
            )
        handed = clock.now()
        results = []
        for ns, text, proc in procs:
            # communicate() writes the ruleset and closes stdin straight away.
            out, err = proc.communicate(input=text, timeout=30)
            results.append((ns, proc, out, err))
    except BaseException:
        for _, _, proc in procs:
            proc.kill()
            proc.communicate()
        raise
    exited = clock.now()
    for ns, proc, out, err in results:
        if proc.returncode != 0:
            raise CommandFailed(ns.name, ["nft", "-f", "-"], proc.returncode, out, err)
    return handed, exited


def _reading_stdin(pid: int) -> bool:
    """True while ``pid`` is blocked in read(0, ...) (x86-64 and arm64 syscall numbers)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    # read is syscall 0 on x86-64 and 63 on arm64; the first argument is the fd.
    return len(fields) > 1 and fields[0] in ("0", "63") and fields[1] == "0x0"


def delete(lab: Lab) -> None:
    """Delete the table in every namespace that may hold it (a missing one is no error)."""
    lab.fabric.run(["nft", "delete", "table", "bridge", NFT_TABLE], check=False)
    for ns in ovn_faults.namespaces(lab):
        ns.run(["nft", "delete", "table", ovn_faults.FAMILY, NFT_TABLE], check=False)


@dataclasses.dataclass(frozen=True)
class LossCounters:
    """What the advert-loss rules have seen and dropped since they were loaded."""

    seen: int
    dropped: int


def loss_counters(lab: Lab) -> LossCounters:
    """The packet counters of the loaded table's advert-loss rules, in every namespace."""
    tables = [(lab.fabric, "bridge")]
    tables += [(ns, ovn_faults.FAMILY) for ns in ovn_faults.namespaces(lab)]
    items = []
    for ns, family in tables:
        out = ns.run(["nft", "-j", "list", "table", family, NFT_TABLE]).stdout
        items += json.loads(out).get("nftables", [])
    seen = dropped = 0
    for item in items:
        rule = item.get("rule")
        if not rule or not str(rule.get("comment", "")).startswith("advert-loss"):
            continue
        counters = [e["counter"]["packets"] for e in rule.get("expr", []) if "counter" in e]
        if len(counters) == 2:
            seen += counters[0]
            dropped += counters[1]
    return LossCounters(seen, dropped)
