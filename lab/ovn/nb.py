"""The lab's OVN northbound: paths, command lines, and the rows of a network's ports.

Pure (no process, no namespace): imported by :mod:`lab.sdn.ports` beneath the nodes, so that
``vrrp-lab port-set`` from another terminal and the runner's ``port-set`` step change the NB
the same way. :mod:`lab.ovn.engine` runs the daemons these paths belong to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lab.ovn.neutron import LspRow, NeutronPort, lsp_rows

#: The engine's private directory inside the fabric namespace (its /run is the lab's own tmpfs).
RUN_DIR = "/run/vrrp-lab-ovn"
OVS_DB = f"unix:{RUN_DIR}/db.sock"
NB_DB = f"unix:{RUN_DIR}/nb.sock"
SB_DB = f"unix:{RUN_DIR}/sb.sock"
#: How long an NB change may take to be installed (``--wait=hv``) before it is an error.
INSTALL_SECONDS = 20.0

#: Every tool variable pointed at the private directory, so that no default path
#: (/var/run/openvswitch, /etc/openvswitch, /var/log/ovn, ...) is ever read or written.
ENV = {
    name: RUN_DIR
    for name in (
        "OVS_RUNDIR",
        "OVS_DBDIR",
        "OVS_LOGDIR",
        "OVS_SYSCONFDIR",
        "OVN_RUNDIR",
        "OVN_DBDIR",
        "OVN_LOGDIR",
        "OVN_SYSCONFDIR",
    )
}


def env_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` run with every OVS/OVN directory variable pointing at :data:`RUN_DIR`."""
    return ["env", *(f"{k}={v}" for k, v in ENV.items()), *argv]


def nbctl(
    args: Sequence[str], *, wait: bool = False, timeout: float = INSTALL_SECONDS
) -> list[str]:
    """An ``ovn-nbctl`` command line against the lab's NB; ``wait`` adds ``--wait=hv``."""
    return env_argv(
        [
            "ovn-nbctl",
            f"--db={NB_DB}",
            f"--timeout={max(1, round(timeout))}",
            *(["--wait=hv"] if wait else []),
            *args,
        ]
    )


def switch_name(network: str) -> str:
    """The logical switch of a network (Neutron's is ``neutron-<network uuid>``)."""
    return f"neutron-{network}"


def row_commands(row: LspRow, *, create: str | None = None) -> list[str]:
    """``ovn-nbctl`` sub-commands (joined by ``--``) setting ``row``; with ``create``, the
    logical switch to add the port to first."""
    cmds: list[list[str]] = []
    if create is not None:
        cmds.append(["lsp-add", create, row.name])
    cmds.append(["lsp-set-addresses", row.name, *row.addresses])
    cmds.append(["lsp-set-port-security", row.name, *row.port_security])
    cmds.append(["lsp-set-type", row.name, row.type])
    cmds.append(["lsp-set-options", row.name, *(f"{k}={v}" for k, v in row.options)])
    out: list[str] = []
    for cmd in cmds:
        out += [*(["--"] if out else []), *cmd]
    return out


def join(commands: Iterable[list[str]]) -> list[str]:
    """Sub-command lists joined into one transaction."""
    out: list[str] = []
    for cmd in commands:
        if cmd:
            out += [*(["--"] if out else []), *cmd]
    return out


def changed_rows(before: Sequence[LspRow], after: Sequence[LspRow]) -> list[LspRow]:
    """The rows of ``after`` that differ from ``before`` (by name)."""
    old = {r.name: r for r in before}
    return [r for r in after if old.get(r.name) != r]


# -- the state file's view ---------------------------------------------------------------------
#
# An ovn port's state entry (lab.sdn.ports) carries ``"engine": "ovn"`` and ``"neutron"``: its
# NeutronPort without pairs (those are the entry's ``pairs``). The state's ``"ovn_reserved"``
# lists the ports that only reserve an address, per network.


def neutron_json(port: NeutronPort) -> dict[str, Any]:
    """A port's mapping inputs, pairs aside, as stored in the state file."""
    return {
        "id": port.id,
        "mac": port.mac,
        "fixed_ips": list(port.fixed_ips),
        "subnets": list(port.subnets),
        "port_security": port.port_security,
        "dhcp": port.dhcp,
        "bound": port.bound,
        "pairs": [[ip, mac] for ip, mac in port.allowed_address_pairs],
    }


def neutron_from_json(
    data: Mapping[str, Any], pairs: Iterable[tuple[str, str | None]]
) -> NeutronPort:
    """The port stored by :func:`neutron_json`, with ``pairs`` as its allowed address pairs."""
    return NeutronPort(
        id=data["id"],
        mac=data["mac"],
        fixed_ips=tuple(data["fixed_ips"]),
        subnets=tuple(data["subnets"]),
        port_security=data["port_security"],
        allowed_address_pairs=tuple(pairs),
        dhcp=data["dhcp"],
        bound=data["bound"],
    )


def network_ports(
    state: Mapping[str, Any], network: str, override: Mapping[str, list[tuple[str, str | None]]]
) -> list[NeutronPort]:
    """Every Neutron port of ``network`` in the state, with ``override``'s pairs where given."""
    out = []
    for pid, entry in state["ports"].items():
        if entry.get("engine") != "ovn" or entry["spec"]["network"] != network:
            continue
        pairs = override.get(pid)
        if pairs is None:
            pairs = [(p["ip_address"], p.get("mac_address")) for p in entry["pairs"]]
        out.append(neutron_from_json(entry["neutron"], pairs))
    for data in state.get("ovn_reserved", {}).get(network, []):
        out.append(neutron_from_json(data, [tuple(p) for p in data["pairs"]]))
    return out


def change_commands(
    state: Mapping[str, Any], port_id: str, new_pairs: list[tuple[str, str | None]]
) -> list[str]:
    """The NB transaction that gives ``port_id`` the pairs ``new_pairs``: its own row and
    every virtual port the change types or untypes. Empty when no row changes."""
    network = state["ports"][port_id]["spec"]["network"]
    before = lsp_rows(network_ports(state, network, {}))
    after = lsp_rows(network_ports(state, network, {port_id: new_pairs}))
    return join(row_commands(r) for r in changed_rows(before, after))
