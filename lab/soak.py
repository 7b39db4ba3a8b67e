"""The soak (issue 17): many failovers in a row, the lab's resources sampled after each one,
and a judgement of whether anything grows.

Three parts, from the bottom up:

* **Sampling.** :func:`sample_lab` reads, after a cycle, the file descriptors, resident memory
  and threads of every long-lived process of a lab, by *role* (the runner itself, the SDN
  controller, each router's daemons, the probe responders, the namespaces' keepers), from
  ``/proc/PID/{fd,status}``; the element and rule counts of each nftables table in the fabric;
  the neighbour table of each node and the fabric's bridge FDB. Faults restart daemons
  (``stop``, ``crash``), so a role's figures add up whatever processes hold it now: a role is
  compared with itself across cycles, never a pid. And the size of what the lab keeps of the
  run for its report (:func:`lab_records`: the controller's events, the fault history, the
  routers' transitions and saved logs), which :func:`forget_records` empties between cycles
  when the one-lab soak is asked to (``benchmarks/soak.py --forget-records``).
* **Cycles.** :class:`SoakLab` runs one failover in a lab: the master holds the VIP and the
  service is steady, the fault, the backup's takeover against a deadline from the configured
  timers, the undo, the pair settled again. :func:`fresh_cycle` does the same in a lab built
  for the cycle alone, and samples the runner once that lab is gone.
* **Judgement**, in :mod:`lab.soak_judge` (pure, re-exported here): :func:`judge` says whether
  one series grows; see its docstring for the rule and why it is that rule. :func:`judge_all`
  applies it to every series of a run.

Records are JSON lines (:class:`Sample`, a header line first), appended and flushed as each
cycle ends, and not kept in memory (the runner's own memory is measured), so that
``benchmarks/soak.py --resume`` continues an interrupted run (:func:`read_records`,
:meth:`Records.next_cycle`). ``benchmarks/soak.py`` is the long run; the short one is
``tests/lab/test_soak.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lab import clock, faults, linux
from lab.accounting import steady_deadline, steady_for, steady_window
from lab.errors import UsageError
from lab.lab import TEARDOWN_BASE, Lab
from lab.probe import ProbeRun, responders
from lab.recording import router_timers
from lab.routers.base import Router
from lab.routers.spec import Routers, start_routers
from lab.scenario import SCENARIO_DIR, Scenario

# The judgement lives in its own module (pure, no lab); its names are the soak's too.
from lab.soak_judge import (  # noqa: F401 (re-exported)
    MIN_JUDGED,
    NOISE_FACTOR,
    RECORDS,
    RUNNER_MEMORY,
    TIMINGS,
    WARMUP_MIN,
    WARMUP_SHARE,
    Mode,
    Sample,
    Trend,
    growing,
    is_count,
    judge,
    judge_all,
    not_judged,
    quantum,
    series_of,
    table,
)
from lab.wait import wait_until

MODES: tuple[Mode, ...] = ("one-lab", "fresh-labs")

#: The faults a soak mixes, each applied to the master and then undone
#: (docs/architecture.md#faults): ``stop`` and ``crash`` are undone by starting the daemon
#: again, ``host-down`` by ``host-up``, ``freeze`` by ``thaw``, ``partition`` by ``heal``;
#: ``link-flap`` brings its link back up by itself.
FAULTS = ("stop", "crash", "host-down", "freeze", "partition", "link-flap")
#: The implementations a soak alternates by default, and the ones it runs: FRR's driver
#: (zebra beside vrrpd, protodown on the backup's macvlan) has not been through it.
IMPLS = ("keepalived", "bundled")
#: The two routers of the soak's scenario: the fault always hits the master.
MASTER, BACKUP = "ha_first", "ha_second"
#: The node that probes the VIP.
OBSERVER = "observer"
#: The SDN profile of the soak's network: it runs the controller and loads nft sets, so both
#: are sampled (the short-timer scenario itself is plain L2, with neither).
PROFILE = "neutron-ovs-hybrid"
#: The MAC of VRID 1's VMAC (RFC 5798 §7.3), allowed beside the VIP on the routers' ports.
VMAC = "00:00:5e:00:01:01"
#: Probes per second of the per-cycle prober: a 5 ms resolution on the outage is plenty for a
#: soak, and the host's two cores are shared.
PROBE_RATE = 200.0


# --- processes --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProcStats:
    """What one process (or a role's processes, added up) holds."""

    fds: int
    rss_kib: int
    threads: int
    procs: int = 1

    def __add__(self, other: ProcStats) -> ProcStats:
        return ProcStats(
            self.fds + other.fds,
            self.rss_kib + other.rss_kib,
            self.threads + other.threads,
            self.procs + other.procs,
        )


NO_PROCESS = ProcStats(0, 0, 0, 0)


def proc_stats(pid: int) -> ProcStats | None:
    """The open descriptors, VmRSS (KiB) and threads of ``pid``; None if it is gone."""
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    # A zombie has no VmRSS line: it holds no memory, only its slot.
    rss = int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0
    return ProcStats(fds, rss, int(fields["Threads"]))


def role_stats(pids: Iterable[int]) -> ProcStats:
    """The processes ``pids`` added up (those that are gone count for nothing)."""
    total = NO_PROCESS
    for pid in pids:
        stats = proc_stats(pid)
        if stats is not None:
            total = total + stats
    return total


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (not ``root`` itself), parents first.

    Every thread's ``children`` file is read: a child started from another thread of the
    runner (a timer, a reader) is listed under that thread only.
    """
    out: list[int] = []
    queue = [root]
    while queue:
        pid = queue.pop(0)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                children = [int(p) for p in f.read().split()]
                out.extend(children)
                queue.extend(children)
    return out


def stats_series(role: str, stats: ProcStats) -> dict[str, float]:
    """A role's figures as named series: ``<role>.fds``, ``.rss_kib``, ``.threads``,
    ``.procs``."""
    return {
        f"{role}.fds": stats.fds,
        f"{role}.rss_kib": stats.rss_kib,
        f"{role}.threads": stats.threads,
        f"{role}.procs": stats.procs,
    }


def runner_series() -> dict[str, float]:
    """The runner's own figures, and how many processes descend from it (a process that
    outlives its purpose, or a child never reaped, shows there).

    The resident set twice: ``runner.rss_kib`` as the cycle left it, and
    ``runner.trimmed.rss_kib`` after :func:`release_free_memory` (a full collection, then
    glibc's ``malloc_trim(0)``, which consolidates every malloc arena's free chunks and returns
    their free pages). The soak does this after every cycle, so the runner it measures is one
    whose allocator is tidied once a cycle: without it, the runner's resident set kept growing
    by free memory that glibc's per-thread arenas held in ever more fragmented pieces, not by
    live memory (docs/benchmarks.md, the soak). The raw figure is read before the tidying, so
    it still shows whatever one cycle leaves resident; live memory that grows shows in both.
    """
    me = proc_stats(os.getpid())
    assert me is not None
    out = stats_series("runner", me)
    del out["runner.procs"]
    out["runner.descendants"] = len(descendants(os.getpid()))
    release_free_memory()
    trimmed = proc_stats(os.getpid())
    assert trimmed is not None
    out["runner.trimmed.rss_kib"] = trimmed.rss_kib
    return out


def release_free_memory() -> None:
    """Empty CPython's type attribute cache, collect every generation, then ask glibc to
    return the free pages of every malloc arena to the kernel (``malloc_trim(0)``); without
    glibc, only the cache and the collection.

    The type attribute cache (4096 entries, each holding the name it was looked up by) is the
    only holder of the names pyroute2 builds for every netlink request (``f"get_{key}"``) and
    ``vrrp.config.model`` for every effective timer: fresh strings each call, so the cache
    fills with them over hundreds of cycles, bounded, and its filling showed as growth of a
    kilobyte a cycle in one lab (docs/benchmarks.md, the soak). Emptying it costs a lookup
    each on the next accesses, nothing else."""
    sys._clear_type_cache()
    gc.collect()
    if TRIM:
        linux.malloc_trim()


#: Whether :func:`release_free_memory` trims glibc's arenas (``soak_memory.py --no-trim``
#: turns it off, to measure without).
TRIM = True


# --- tables -----------------------------------------------------------------------------------


def nft_counts(ruleset: Mapping[str, Any]) -> dict[str, float]:
    """Rules and set elements per table of an ``nft -j list ruleset`` document, as series
    ``nft.<family>.<table>.rules`` and ``.elements``. Every table present is counted, so a
    table that appears (or stays behind) shows too."""
    out: dict[str, float] = {}
    for item in ruleset.get("nftables", []):
        for kind in ("table", "rule", "set"):
            obj = item.get(kind)
            if obj is None:
                continue
            name = obj["name"] if kind == "table" else obj["table"]
            key = f"nft.{obj['family']}.{name}"
            out.setdefault(f"{key}.rules", 0)
            out.setdefault(f"{key}.elements", 0)
            if kind == "rule":
                out[f"{key}.rules"] += 1
            elif kind == "set":
                out[f"{key}.elements"] += len(obj.get("elem", []))
    return out


def lab_tables(lab: Lab) -> dict[str, float]:
    """The fabric's nft tables, its bridge FDB (all entries, and the learned ones), and each
    node's neighbour table (``ip -j neigh``, every state, both families)."""
    out = nft_counts(json.loads(lab.fabric.run(["nft", "-j", "list", "ruleset"]).stdout))
    fdb = json.loads(lab.fabric.run(["bridge", "-j", "fdb", "show"]).stdout or "[]")
    out["fdb.entries"] = len(fdb)
    # The kernel's own entries (a port's address, multicast) are permanent; learned ones not.
    out["fdb.learned"] = sum(1 for e in fdb if "permanent" not in str(e.get("state", "")))
    for name, node in lab.nodes.items():
        neigh = json.loads(node.run(["ip", "-j", "neigh", "show"]).stdout or "[]")
        out[f"neigh.{name}"] = len(neigh)
    return out


