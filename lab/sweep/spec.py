"""The sweep file: a base scenario and the axes to vary, and the cells it expands into.

A sweep file is YAML, checked against :class:`SweepSpec` with the same one-line errors as a
scenario (``FILE:LINE: field: message``, exit code 2)::

    name: quick
    scenario: short-timers          # a bundled scenario, or a path relative to this file
    trials: 3
    axes:
      impl: [bundled, keepalived]
      advert_int: [0.1, 0.05]
      fault: [stop, host-down]
      priority: [100]               # the backup's: it sets Skew_Time
      load: [none, advert-loss 5%, cpu-hog]
      bfd: [none, 0.05]             # BFD between the two at 50 ms x 3, or none
    hold: 60                        # how long a `hold` trial leaves the pair alone (s)

Every combination of one value per axis is a :class:`~lab.sweep.record.Cell`, and
:func:`cell_scenario` turns a cell into a runnable scenario: the base scenario's topology and
routers with the cell's values, and steps that bring the master up, inject the fault once the
service is steady, and judge the one failover against the RFC's figure. The fault ``hold`` is
no fault: the steady pair is left alone for ``hold`` seconds (under the cell's load), and the
trial counts the mastership changes nothing explains (:mod:`lab.sweep.floor` finds, from such
trials, the shortest advert interval each implementation holds steady at).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lab.errors import ScenarioError
from lab.scenario import (
    Scenario,
    first_error,
    load_scenario,
    resolve_scenario,
    scenario_base_dir,
)
from lab.sweep.record import BFD_MULTIPLIER, Cell

#: Where the bundled sweeps live, inside the package.
SWEEP_DIR = Path(__file__).resolve().parent.parent / "sweeps"

#: The faults a trial can open a failover with, and how the runner is told. ``advert-loss``
#: is a load (``axes.load``); ``thaw``, ``heal`` and ``host-up`` undo a fault.
FAULTS = ("stop", "crash", "host-down", "freeze", "partition", "link-flap")
#: The trial kind with no fault: the pair is held steady and its spurious transitions counted.
HOLD = "hold"
#: The step of a ``hold`` trial that leaves the pair alone.
HOLD_STEP = "the pair is left alone"
_NOT_FAULTS = {
    "advert-loss": "advert loss is a load: axes.load: [advert-loss 5%]",
    "thaw": "thaw undoes freeze: sweep the fault, not its undo",
    "heal": "heal undoes partition: sweep the fault, not its undo",
    "host-up": "host-up undoes host-down: sweep the fault, not its undo",
}
_LOSS = re.compile(r"^advert-loss (\d+(?:\.\d+)?)%$")


def parse_load(value: str) -> float | None:
    """The advert loss a load names, in percent; 0 for ``none`` and None for ``cpu-hog``.

    Raises ValueError naming the spellings for anything else.
    """
    text = " ".join(str(value).split())
    if text == "none":
        return 0.0
    if text == "cpu-hog":
        return None
    match = _LOSS.match(text)
    if match and 0 < float(match.group(1)) < 100:
        return float(match.group(1))
    raise ValueError(f"{value!r} is not a load; use none, cpu-hog or advert-loss N% (0 < N < 100)")


def load_order(load: str) -> tuple[int, float, str]:
    """A sort key for loads, from the lightest: none, then advert loss by its share, then the
    CPU hog (and, last, by name, anything a results file of another version spells else)."""
    try:
        loss = parse_load(load)
    except ValueError:
        return (3, 0.0, load)
    if loss is None:
        return (2, 0.0, load)
    return (0 if loss == 0 else 1, loss, load)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Axes(_Model):
    """The values each axis takes; an axis left out keeps the base scenario's value."""

    impl: list[str] = Field(
        default_factory=lambda: ["keepalived"],
        min_length=1,
        description="VRRP implementations (drivers): keepalived, bundled, frr.",
    )
    advert_int: list[float] | None = Field(
        None,
        min_length=1,
        description="Advertisement intervals in seconds, 0.01 (VRRPv3's centisecond) to 255; "
        "default: the base scenario's.",
    )
    priority: list[int] | None = Field(
        None,
        min_length=1,
        description="The backup's priority (1-254, below the master's): it sets Skew_Time and "
        "Master_Down_Interval. Default: the base scenario's.",
    )
    preempt: list[bool] = Field(default_factory=lambda: [True], min_length=1)
    fault: list[str] = Field(
        default_factory=lambda: ["stop"],
        min_length=1,
        description="Faults that open the failover: " + ", ".join(FAULTS) + "; or hold, no "
        "fault: the steady pair is left alone for `hold` seconds and its spurious transitions "
        "are counted (the stability floor).",
    )
    profile: list[str] | None = Field(
        None,
        min_length=1,
        description="SDN profiles of the VIP's network (docs/sdn-profiles.md); default: the "
        "base scenario's.",
    )
    load: list[str] = Field(
        default_factory=lambda: ["none"],
        min_length=1,
        description="What else happens during the trial: none, cpu-hog (one core busy at nice "
        "0) or advert-loss N% (the fabric drops that share of adverts).",
    )

    bfd: list[float | None] | None = Field(
        None,
        min_length=1,
        description="BFD between master and backup: its interval in seconds (both ends' min_rx "
        f"and min_tx, whole milliseconds; Detect Mult {BFD_MULTIPLIER}), or none. The bundled "
        "daemon's backup takes over on its session to the master going Down (bfd_takeover); "
        "keepalived's and FRR's sessions run untracked beside VRRP, measured but not acted on "
        "(keepalived would not take over sooner, docs/seed.md; FRR's vrrpd cannot track BFD). "
        "Default: none.",
    )

    @field_validator("bfd", mode="before")
    @classmethod
    def _bfd_none(cls, value: Any) -> Any:
        # `none`, as the load axis spells it, is YAML's null here.
        if isinstance(value, list):
            return [
                None if isinstance(v, str) and v.strip().lower() == "none" else v for v in value
            ]
        return value

    @field_validator("bfd")
    @classmethod
    def _bfd_intervals(cls, value: list[float | None] | None) -> list[float | None] | None:
        for v in value or []:
            if v is not None and (v <= 0 or abs(v * 1000 - round(v * 1000)) > 1e-6):
                raise ValueError(
                    f"{v!r} is not a BFD interval; give seconds in whole milliseconds, e.g. "
                    "0.05, or none"
                )
        return value if value is None else _unique(value, "BFD interval")

    @field_validator("impl")
    @classmethod
    def _impls(cls, value: list[str]) -> list[str]:
        from lab.routers import known_drivers

        for name in value:
            if name not in known_drivers():
                raise ValueError(
                    f"{name!r} is not an implementation; choose from {', '.join(known_drivers())}"
                )
        return _unique(value, "implementation")

    @field_validator("fault")
    @classmethod
    def _faults(cls, value: list[str]) -> list[str]:
        names = [name.replace("_", "-") for name in value]
        for name in names:
            if name in _NOT_FAULTS:
                raise ValueError(f"{name!r}: {_NOT_FAULTS[name]}")
            if name not in (*FAULTS, HOLD):
                raise ValueError(
                    f"{name!r} is not a fault; choose from {', '.join(FAULTS)}, or {HOLD} (none)"
                )
        return _unique(names, "fault")

    @field_validator("profile")
    @classmethod
    def _profiles(cls, value: list[str] | None) -> list[str] | None:
        from lab.sdn.profiles import PROFILES

        for name in value or []:
            if name not in PROFILES:
                raise ValueError(
                    f"{name!r} is not an SDN profile; choose from {', '.join(PROFILES)}"
                )
        return value if value is None else _unique(value, "profile")

    @field_validator("load")
    @classmethod
    def _loads(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            parse_load(item)
            out.append(" ".join(str(item).split()))
        return _unique(out, "load")

    @field_validator("advert_int", "priority", "preempt")
    @classmethod
    def _distinct(cls, value: list[Any] | None) -> list[Any] | None:
        return value if value is None else _unique(value, "value")


def _unique(values: list[Any], what: str) -> list[Any]:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} {v!r} is listed twice")
        seen.add(v)
    return values


