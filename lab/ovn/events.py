"""OVN's own events on the lab clock: Port_Binding changes and virtual-port claims.

:class:`BindingWatch` runs ``ovsdb-client monitor`` on the lab's SB database (in the fabric,
like every OVS/OVN tool of the lab) and turns each update of ``Port_Binding`` into an event
dict shaped like the SDN controller's (``t`` on :func:`lab.clock.now`, ``event``, details), so
the failover timeline shows them beside the frames and transitions (``lab.timeline.from_sdn``):

- ``port-binding``: a port's binding changed (``chassis``: the name of the chassis it is
  bound to, the compute host's with two chassis, or ``none``; ``up``);
- ``bind-vport``: a ``type=virtual`` port's ``virtual_parent`` changed: ovn-controller's
  ``bind_vport`` action claimed it for the parent whose GARP or ARP reply came from the VIP
  (``chassis``: the claiming chassis).

The stamp is when the runner read the update, a few hundred microseconds after the SB
committed it; it is the order against other events that matters here.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Mapping
from typing import Any

from lab import clock
from lab.node import Namespace
from lab.ovn.nb import SB_DB, env_argv

COLUMNS = "logical_port,chassis,virtual_parent,up,type"


def _value(cell: Any) -> Any:
    """An OVSDB JSON cell as a plain value: ``["set", []]`` is None, ``["uuid", U]`` is U."""
    if isinstance(cell, list) and len(cell) == 2 and cell[0] in ("set", "uuid"):
        if cell[0] == "uuid":
            return cell[1]
        return cell[1][0] if cell[1] else None
    return cell


class BindingWatch:
    """Follows the SB's Port_Binding table; ``events`` grows as OVN binds and claims ports."""

    def __init__(
        self, namespace: Namespace, names: Mapping[str, str], chassis: Mapping[str, str]
    ) -> None:
        self.names = dict(names)
        """Logical port (Neutron port id) → what to call it (the instance, or ``vip <IP>``)."""
        self.chassis = dict(chassis)
        """Chassis row UUID → chassis name: every chassis is registered before the watch
        starts, and a restarted ovn-controller keeps its row."""
        self.events: list[dict[str, Any]] = []
        self._parents: dict[str, str | None] = {}
        self._proc = namespace.popen(
            env_argv(
                [
                    "ovsdb-client",
                    "monitor",
                    SB_DB,
                    "OVN_Southbound",
                    "Port_Binding",
                    COLUMNS,
                    "--format=json",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, name="ovn-bindings", daemon=True)
        self._thread.start()

    def _name(self, port: str | None) -> str:
        return self.names.get(port or "", (port or "")[:8])

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            at = clock.now()
            with contextlib.suppress(ValueError, KeyError, TypeError):
                update = json.loads(line)
                headings = update["headings"]
                for row in update["data"]:
                    cells = dict(zip(headings, row, strict=False))
                    self._row(at, cells)

    def _row(self, at: float, cells: Mapping[str, Any]) -> None:
        action = cells.get("action")
        port = _value(cells.get("logical_port"))
        if action == "initial":
            self._parents[port] = _value(cells.get("virtual_parent"))
            return
        if action not in ("new", "insert") or port is None:
            return
        parent = _value(cells.get("virtual_parent"))
        uuid = _value(cells.get("chassis"))
        chassis = self.chassis.get(uuid, uuid[:8]) if uuid else "none"
        if parent is not None and parent != self._parents.get(port):
            self.events.append(
                {
                    "t": at,
                    "event": "bind-vport",
                    "port": self._name(port),
                    "parent": self._name(parent),
                    "chassis": chassis,
                }
            )
        self._parents[port] = parent
        self.events.append(
            {
                "t": at,
                "event": "port-binding",
                "port": self._name(port),
                "chassis": chassis,
                "up": bool(_value(cells.get("up"))),
            }
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """The events so far (a copy: the reader thread keeps appending)."""
        return list(self.events)

    def close(self) -> None:
        """Stop the monitor and its reader."""
        if self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=3)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(timeout=3)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def claims_between(
    events: list[dict[str, Any]], since: float, until: float | None = None
) -> list[tuple[float, str]]:
    """The ``bind-vport`` claims in [since, until) as (ms after ``since``, text), for a
    failover's timeline."""
    return [
        ((e["t"] - since) * 1000, f"OVN binds virtual port {e['port']} to {e['parent']}")
        for e in events
        if e.get("event") == "bind-vport" and since <= e["t"] and (until is None or e["t"] < until)
    ]