def lab_processes(lab: Lab, routers: Mapping[str, Router]) -> dict[str, float]:
    """The figures of a lab's long-lived processes, by role.

    Roles: ``sdn`` (the controller), ``daemon.<node>`` (every process of the node's router:
    :meth:`~lab.routers.base.Router.daemon_pids`), ``keepers`` (the namespaces' keepers),
    ``sandbox`` (the PID namespace's init and whatever it holds: a process orphaned in the
    lab, a zombie among them, shows there) and ``other`` (every other process the runner
    started in the lab: the probe responders)."""
    out: dict[str, float] = {}
    controller = lab.fabric.sdn.controller
    known: set[int] = set()
    if controller is not None:
        out |= stats_series("sdn", role_stats([controller.proc.pid]))
        known.add(controller.proc.pid)
    for name, router in routers.items():
        pids = router.daemon_pids()
        known.update(pids)
        out |= stats_series(f"daemon.{name}", role_stats(pids))
    keepers = [lab.fabric.pid, *(node.pid for node in lab.nodes.values())]
    known.update(keepers)
    out |= stats_series("keepers", role_stats(keepers))
    init = lab.sandbox.init_pid
    assert init is not None, f"lab {lab.id} has no sandbox"
    sandbox = [init, *descendants(init)]
    known.update(sandbox)
    out |= stats_series("sandbox", role_stats(sandbox))
    # The runner starts every program of a lab itself, in the lab's PID namespace; another
    # lab's programs (the one-lab soak keeps one per implementation) are in theirs.
    pidns = _pidns(init)
    others = [p for p in descendants(os.getpid()) if p not in known and _pidns(p) == pidns]
    out |= stats_series("other", role_stats(others))
    return out