class SweepSpec(_Model):
    """A sweep: a base scenario, the axes to vary over it, and how many trials per cell."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", description="Short name.")
    description: str = ""
    scenario: str = Field(
        "short-timers",
        description="The base scenario: a bundled name or a path relative to the sweep file. "
        "Its routers must be given as parameters (not config files), two of them, on one VIP.",
    )
    trials: int = Field(3, ge=1, le=1000, description="Failovers measured per cell.")
    hold: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="Seconds a `hold` trial (fault: hold) leaves the steady pair alone, counting "
        "the mastership changes nothing explains.",
    )
    axes: Axes = Field(default_factory=Axes)


class Sweep:
    """A checked sweep: its spec, the base scenario it was resolved against, and its cells."""

    def __init__(
        self,
        spec: SweepSpec,
        source: str,
        base: Scenario,
        base_dir: Path | None = None,
        *,
        check: bool = True,
    ) -> None:
        self.spec = spec
        self.source = source
        self.base = base
        self.base_dir = base_dir
        """The sweep file's directory, against which a relative ``scenario`` was found."""
        self.master, self.backup = _roles(base, source)
        self.cells = _expand(spec.axes, base, self.master, self.backup)
        top = next(r.priority for r in base.routers if r.node == self.master)
        for prio in spec.axes.priority or []:
            if not 1 <= prio < top:
                raise ScenarioError(
                    source,
                    "axes.priority",
                    f"{prio} is not a backup's priority: it must be 1 to {top - 1}, below the "
                    f"master's {top} ({self.master})",
                )
        # Every cell is built once here, so that a value the router model refuses (an advert
        # interval that is not whole centiseconds, a priority of the master's) is an error
        # of the sweep file, before any trial runs.
        for cell in self.cells if check else []:
            try:
                cell_scenario(self, cell)
            except ScenarioError as exc:
                raise ScenarioError(source, f"axes ({cell.key})", exc.message) from None
            except ValueError as exc:  # the timers refuse the interval (vrrp.timers)
                raise ScenarioError(source, f"axes ({cell.key})", str(exc)) from None

    def deadlines(self, cell: Cell) -> tuple[float, float]:
        """(up, over) for ``cell``: see :func:`deadlines`."""
        master = next(r for r in self.base.routers if r.node == self.master)
        return deadlines(cell, master.priority, master.version)

    def held_for(self, cell: Cell) -> float:
        """How long ``cell``'s trial waits on purpose: the hold of a ``hold`` trial, else 0."""
        return self.spec.hold if cell.fault == HOLD else 0.0

    @property
    def version(self) -> int:
        """The VRRP version of the base scenario's master (and so of every cell)."""
        return next(r for r in self.base.routers if r.node == self.master).version

    @property
    def name(self) -> str:
        """The sweep's name."""
        return self.spec.name

    def trials(self) -> list[tuple[Cell, int]]:
        """Every (cell, trial index) the sweep runs, in run order: trial 0 of every cell first,
        so that an interrupted sweep has covered the whole grid as evenly as it could."""
        return [(cell, n) for n in range(self.spec.trials) for cell in self.cells]

    def header(self) -> dict[str, Any]:
        """The header line of ``results.jsonl``: what a resumed sweep must match."""
        return {
            "type": "sweep",
            "sweep": self.name,
            "spec": json.loads(self.spec.model_dump_json()),
            "cells": [c.key for c in self.cells],
        }


