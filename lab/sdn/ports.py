"""Allowed address pairs changed at run time: ``openstack port set --allowed-address``.

The truth about a running lab's pairs is a small JSON state file in the fabric's private
``/run``. The runner (``lab.port(name).set_allowed_address``) and ``vrrp-lab port-set`` from
another terminal both go through :func:`change_pairs`, which holds an exclusive ``flock`` on that
file while it reads the pairs, applies the difference to the nft sets in one ``nft -f``
transaction, and writes the new pairs back. Two writers therefore never interleave. On a network
of ``engine: ovn`` the same change goes to OVN's northbound instead (:mod:`lab.ovn.nb`), with
``--wait=hv``; the time that took is kept in the port's entry as ``install_seconds``.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.errors import UsageError
from lab.ovn.nb import change_commands, nbctl
from lab.sdn.ruleset import Pair, PortSpec, element_changes, set_elements
from lab.topology import normalise_mac

#: Where the state lives inside the fabric namespace's private filesystem.
STATE_PATH = "/run/vrrp-lab-sdn/state.json"

#: Runs ``argv`` in the fabric namespace with ``input`` on stdin; raises on a non-zero exit.
FabricRunner = Callable[[list[str], "str | None"], None]


def parse_pair(ip: str, mac: str | None = None) -> Pair:
    """A validated pair: ``ip`` is an address or CIDR, ``mac`` a unicast MAC or None.

    Raises :class:`UsageError` with a one-line message on bad input.
    """
    text = str(ip).strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise UsageError(f"{ip!r} is neither an IP address nor a CIDR") from None
    norm = str(net.network_address) if net.num_addresses == 1 and "/" not in text else str(net)
    try:
        mac_norm = None if mac is None else normalise_mac(mac)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Pair(norm, mac_norm)


def initial_state(ports: Iterable[tuple[PortSpec, str, str, list[Pair]]]) -> dict[str, Any]:
    """The state file's content at build: per port its spec, security mode, FDB mode, pairs."""
    return {
        "ports": {
            spec.id: {
                "spec": spec.to_json(),
                "mode": mode if spec.security else "off",
                "fdb": fdb,
                "pairs": [p.as_dict() for p in pairs],
            }
            for spec, mode, fdb, pairs in ports
        }
    }


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Create the state file (at build, before anyone else can read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1))


@contextmanager
def locked_state(path: Path) -> Iterator[dict[str, Any]]:
    """The state, read under an exclusive lock and written back when the body succeeds."""
    try:
        handle = path.open("r+")
    except FileNotFoundError:
        raise UsageError(f"{path} is missing: this lab's fabric runs no SDN state") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state = json.loads(handle.read())
        yield state
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(state, indent=1))
        handle.flush()


def read_state(path: Path) -> dict[str, Any]:
    """The state, read under a shared lock."""
    with path.open() as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        return json.loads(handle.read())


def find_port(state: dict[str, Any], name: str) -> str:
    """The id of the port called ``name``: an instance name (its first port), a port name,
    a tap name, or a port id or id prefix."""
    ports: dict[str, Any] = state["ports"]
    by_instance = [pid for pid, e in ports.items() if e["spec"]["instance"] == name]
    if by_instance:
        return by_instance[0]
    matches = [
        pid for pid, e in ports.items() if name in (e["spec"]["tap"], pid) or pid.startswith(name)
    ]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{e['spec']['instance']}:{pid[:8]}" for pid, e in ports.items())
    raise UsageError(f"no single port matches {name!r}; ports are: {known}")


def pairs_of(entry: dict[str, Any]) -> list[Pair]:
    """The pairs stored in a port's state entry."""
    return [Pair(p["ip_address"], p.get("mac_address")) for p in entry["pairs"]]


def _same(pair: Pair, wanted: Pair, port_mac: str) -> bool:
    if pair.network() != wanted.network():
        return False
    if wanted.mac is None:
        return True
    return (pair.mac or port_mac) == wanted.mac