def _pidns(pid: int) -> int | None:
    """The inode of the PID namespace ``pid`` lives in (None once it is gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def lab_records(lab: Lab, routers: Mapping[str, Router]) -> dict[str, float]:
    """The size of what the lab keeps of the run for its report, by design, as series
    ``records.*`` (:data:`lab.soak_judge.RECORDS`): the SDN controller's events
    (``records.sdn.events``, :attr:`lab.sdn.client.ControllerClient.events`), the fault
    history (``records.faults``, :func:`lab.faults.history`), and per router its transitions
    (``records.<node>.transitions``, :attr:`Router.events`) and the bytes of its log it saved
    when its daemon stopped (``records.<node>.log_bytes``, :attr:`Router.saved_log_bytes`).
    They grow with every cycle of a lab that keeps them; :func:`forget_records` empties them."""
    out: dict[str, float] = {}
    controller = lab.fabric.sdn.controller
    if controller is not None:
        out["records.sdn.events"] = len(controller.events)
    out["records.faults"] = len(faults.history(lab))
    for name, router in routers.items():
        out[f"records.{name}.transitions"] = len(router.events)
        out[f"records.{name}.log_bytes"] = router.saved_log_bytes
    return out


def forget_records(lab: Lab, routers: Mapping[str, Router]) -> None:
    """Empty what :func:`lab_records` measures: the controller's events, the fault history,
    the routers' transitions (but each instance's latest, which its state is read from) and
    saved logs. A lab's report is made from them and a soak makes none; the one-lab soak's
    ``--forget-records`` calls this after each cycle's lab sample, so that what grows in the
    runner then is not the lab's record of the run (docs/benchmarks.md, the soak)."""
    controller = lab.fabric.sdn.controller
    if controller is not None:
        controller.forget_events()
    faults.forget_history(lab)
    for router in routers.values():
        router.forget_records()