def _roles(base: Scenario, source: str) -> tuple[str, str]:
    """The base scenario's master (higher priority) and backup nodes."""
    routers = base.routers
    if len(routers) != 2:
        raise ScenarioError(
            source,
            "scenario",
            f"the base scenario {base.name!r} has {len(routers)} routers; a sweep needs two "
            "(a master and a backup), e.g. short-timers",
        )
    if any(r.config is not None for r in routers):
        raise ScenarioError(
            source,
            "scenario",
            f"the base scenario {base.name!r} gives its routers as config files; a sweep varies "
            "parameters, so use a scenario whose routers are parameters, e.g. short-timers",
        )
    if routers[0].priority == routers[1].priority:
        raise ScenarioError(
            source, "scenario", f"the base scenario {base.name!r}'s routers have one priority"
        )
    high, low = sorted(routers, key=lambda r: -r.priority)
    return high.node, low.node


def _expand(axes: Axes, base: Scenario, master: str, backup: str) -> list[Cell]:
    from lab.routers import driver_class

    by_node = {r.node: r for r in base.routers}
    advert = axes.advert_int or [by_node[backup].advert_int]
    priority = axes.priority or [by_node[backup].priority]
    profile = axes.profile or [_vip_profile(base)]
    unicast = by_node[master].unicast
    cells = []
    for impl, fault, adv, prio, preempt, prof, load, bfd in itertools.product(
        axes.impl,
        axes.fault,
        advert,
        priority,
        axes.preempt,
        profile,
        axes.load,
        axes.bfd or [None],
    ):
        transport = "multicast" if not unicast or not driver_class(impl).unicast else "unicast"
        cells.append(Cell(impl, fault, adv, prio, preempt, prof, load, transport, bfd))
    return cells