def change_pairs(
    state_path: Path,
    port: str,
    run: FabricRunner,
    *,
    add: Iterable[Pair] = (),
    remove: Iterable[Pair] = (),
    clear: bool = False,
) -> list[Pair]:
    """Add, remove or clear allowed address pairs of ``port``; return its pairs afterwards.

    The nft sets change in one transaction (the next packet sees the new pairs, and pairs that
    stay are not touched). Removing a pair the port does not have is a :class:`UsageError`, as
    ``openstack port unset`` makes it an error.
    """
    with locked_state(state_path) as state:
        port_id = find_port(state, port)
        entry = state["ports"][port_id]
        spec = PortSpec.from_json(entry["spec"])
        old = pairs_of(entry)
        new = [] if clear else list(old)
        for wanted in remove:
            kept = [p for p in new if not _same(p, wanted, spec.mac)]
            if len(kept) == len(new):
                raise UsageError(
                    f"port {spec.instance}:{port_id[:8]} has no allowed address pair "
                    f"{describe([wanted])} (it has: {describe(new) or 'none'})"
                )
            new = kept
        for pair in add:
            if not any(p.network() == pair.network() and p.mac == pair.mac for p in new):
                new.append(pair)
        mode = entry["mode"]
        if entry.get("engine") == "ovn":
            # The real OVN: the NB rows of this port and of any virtual port it parents, then
            # --wait=hv until every ovn-controller has installed them. That wait is part of an
            # operator's outage, so it is kept (docs/sdn-profiles.md#engine-ovn).
            argv = change_commands(state, port_id, [(p.ip, p.mac) for p in new])
            began = time.perf_counter()
            run(nbctl([*argv, *(["--"] if argv else []), "sync"], wait=True), None)
            entry["install_seconds"] = time.perf_counter() - began
        elif mode != "off":
            script = element_changes(set_elements(mode, spec, old), set_elements(mode, spec, new))
            if script:
                run(["nft", "-f", "-"], script)
        entry["pairs"] = [p.as_dict() for p in new]
        if entry.get("fdb") == "static-first":
            pin_first_listers(state, run)
        return new


def pin_first_listers(state: dict[str, Any], run: FabricRunner) -> None:
    """``fdb: static-first``: pin every pair MAC (other than its port's own) to the first port
    that lists it, in a static FDB entry, and unpin it when that port no longer lists it.

    The real OVN (23.03, Neutron's mapping before 57f481c8c8) puts such a MAC in the
    ``addresses`` of every port that lists it; northd then writes one ``ls_in_l2_lkup`` flow
    per port with the same match, and ovn-controller keeps the one it installed first: the
    first port to list the MAC gets its frames for good, whoever sends from it later (seen
    with either port first, docs/sdn-profiles.md#engine-ovn). Ports listing a MAC at the same
    time (the build) are taken in scenario order.
    """
    pins: dict[str, str] = state.setdefault("fdb_pins", {})
    listers: dict[str, list[str]] = {}
    for port_id, entry in state["ports"].items():
        if entry.get("fdb") != "static-first":
            continue
        spec = entry["spec"]
        for pair in pairs_of(entry):
            if pair.mac is not None and pair.mac != spec["mac"]:
                listers.setdefault(f"{spec['network']}/{pair.mac}", []).append(port_id)
    taps = {pid: e["spec"]["tap"] for pid, e in state["ports"].items()}
    for key, owner in sorted(pins.items()):
        if owner not in listers.get(key, []):
            run(["bridge", "fdb", "del", key.split("/", 1)[1], "dev", taps[owner], "master"], None)
            del pins[key]
    for key, port_ids in sorted(listers.items()):
        if key not in pins:
            mac = key.split("/", 1)[1]
            run(
                ["bridge", "fdb", "replace", mac, "dev", taps[port_ids[0]], "master", "static"],
                None,
            )
            pins[key] = port_ids[0]


def describe(pairs: Iterable[Pair]) -> str:
    """Pairs in the OpenStack CLI's spelling: ``ip-address=IP[,mac-address=MAC]; ...``."""
    return "; ".join(
        f"ip-address={p.ip}" + (f",mac-address={p.mac}" if p.mac else "") for p in pairs
    )