def sample_lab(lab: Lab, routers: Mapping[str, Router]) -> dict[str, float]:
    """Every figure of a lab after a cycle: its processes by role, its tables and the size of
    its records of the run (:func:`lab_records`)."""
    return lab_processes(lab, routers) | lab_tables(lab) | lab_records(lab, routers)


# --- records ----------------------------------------------------------------------------------


def header(
    impls: Sequence[str], fault_mix: Sequence[str], *, forget_records: bool = False
) -> dict[str, Any]:
    """The first line of a soak's records: what a resumed run must agree with.
    ``forget_records`` (the one-lab labs' records emptied after each cycle,
    :func:`forget_records`) appears only when set, so older records files still resume."""
    head = {"type": "soak", "impls": list(impls), "faults": list(fault_mix), "profile": PROFILE}
    if forget_records:
        head["forget_records"] = True
    return head


def read_records(path: Path, *, repair: bool = False) -> tuple[dict[str, Any] | None, list[Sample]]:
    """The header and samples of a records file (``(None, [])`` when it is empty or absent).

    A last line without its newline is a write cut short by a kill: it is dropped, and with
    ``repair`` cut off the file, so appending goes on from a whole line. Any other line that
    does not parse raises :class:`UsageError` naming it.
    """
    if not path.exists():
        return None, []
    raw = path.read_bytes()
    keep = raw if raw.endswith(b"\n") or not raw else raw[: raw.rfind(b"\n") + 1]
    if repair and len(keep) != len(raw):
        with path.open("r+b") as f:
            f.truncate(len(keep))
    head: dict[str, Any] | None = None
    samples: list[Sample] = []
    for number, line in enumerate(keep.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.get("type") == "soak" and head is None:
                head = data
            elif data.get("type") == "sample":
                samples.append(Sample.from_json(data))
            else:
                raise ValueError(f"unexpected record type {data.get('type')!r}")
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path}:{number}: not a soak record ({exc})") from None
    if samples and head is None:
        raise UsageError(f"{path}: samples without a soak header line")
    return head, samples