def _vip_profile(base: Scenario) -> str:
    network = base.vips[0].network if base.vips else base.networks[0].name
    net = next(n for n in base.networks if n.name == network)
    return net.sdn.profile if net.sdn is not None else "l2-plain"


# -- a cell as a scenario ------------------------------------------------------------------------

#: Seconds a daemon is given to start, on top of what its timers take (process start-up,
#: reading its config, opening sockets): generous, as a deadline and not a wait.
START_SLACK = 2.0
#: A BFD cell's sessions send at the slow rate until Up (keepalived's idle_tx default, RFC
#: 5880 §6.8.3's "not less than one second"), and the three-way handshake takes a few of them.
BFD_IDLE_TX = 1.0
BFD_UP_PACKETS = 3


def deadlines(cell: Cell, master_priority: int, version: int) -> tuple[float, float]:
    """(up, over): how long the master may take to hold the VIP from start, and the backup to
    serve it after the fault, both from the timers: twice the master's Master_Down_Interval
    (it starts as a backup) and the backup's Master_Down_Interval plus three intervals, each
    with :data:`START_SLACK`."""
    from vrrp.timers import Timers

    up = 2 * Timers.of(version, master_priority, cell.advert_int).master_down_interval
    over = Timers.of(version, cell.priority, cell.advert_int).master_down_interval
    if cell.bfd is not None:
        # The sessions start at the slow rate (BFD_IDLE_TX) and come Up within a few packets.
        up += BFD_UP_PACKETS * BFD_IDLE_TX
    return up + START_SLACK, over + 3 * cell.advert_int + START_SLACK


def theory(cell: Cell, version: int) -> tuple[float | None, float]:
    """The detection window of ``cell`` in seconds, as (earliest, latest): the RFC's
    (:func:`lab.metrics.theory_window`), or, where the backup takes over on its BFD session
    going Down, the earlier of the RFC's and BFD's. BFD's is [(Detect Mult − 1) × interval,
    Detect Mult × interval]: the detection timer runs Detect Mult intervals from the master's
    last packet, which came at most one interval before the fault (RFC 5880 §6.8.4; jitter
    only shortens the gap). Master_Down_Timer still runs beside it, and at a slow BFD rate and
    short adverts it fires first."""
    from lab import metrics

    low, high = metrics.theory_window(cell.fault, cell.priority, cell.advert_int, version)
    if not cell.bfd_takeover or cell.bfd is None:
        return low, high
    bfd_low, bfd_high = (BFD_MULTIPLIER - 1) * cell.bfd, BFD_MULTIPLIER * cell.bfd
    return (bfd_low if low is None else min(low, bfd_low)), min(high, bfd_high)


def tolerance_interval(cell: Cell, version: int) -> float:
    """The interval whose fifth is the detection's tolerance: BFD's where BFD's window ends
    first (it sets the detection), else the advert interval."""
    if cell.bfd_takeover and cell.bfd is not None:
        vrrp_high = theory(cell.without_bfd(), version)[1]
        if BFD_MULTIPLIER * cell.bfd <= vrrp_high:
            return cell.bfd
    return cell.advert_int


def cell_scenario(sweep: Sweep, cell: Cell) -> Scenario:
    """The runnable scenario of one cell (raises :class:`ScenarioError` for a value the
    scenario or router model refuses)."""
    from lab.conformance.bench import tolerance

    base = sweep.base
    data = base.model_dump(mode="json", exclude_none=True, by_alias=True)
    data["name"] = f"{base.name}-{cell.impl}"[:32]
    master, backup = sweep.master, sweep.backup
    vip = str(base.vips[0].address) if base.vips else None
    routers = data["routers"]
    for r in routers:
        r["impl"] = cell.impl
        r["advert_int"] = cell.advert_int
        r["nopreempt"] = not cell.preempt
        if cell.bfd is not None:
            r["bfd"] = _bfd_params(cell)
        if r["node"] == backup:
            r["priority"] = cell.priority
        if cell.transport == "multicast":
            r["unicast"] = False
            r["use_vmac"] = False
            r["vmac_xmit_base"] = False
            for key in ("unicast_src_ip", "unicast_peers"):
                r.pop(key, None)
    vip_net = base.vips[0].network if base.vips else base.networks[0].name
    for net in data["networks"]:
        if net["name"] == vip_net:
            net["sdn"] = {"profile": cell.profile}
    # The VIP is allowed on the routers' ports up front, as the seed's `port set` steps do
    # halfway: a sweep measures the failover, not port security.
    if vip is not None:
        for inst in data["instances"]:
            if inst["name"] in (master, backup):
                for port in inst["ports"]:
                    if port["network"] == vip_net:
                        pairs = port.setdefault("allowed_address_pairs", [])
                        if not any(p.get("ip_address") == vip for p in pairs):
                            pairs.append({"ip_address": vip})
    version = sweep.version
    up, over = sweep.deadlines(cell)
    steps: list[dict[str, Any]] = [
        {"start": "all"},
        {"name": f"{master} becomes master", "expect": {"master": master, "within": up}},
        {"name": f"{master} serves the VIP", "expect": {"served_by": master, "within": up}},
    ]
    if cell.bfd is not None:
        # The session must be Up before the fault, or there is nothing for BFD to detect: at
        # short advert intervals the service is steady long before the slow start ends.
        steps.append(
            {
                "name": f"{backup}'s BFD session to {master} is Up",
                "expect": {"bfd": {"node": backup, "session": master}, "within": up},
            }
        )
    loss = parse_load(cell.load)
    if loss:
        steps.append(
            {"name": f"the fabric drops {loss:g}% of adverts", "advert-loss": {"percent": loss}}
        )
    if cell.fault == HOLD:
        # Nothing is judged: the trial counts what happened (lab.sweep.trial), and a flap
        # ended by preemption or a backup left master both count the same.
        steps.append({"name": HOLD_STEP, "observe": sweep.spec.hold})
        return _scenario(sweep, data, steps)
    low, high = theory(cell, version)
    tol = tolerance(tolerance_interval(cell, version))
    bound = {"min": round(((low if low is not None else high) - tol) * 1000, 6)}
    bound["max"] = round((high + tol) * 1000, 6)
    steps.append(_fault_step(cell, master, backup, over))
    steps.append({"name": f"{backup} takes over", "expect": _takeover(cell, master, backup, over)})
    failover: dict[str, Any] = {"detection_ms": bound}
    if cell.fault != "partition":
        failover["new_master"] = backup
    steps.append({"name": "detection against the RFC", "expect": {"failover": failover}})
    return _scenario(sweep, data, steps)


def _scenario(sweep: Sweep, data: dict[str, Any], steps: list[dict[str, Any]]) -> Scenario:
    """The checked scenario of a cell: the base scenario's ``data`` with ``steps``."""
    base = sweep.base
    data["steps"] = steps
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, sweep.source, None) from None
    except ValueError as exc:
        raise ScenarioError(sweep.source, "", str(exc)) from None
    object.__setattr__(scenario, "_base_dir", scenario_base_dir(base))
    return scenario