class Records:
    """A soak's records file, open for appending; each sample is on disk before the next.

    The samples are not kept in memory: a soak samples the runner's own resident set, and a
    runner holding every record (about 4 KB each) would grow by its own bookkeeping, cycle by
    cycle. The file is the record; :meth:`samples` reads it back for the judgement.
    """

    def __init__(self, path: Path, head: Mapping[str, Any], *, resume: bool) -> None:
        """Open ``path``. A new file starts with ``head``. An existing one is refused unless
        ``resume``, and then must carry the same header (:class:`UsageError` otherwise)."""
        self.path = path
        old, samples = read_records(path, repair=resume)
        if old is not None or samples:
            if not resume:
                raise UsageError(
                    f"{path} already holds {len(samples)} soak cycle(s): pass --resume "
                    "to continue it, or choose another --out"
                )
            if old != dict(head):
                raise UsageError(
                    f"{path} holds a soak of {old}, not of {dict(head)}: --resume continues "
                    "the same soak only; choose another --out"
                )
        self._next = {mode: next_cycle(samples, mode) for mode in MODES}
        del samples
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        if old is None:
            self._write(dict(head))

    def next_cycle(self, mode: Mode) -> int:
        """The first cycle of ``mode`` not yet recorded: where a resumed run goes on."""
        return self._next[mode]

    def append(self, sample: Sample) -> None:
        """Record one cycle, flushed to disk before this returns."""
        self._write(sample.as_json())
        self._next[sample.mode] = max(self._next[sample.mode], sample.cycle + 1)

    def samples(self) -> list[Sample]:
        """Every sample of the file, read back from disk."""
        return read_records(self.path)[1]

    def _write(self, data: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(data) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file; safe twice."""
        self._file.close()


def next_cycle(samples: Iterable[Sample], mode: Mode) -> int:
    """The first cycle of ``mode`` not yet recorded: where a resumed run goes on."""
    return max((s.cycle + 1 for s in samples if s.mode == mode), default=0)


def plan(cycle: int, impls: Sequence[str], fault_mix: Sequence[str] = FAULTS) -> tuple[str, str]:
    """The (implementation, fault) of cycle number ``cycle``: implementations alternate, and
    each one meets every fault in turn, so a resumed run picks up the same sequence."""
    impl = impls[cycle % len(impls)]
    return impl, fault_mix[(cycle // len(impls)) % len(fault_mix)]


# --- the scenario -------------------------------------------------------------------------------


def soak_scenario() -> Scenario:
    """The short-timer scenario (advert 0.1 s) on :data:`PROFILE`, with multicast adverts
    from the VMAC, and the VMAC with the VIP and with the router's own address in both
    routers' allowed address pairs: the SDN controller runs and the fabric holds nft sets,
    so every layer the soak samples is there."""
    data: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    data["name"] = "soak"
    data["observer"] = OBSERVER
    data["steps"] = []
    vip = data["vips"][0]["address"]
    for net in data["networks"]:
        net["sdn"] = {"profile": PROFILE}
    for inst in data["instances"]:
        if inst["name"] in (MASTER, BACKUP):
            for port in inst["ports"]:
                # The router's own address from the VMAC too: its adverts leave from the VMAC.
                port["allowed_address_pairs"] = [
                    {"ip_address": ip, "mac_address": VMAC} for ip in (vip, *port["fixed_ips"])
                ]
    for router in data["routers"]:
        # Adverts from the VMAC, not the base MAC: after a partition heals, the master's next
        # advert teaches the bridge where the VMAC is again. From the base MAC, nothing the
        # master sends carries the VMAC, so the bridge kept it on the backup's port (learned
        # from the backup's GARPs during the split) and the VIP stayed unreachable until the
        # entry aged out.
        # (keepalived sends unicast adverts from the VMAC only with vmac_xmit_base: multicast.)
        router["vmac_xmit_base"] = False
        router["unicast"] = False
    return Scenario.model_validate(data)


# --- one cycle ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one failover gave: detection and outage in seconds."""

    detection: float
    outage: float | None

    def figures(self) -> dict[str, float | None]:
        """As :class:`Sample`'s keyword arguments."""
        return {"detection": self.detection, "outage": self.outage}


class SoakLab:
    """One lab of the soak scenario with its routers, its responders and the cycle.

    Use as a context manager; :meth:`cycle` runs one failover and returns its figures.
    """

    def __init__(self, impl: str, scenario: Scenario | None = None) -> None:
        """Prepare (do not build) a lab whose routers run ``impl``."""
        self.impl = impl
        self.lab = Lab(scenario or soak_scenario(), label=f"soak-{impl}-{os.urandom(3).hex()}")
        self.routers = Routers()

    def __enter__(self) -> SoakLab:
        self.lab.start()
        try:
            responders(self.lab, [MASTER, BACKUP])
            self.routers = start_routers(self.lab, list(self.lab.scenario.routers), self.impl)
            self._settled(None, None)
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Tear the lab down (routers stopped gracefully first)."""
        self.lab.close()

    # -- timers ---------------------------------------------------------------------------------

    def mdi(self, node: str) -> float:
        """The Master_Down_Interval of ``node``'s router, from its configured timers."""
        params = self.routers[node].params
        assert params is not None, "the soak's routers are rendered from parameters"
        return params.master_down_interval

    @property
    def advert_int(self) -> float:
        """The advert interval (both routers share it)."""
        params = self.routers[BACKUP].params
        assert params is not None
        return params.advert_int

    def takeover_deadline(self) -> float:
        """How long the backup may take to report MASTER after a fault: three of its
        Master_Down_Intervals, the margin :mod:`tests.lab.test_faults` allows too (its window
        is one MDI; the rest is the host's)."""
        return 3 * self.mdi(BACKUP)

    def settle_deadline(self) -> float:
        """How long the master may take to be MASTER again after the undo: its own
        Master_Down_Interval (a restarted daemon starts as backup) and ten adverts, as
        the fault tests' bring-up allows."""
        return self.mdi(MASTER) + 10 * self.advert_int

    def served_deadline(self) -> float:
        """How long the VIP may take to answer from the master again after the undo: the
        settling, and the master's second GARP batch (``garp_master_delay`` after its first):
        on a learning switch the backup, still holding the VIP for a moment, can answer the
        first batch from the shared VMAC, and only the second takes the VMAC back
        (:func:`lab.accounting.steady_deadline` allows the same)."""
        delay = router_timers(self.routers[MASTER]).garp_master_delay
        return self.settle_deadline() + delay

    # -- the cycle -------------------------------------------------------------------------------

    def _settled(self, master_since: float | None, backup_since: float | None) -> None:
        """Wait for ``MASTER`` to report MASTER and ``BACKUP`` BACKUP, at or after the given
        lab-clock times (None: its latest report counts)."""
        limit = self.settle_deadline()
        self.routers[MASTER].wait_state("MASTER", timeout=limit, since=master_since)
        self.routers[BACKUP].wait_state("BACKUP", timeout=limit, since=backup_since)

    def _steady(self, probes: ProbeRun) -> None:
        """Wait until the observer's probes were all served for three adverts: the runner's
        steadiness before a fault (docs/scenarios.md, "Steadiness before a fault")."""
        timers = [router_timers(r) for r in self.routers.values()]
        ints = [t.advert_int for t in timers]
        window = steady_window(ints)
        regarp = max((t.garp_master_delay for t in timers if t.use_vmac), default=0.0)

        def streak() -> tuple[float, str]:
            now = clock.now()
            return steady_for(probes.results().items, now, horizon=now - probes.linger)

        wait_until(
            streak,
            accept=lambda r: r[0] >= window,
            timeout=steady_deadline(window, ints, regarp),
            what=f"the VIP to answer every probe for {window * 1000:.0f} ms before the fault",
        )

    def cycle(self, fault: str) -> Outcome:
        """One failover: steady service, ``fault`` on the master, the backup's takeover, the
        undo, the pair settled again. Returns the detection and the longest outage.

        The prober runs for this cycle only: it records every probe, so one that ran for
        the whole soak would be the runner's own growing record.
        """
        vip = str(self.lab.scenario.vips[0].address)
        probes = ProbeRun(self.lab.node(OBSERVER), vip, rate=PROBE_RATE)
        probes.start()
        try:
            self._steady(probes)
            at = self._inject(fault)
            seen = self.routers[BACKUP].wait_state(
                "MASTER", timeout=self.takeover_deadline(), since=at
            )
            undone = self._undo(fault)
            # Only a restarted master reports MASTER anew: a frozen or cut-off one never left
            # MASTER in its own eyes. The backup says BACKUP after every undo.
            self._settled(undone if fault in ("stop", "crash") else None, undone)
            probes.wait_served(timeout=self.served_deadline(), by=MASTER, since=undone)
        finally:
            results = probes.stop()
        return Outcome(seen.at - at, max((o.duration for o in results.outages()), default=None))

    def _inject(self, fault: str) -> float:
        if fault == "link-flap":
            # Down long enough for the backup to take over, as the fault tests flap it.
            return faults.link_flap(self.lab, MASTER, 2 * self.mdi(BACKUP))
        if fault == "partition":
            return faults.partition(self.lab, MASTER, BACKUP)
        return faults.apply(self.lab, fault, MASTER, routers=self.routers)

    def _undo(self, fault: str) -> float:
        """Undo ``fault``; return the lab-clock time the undo took effect."""
        if fault in ("stop", "crash"):
            return self.routers[MASTER].start()
        if fault == "host-down":
            return faults.host_up(self.lab, MASTER)
        if fault == "freeze":
            return faults.thaw(self.lab, MASTER)
        if fault == "partition":
            return faults.heal(self.lab, MASTER, BACKUP)
        if fault == "link-flap":
            faults.wait_link_up(self.lab, timeout=4 * self.mdi(BACKUP))
            return next(r.at for r in reversed(faults.history(self.lab)) if r.kind == "link-up")
        raise UsageError(f"the soak has no undo for fault {fault!r}; it mixes {', '.join(FAULTS)}")

    def sample(self) -> dict[str, float]:
        """The lab's figures now (:func:`sample_lab`)."""
        self.lab.fabric.check()
        return sample_lab(self.lab, self.routers)

    def forget_records(self) -> None:
        """Empty the lab's records of the run (:func:`forget_records`)."""
        forget_records(self.lab, self.routers)


def one_lab_cycles(
    impls: Sequence[str],
    cycles: Iterable[int],
    fault_mix: Sequence[str] = FAULTS,
    *,
    forget_records: bool = False,
    measure: Callable[[int, SoakLab], Mapping[str, float]] | None = None,
) -> Iterator[Sample]:
    """The one-lab soak: a lab per implementation, built once and kept for every cycle;
    cycle ``n`` runs in the lab of :func:`plan`'s implementation. Yields a :class:`Sample`
    per cycle as it ends; the labs are torn down when the generator ends or is closed.

    With ``forget_records``, the lab's records of the run (:func:`lab_records`, sampled with
    the lab) are emptied after that sample and before the runner's (:func:`forget_records`):
    the runner is then measured without what the lab keeps for a report it never makes.
    ``measure(n, lab)`` adds series of its own, taken from cycle ``n``'s lab right after its sample
    (``benchmarks/soak_memory.py --daemon`` reads a daemon's memory map there)."""
    with contextlib.ExitStack() as stack:
        labs = {impl: stack.enter_context(SoakLab(impl)) for impl in dict.fromkeys(impls)}
        for n in cycles:
            impl, fault = plan(n, impls, fault_mix)
            began = clock.now()
            outcome = labs[impl].cycle(fault)
            resources = labs[impl].sample()
            if measure is not None:
                resources |= measure(n, labs[impl])
            if forget_records:
                labs[impl].forget_records()
            resources |= runner_series()
            seconds = clock.now() - began
            yield Sample(
                n, "one-lab", impl, fault, seconds, **outcome.figures(), resources=resources
            )


def fresh_cycle(n: int, impls: Sequence[str], fault_mix: Sequence[str] = FAULTS) -> Sample:
    """One fresh-lab cycle: build a lab, start its routers, one failover, sample the lab,
    tear it down, then sample the runner (what a finished lab leaves in it shows there)."""
    impl, fault = plan(n, impls, fault_mix)
    began = clock.now()
    with SoakLab(impl) as soak:
        outcome = soak.cycle(fault)
        resources = soak.sample()
        build = soak.lab.build_seconds
    # The kernel takes the sandbox's processes once its init is killed, a moment after the
    # teardown returns; the runner is sampled after that.
    wait_until(
        lambda: not soak.lab.running,
        timeout=TEARDOWN_BASE,
        what=f"the sandbox of lab {soak.lab.id} to end after its teardown",
    )
    resources |= runner_series()
    seconds = clock.now() - began
    figures = outcome.figures()
    return Sample(
        n, "fresh-labs", impl, fault, seconds, **figures, build=build, resources=resources
    )


def run_cycles(
    mode: Mode,
    impls: Sequence[str],
    cycles: Iterable[int],
    fault_mix: Sequence[str] = FAULTS,
    *,
    forget_records: bool = False,
) -> Iterator[Sample]:
    """The cycles ``cycles`` of ``mode``, a :class:`Sample` each as it ends (``forget_records``:
    see :func:`one_lab_cycles`; a fresh lab's records go with the lab)."""
    if mode == "one-lab":
        yield from one_lab_cycles(impls, cycles, fault_mix, forget_records=forget_records)
    else:
        for n in cycles:
            yield fresh_cycle(n, impls, fault_mix)


def check_impls(impls: Sequence[str]) -> None:
    """Refuse an implementation the soak's scenario cannot run (:class:`UsageError`)."""
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        raise UsageError(
            f"the soak runs {' and '.join(IMPLS)}, not {', '.join(unknown)} (lab.soak.IMPLS)"
        )