def _bfd_params(cell: Cell) -> dict[str, Any]:
    """A router's ``bfd:`` in a BFD cell. The bundled daemon tracks the session unweighted,
    with ``bfd_takeover``; keepalived and FRR run it untracked. keepalived tracking it
    unweighted, its backup would go to FAULT and never take over; weighted, the session would
    move the priority the sweep holds (docs/seed.md, claim 12). FRR's vrrpd cannot track it."""
    assert cell.bfd is not None
    tracked = {"track": "unweighted", "takeover": True} if cell.impl == "bundled" else {}
    return {
        "min_rx": cell.bfd,
        "min_tx": cell.bfd,
        "multiplier": BFD_MULTIPLIER,
        "idle_tx": BFD_IDLE_TX,
        "track": "none",
        **tracked,
    }


def _takeover(cell: Cell, master: str, backup: str, over: float) -> dict[str, Any]:
    """What shows the backup took over, awaited up to ``over``. Where the old master's kernel
    still holds the VIP the observer may keep being served by it (a crash or a freeze leaves
    the VIP and VMAC in place; a partition leaves the observer's path to it), so the routers'
    states tell, not the probes: a crashed daemon is gone, a frozen or partitioned one still
    says MASTER."""
    if cell.fault in ("partition", "freeze"):
        return {"masters": sorted([master, backup]), "within": over}
    if cell.fault == "crash":
        return {"master": backup, "within": over}
    if cell.fault == "host-down":
        # Behind its dead link the old master's daemon may still say MASTER (FRR) or FAULT
        # (keepalived); and with FRR the backup may answer before it takes over (its protodown
        # macvlan still receives the VMAC's frames, flooded once the bridge forgets the dead
        # port). So the backup's own state tells, and its first advert is then on record.
        return {"is_master": backup, "within": over}
    return {"served_by": backup, "within": over}


def _fault_step(cell: Cell, master: str, backup: str, over: float) -> dict[str, Any]:
    name = f"{cell.fault} {master}"
    if cell.fault == "partition":
        return {
            "name": f"partition {master} from {backup}",
            "partition": {"a": master, "b": backup},
        }
    if cell.fault == "link-flap":
        # Down for longer than the backup takes to take over, so that the flap is a failover.
        return {"name": name, "link-flap": {"node": master, "down_for": round(over, 3)}}
    return {"name": name, cell.fault: master}


# -- reading ------------------------------------------------------------------------------------


def resolve_sweep(name: str | Path) -> Path:
    """A CLI argument (a path, or the name of a bundled sweep) as a path."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in str(name):
        return path
    return SWEEP_DIR / f"{name}.yaml"


def bundled_sweeps() -> list[Path]:
    """The sweep files shipped in the package's ``sweeps/``, sorted by name."""
    return sorted(SWEEP_DIR.glob("*.yaml"))


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; :class:`ScenarioError` (exit 2, one line) on any problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        bundled = ", ".join(p.stem for p in bundled_sweeps())
        raise ScenarioError(
            source, "", f"no such file; the bundled sweeps are: {bundled}"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read it: {exc}") from None
    return parse_sweep(text, source, path.parent)


def parse_sweep(text: str, source: str = "<sweep>", base_dir: Path | None = None) -> Sweep:
    """Check sweep YAML ``text``; ``source`` names it in errors and ``base_dir`` anchors a
    relative base-scenario path."""
    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(
            source, "", f"not valid YAML: {problem}", mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "expected a mapping with keys name, scenario, axes", 1)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, source, tree) from None
    return sweep_from_spec(spec, source, base_dir)


def sweep_from_spec(
    spec: SweepSpec, source: str, base_dir: Path | None = None, *, check: bool = True
) -> Sweep:
    """A :class:`Sweep` from a checked spec: its base scenario is found and read. ``check``
    False skips building every cell's scenario (a trial child, whose parent did)."""
    path = Path(spec.scenario)
    if base_dir is not None and not path.is_absolute() and (base_dir / path).exists():
        path = base_dir / path
    else:
        path = resolve_scenario(spec.scenario)
    try:
        base = load_scenario(path)
    except ScenarioError as exc:
        raise ScenarioError(source, "scenario", str(exc)) from None
    return Sweep(spec, source, base, base_dir, check=check)


def json_schema_text() -> str:
    """The JSON Schema of sweep files, for editors (yaml-language-server)."""
    schema = SweepSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vrrp-lab sweep"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
