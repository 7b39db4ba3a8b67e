"""The bundled VRRP daemon: one event loop driving a :class:`vrrp.state.StateMachine` per
``vrrp_instance`` on the real clock.

The loop is single-threaded and built on ``select()``: the sockets, a self-pipe for signals
and the control socket are the descriptors; the timers are a heap of deadlines taken from
each machine's :meth:`~vrrp.state.StateMachine.next_deadline`. ``select()`` takes a timeout in
microseconds (epoll's is milliseconds), and the process asks the kernel for a 1 µs timer
slack, so that a wake-up lands within tens of microseconds of its deadline. A Master's
timer is fired "as of" the last point of its grid (deadline + k·interval) before now, so lateness
(a wake-up, a busy moment) never accumulates into the advert period; instances sharing an interval
are started on spread phases (:func:`vrrp.instance.spread_phases`) so that their adverts do not
come in bursts. The target is 255 VRIDs at 100 ms with an interval jitter p99 of at most 1 ms.

What the daemon does with the machine's actions, in the order returned:

* ``SendAdvert`` — encode (cached per priority/interval/destination) and send to the group or
  to each ``unicast_peer``, from ``unicast_src_ip`` or the interface's primary address.
* ``AddVips`` / ``RemoveVips`` — rtnetlink (:mod:`vrrp.rtnl`), on the VMAC with ``use_vmac``,
  else on the interface.
* ``SendGratuitous`` — ``garp_master_repeat`` GARPs / NAs per VIP now, another batch after
  ``garp_master_delay``, then ``garp_master_refresh_repeat`` every ``garp_master_refresh``.
* ``Become*`` — notify: the ``vrrp_notify_fifo`` line exactly as keepalived writes it
  (``INSTANCE "name" MASTER 200``), the ``notify_<state>`` script, and the generic ``notify``
  script with ``INSTANCE name STATE priority`` appended.

Signals: SIGTERM/SIGINT shut down (priority-0 advert from a Master, VIPs and VMACs removed,
``STOP`` notified, exit 0); SIGHUP reloads the configuration without a state flap; SIGUSR1
writes a tracemalloc snapshot beside the control socket when the daemon runs with
``PYTHONTRACEMALLOC`` (keepalived's SIGUSR1 dumps its data;
:func:`vrrp.control.dump_traced_memory`).

:class:`Daemon` owns the loop, the timer heap (machine timers and deferred GARP batches), the
instances' life (start, stop, reload, FAULT) and the sockets; the pieces it uses live beside it:

* :mod:`vrrp.instance` — the per-instance record, its machine's parameters, the start phases;
* :mod:`vrrp.receive` — which instance a datagram is for, and counting the ones none takes;
* :mod:`vrrp.transmit` — encoding and sending adverts, building and sending GARPs / NAs;
* :mod:`vrrp.tracking` — ``track_interface``, ``track_bfd``, ``track_script`` and
  ``track_file``: when an instance is in FAULT or waits for its scripts, its priority, and when
  a BFD session ends its Master_Down_Timer (``bfd_takeover``);
* :mod:`vrrp.bfd.endpoint` — the BFD sessions of the ``bfd_instance`` blocks and their sockets:
  their deadlines share the timer heap, their receive sockets the ``select()``;
* :mod:`vrrp.checks` — the ``vrrp_script`` runs: their deadlines share the timer heap, the
  pidfds of the runs in progress the ``select()``;
* :mod:`vrrp.watch` — the ``track_file`` numbers, read again on inotify's events;
* :mod:`vrrp.sync_group` — ``vrrp_sync_group``: when a member may take over, which members a
  member's transition takes along, and the group's state;
* :mod:`vrrp.proc_scan` and :mod:`vrrp.track_process` — ``track_process``: the /proc scan
  every 0.1 s and the matching and quorum rules (glue: :class:`vrrp.daemon_process.ProcessGlue`);
* :mod:`vrrp.notify` — the notify FIFO and scripts;
* :mod:`vrrp.control` — the control socket, the status JSON and :func:`query_status`;
* :mod:`vrrp.process` — daemonizing, logging, scheduling priority and timer slack.

At about 950 lines the module is over the project's ~800: every event source the one loop
multiplexes (sockets, links, BFD, scripts, files, signals, the control socket) meets the instances
here, and the glue for each is a few lines that need the loop's heap and the instances both. The
sync groups' glue, which moves several instances at once, is the mixin
:class:`vrrp.daemon_sync.SyncGroupGlue`, and their rules are :mod:`vrrp.sync_group`; the
tracked processes' glue is the mixin :class:`vrrp.daemon_process.ProcessGlue`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import heapq
import itertools
import logging
import os
import select
import signal
import time
from ipaddress import ip_interface
from typing import Any

from vrrp import config as config_mod
from vrrp import spec as spec_mod
from vrrp.bfd.endpoint import BfdEndpoint, BfdEvent
from vrrp.checks import ScriptChecks, ScriptEvent
from vrrp.control import (
    DEFAULT_CONTROL,
    ControlServer,
    LatenessRing,
    dump_traced_memory,
    instance_status,
    lateness_ms,
    memory_status,
    query_status,
)
from vrrp.daemon_process import ProcessGlue
from vrrp.daemon_sync import SyncGroupGlue
from vrrp.instance import Instance, params_for, spread_phases
from vrrp.netio import (
    AcceptMode,
    FrameSender,
    LinkMonitor,
    Links,
    Received,
    RxSocket,
    TxSocket,
    pid_file_write,
)
from vrrp.notify import Notifier, notify_line
from vrrp.packet import (
    AdvertError,
    Counters,
    IPAddress,
)
from vrrp.proc_scan import ProcessWatch
from vrrp.process import apply_scheduling, daemonize, set_timer_slack, setup_logging
from vrrp.receive import accept
from vrrp.spec import DaemonSpec, InstanceSpec, Rfc9568
from vrrp.state import (
    Action,
    AddVips,
    BecomeBackup,
    BecomeInitialize,
    BecomeMaster,
    DiscardAdvert,
    DiscardReason,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    State,
    StateMachine,
)
from vrrp.sync_group import SyncGroups
from vrrp.tracking import bfd_takeover_due, fault_reason, tracked_priority
from vrrp.transmit import garp_mac, send_advert, send_garps, send_lower_prio_garps
from vrrp.watch import FileWatch

# With the names that moved to vrrp.control, .instance, .notify and .process: code that
# imports them from here (the CLI, tests) keeps working.
__all__ = [
    "DEFAULT_CONTROL",
    "DEFAULT_PIDFILE",
    "Daemon",
    "daemonize",
    "notify_line",
    "params_for",
    "query_status",
    "setup_logging",
    "spread_phases",
]

log = logging.getLogger("vrrp")

DEFAULT_PIDFILE = "/run/vrrp/vrrp.pid"
"""Where the pid is written unless ``-p`` says otherwise (the node's private /run in the lab)."""

_MAX_DRAIN = 256  # datagrams read per readable socket per loop turn
#: Deferred GARP batches run only when the next timer is at least this far away (seconds).
_GARP_SLACK = 0.0002  # one instance's batch takes ~50 µs; 255 spread VRIDs leave 390 µs


class Daemon(SyncGroupGlue, ProcessGlue):
    """The daemon. ``Daemon(path).run()`` returns the exit code."""

    def __init__(
        self,
        config_path: str,
        *,
        pidfiles: list[str] | None = None,
        control: str | None = DEFAULT_CONTROL,
        rfc9568: Rfc9568 = Rfc9568.NONE,
    ) -> None:
        """Prepare (nothing is opened until :meth:`run`)."""
        self.config_path = config_path
        self.pidfiles = [DEFAULT_PIDFILE] if pidfiles is None else list(pidfiles)
        self.control_path = control
        self.rfc9568 = rfc9568
        self.spec: DaemonSpec | None = None
        self.instances: dict[str, Instance] = {}
        self.rx_sockets: dict[tuple[str, int], RxSocket] = {}
        self.rx_counters: dict[tuple[str, int], Counters] = {}
        self.tx_sockets: dict[tuple[str, int], TxSocket] = {}
        self.links: Links | None = None
        self.link_monitor: LinkMonitor | None = None
        #: Whether each interface we care about is up and running, kept by link events.
        self.link_up: dict[str, bool] = {}
        self.frames: FrameSender | None = None
        self.accept_mode = AcceptMode()
        self.notifier = Notifier()
        self.bfd = BfdEndpoint()
        self.checks = ScriptChecks()
        self.files = FileWatch()
        self.processes = ProcessWatch()
        self.sync = SyncGroups()
        #: True while a sync group's members are being moved together: their own transitions
        #: then take no other member along, and the group's state is settled once at the end.
        self._syncing = False
        self.control: ControlServer | None = None
        self.started = time.time()
        self.reloads = 0
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._garp_due: collections.deque[tuple[str, int]] = collections.deque()
        #: How late the last timers fired (seconds): the daemon's own view of its jitter.
        self._lateness = LatenessRing()
        self._seq = itertools.count()
        self._wake_r = -1
        self._wake_w = -1
        self._pending_signals: list[int] = []
        self._stopping = False

    # -- setup --------------------------------------------------------------------------------

    def load(self) -> DaemonSpec:
        """Parse the configuration file into a :class:`DaemonSpec` (raises ConfigError)."""
        cfg = config_mod.load(self.config_path)
        spec = spec_mod.build(cfg, rfc9568=self.rfc9568)
        for warning in spec.warnings:
            log.warning("config: %s", warning)
        return spec

    def run(self) -> int:
        """Start every instance and serve until a terminating signal; the exit code."""
        try:
            self.spec = self.load()
        except (config_mod.ConfigError, OSError) as exc:
            log.error("%s", exc)
            return 1
        set_timer_slack(1000)
        apply_scheduling(self.spec)
        self.sync = SyncGroups(self.spec.sync_groups)
        self._install_signals()
        try:
            self.links = Links()
            self.link_monitor = LinkMonitor()
            self.frames = FrameSender()
            for pidfile in self.pidfiles:
                pid_file_write(pidfile)
            self.notifier.open_fifo(self.spec.notify_fifo)
            if self.control_path:
                self.control = ControlServer(self.control_path)
            # Everything long-lived (modules, pyroute2, sockets) exists now: freezing it keeps
            # the cyclic GC from walking it on every collection, which would show up as timer
            # jitter. Done before the instances start: a full collection takes tens of ms, and
            # an instance that has reported BACKUP must already be listening.
            gc.collect()
            gc.freeze()
            # BFD first: an instance with an unweighted track_bfd starts in FAULT until Up.
            now = time.monotonic()
            self._on_bfd(self.bfd.configure(self.spec.bfds, now), now)
            # The scripts' first runs start with the daemon; an instance waits for its
            # unweighted ones to report.
            self.checks.configure(self.spec.scripts, now)
            self._on_checks([], now)
            self.files.configure(self.spec.files)
            # Counted before the instances start: an unweighted one without quorum faults.
            self._on_processes(self.processes.configure(self.spec.processes, now), now)
            # Interfaces and sockets first, then the machines: the netlink work of hundreds of
            # instances must not stand between an instance's BACKUP report and the loop.
            staged = []
            for ispec, offset in spread_phases(self.spec.instances):
                try:
                    staged.append((self._start_instance(ispec, 0.0, run=False), offset))
                except OSError as exc:
                    # One instance on a missing interface must not take the others down;
                    # keepalived also drops such an instance and runs the rest.
                    log.error("(%s) cannot start: %s", ispec.name, exc)
            if self.spec.instances and not staged:
                raise RuntimeError("no instance could start")
            now = time.monotonic()
            for inst, offset in staged:
                self._run_instance(inst, now + offset)
            self._settle_groups()
            log.info("started %d instance(s) from %s", len(self.instances), self.config_path)
            self._loop()
        except Exception:
            log.exception("fatal error")
            self._shutdown()
            return 1
        self._shutdown()
        return 0

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Handlers only record the signal; the loop acts on it between two events.
        self._pending_signals.append(signum)

    # -- instances ----------------------------------------------------------------------------

    def _rx(self, ifname: str, family: int) -> RxSocket:
        key = (ifname, family)
        if key not in self.rx_sockets:
            assert self.links is not None
            idx = self.links.index(ifname)
            if idx is None:
                raise OSError(errno.ENODEV, f"interface {ifname} does not exist")
            self.rx_sockets[key] = RxSocket(ifname, idx, family)
            self.rx_counters[key] = Counters()
        return self.rx_sockets[key]

    def _tx(self, ifname: str, family: int) -> TxSocket:
        key = (ifname, family)
        if key not in self.tx_sockets:
            assert self.links is not None
            idx = self.links.index(ifname)
            if idx is None:
                raise OSError(errno.ENODEV, f"interface {ifname} does not exist")
            self.tx_sockets[key] = TxSocket(ifname, idx, family)
        return self.tx_sockets[key]

    def _primary_ip(self, ispec: InstanceSpec) -> IPAddress:
        assert self.links is not None
        if ispec.unicast_src is not None:
            return ispec.unicast_src
        found = self.links.primary_address(ispec.interface, ispec.family)
        if found is None:
            raise OSError(
                errno.EADDRNOTAVAIL,
                f"{ispec.name}: interface {ispec.interface} has no IPv{ispec.family} "
                "address to send adverts from",
            )
        return found

    def _start_instance(self, ispec: InstanceSpec, now: float, *, run: bool = True) -> Instance:
        """Set up an instance (VMAC, sockets, machine); with ``run``, start its machine too."""
        assert self.links is not None
        created = False
        if ispec.vmac_name:
            created = self.links.create_vmac(
                ispec.vmac_name, ispec.interface, ispec.vmac_address, ispec.family
            )
        # A crashed predecessor may have left the VIPs behind; a Backup must not hold them.
        for vip in ispec.vips:
            self.links.remove_address(vip.dev, vip.address)
        primary = self._primary_ip(ispec)
        if ispec.family == 6 and ispec.tx_interface != ispec.interface:
            # An IPv6 advert leaves the VMAC from our link-local address, which the kernel only
            # accepts as a source on an interface that holds it: like keepalived, put the base's
            # link-local on the VMAC too (the VMAC itself generates none, RFC 5798 §7.4).
            self.links.add_address(ispec.tx_interface, ip_interface(f"{primary}/64"))
        rx = self._rx(ispec.rx_interface, ispec.family)
        if not ispec.is_unicast:
            rx.join()
        inst = Instance(
            spec=ispec,
            machine=StateMachine(params_for(ispec, primary, self._priority(ispec))),
            primary_ip=primary,
            rx=rx,
            tx=self._tx(ispec.tx_interface, ispec.family),
            created_vmac=created,
        )
        # Looked up once: GARP batches of hundreds of instances must not cost netlink trips.
        inst.garp_mac = garp_mac(inst, self.links)
        self.instances[ispec.name] = inst
        log.info(
            "(%s) VRID %d on %s, priority %d, v%d%s, %s",
            ispec.name,
            ispec.vrid,
            ispec.interface,
            ispec.priority,
            ispec.version,
            " rfc9568" if ispec.rfc9568 else "",
            "unicast to " + ",".join(map(str, ispec.peers)) if ispec.peers else "multicast",
        )
        if run:
            self._run_instance(inst, now)
        return inst

    def _run_instance(self, inst: Instance, now: float) -> None:
        """The Startup event (or FAULT, when its interface is down or its tracking says so;
        or nothing yet, while an unweighted tracked script has not reported)."""
        inst.waiting = self._pending(inst.spec)
        if inst.waiting:
            log.info("(%s) waiting for script(s) %s to report", inst.name, ", ".join(inst.waiting))
            return
        reason = self._fault_reason(inst.spec)
        if reason:
            # keepalived starts an instance whose interface is down in FAULT, and says so.
            inst.fault = True
            self._announce(inst, "FAULT", f"{reason} at start")
        else:
            self._execute(inst, inst.machine.startup(now), now)

    def _stop_instance(self, inst: Instance, now: float) -> None:
        if inst.fault:
            self._announce(inst, "STOP", "shutdown")  # the machine is already down
        self._execute(inst, inst.machine.shutdown(now), now)
        inst.timer_gen += 1
        inst.garp_gen += 1
        if not inst.spec.is_unicast:
            inst.rx.leave()
        del self.instances[inst.name]
        # Sockets no instance uses any more go now: one bound to a deleted VMAC is dead.
        rx_used = {(i.spec.rx_interface, i.spec.family) for i in self.instances.values()}
        tx_used = {(i.spec.tx_interface, i.spec.family) for i in self.instances.values()}
        for key in [k for k in self.rx_sockets if k not in rx_used]:
            self.rx_sockets.pop(key).close()
        for key in [k for k in self.tx_sockets if k not in tx_used]:
            self.tx_sockets.pop(key).close()
        if inst.spec.vmac_name and self.links is not None:
            self.links.delete_vmac(inst.spec.vmac_name, inst.spec.interface)

    # -- actions ------------------------------------------------------------------------------

    def _execute(self, inst: Instance, actions: list[Action], now: float) -> None:
        became: BecomeMaster | BecomeBackup | None = None
        for action in actions:
            if isinstance(action, SendAdvert):
                send_advert(inst, action.priority, action.adver_int_cs)
            elif isinstance(action, AddVips):
                self._vips(inst, action.vips, add=True)
            elif isinstance(action, RemoveVips):
                self._vips(inst, action.vips, add=False)
                inst.garp_gen += 1  # no more GARPs for addresses we no longer hold
            elif isinstance(action, SendGratuitous):
                assert self.frames is not None
                send_garps(self.frames, inst, action.vips, inst.spec.garp.repeat)
                if inst.spec.garp.delay > 0:
                    self._schedule_garp(inst, now + inst.spec.garp.delay, inst.spec.garp.repeat)
                elif inst.spec.garp.refresh > 0:
                    garp = inst.spec.garp
                    self._schedule_garp(inst, now + garp.refresh, garp.refresh_repeat)
            elif isinstance(action, BecomeMaster | BecomeBackup | BecomeInitialize):
                self._transition(inst, action)
                if isinstance(action, BecomeMaster | BecomeBackup):
                    became = action
            elif isinstance(action, DiscardAdvert):
                key = str(action.reason)
                inst.discards[key] = inst.discards.get(key, 0) + 1
                if action.reason is DiscardReason.LOSING_ADVERT and send_lower_prio_garps(
                    self.frames, inst
                ):  # and again later, as keepalived does (garp_lower_prio_delay)
                    garp = inst.spec.garp
                    self._schedule_garp(inst, now + garp.lower_prio_delay, garp.lower_prio_repeat)
        self._schedule_machine(inst)
        if became is not None and inst.spec.sync_group and not self._syncing:
            self._sync_transition(inst, became, now)

    def _vips(self, inst: Instance, vips: tuple[str, ...], *, add: bool) -> None:
        assert self.links is not None
        wanted = set(vips)
        # On a reload the spec is already the new one: a VIP being withdrawn is in the old.
        for vip in (*inst.spec.vips, *inst.retired_vips):
            if str(vip.address.ip) not in wanted:
                continue
            if add:
                self.links.add_address(vip.dev, vip.address)
            else:
                self.links.remove_address(vip.dev, vip.address)

    def _transition(
        self, inst: Instance, action: BecomeMaster | BecomeBackup | BecomeInitialize
    ) -> None:
        state = action.state
        if state is State.INITIALIZE:
            word = "FAULT" if inst.entering_fault else "STOP"
        else:
            word = str(state)
        reason = inst.entering_fault or str(action.reason)
        self._announce(inst, word, reason)

    def _announce(self, inst: Instance, word: str, reason: str) -> None:
        inst.transitions += 1
        inst.since = time.time()
        log.info("(%s) Entering %s STATE (%s)", inst.name, word, reason)
        self._sync_accept_mode()
        self.notifier.notify(inst, word)
        if inst.spec.sync_group and not self._syncing:
            self._settle_groups()

    def _sync_accept_mode(self) -> None:
        """Drop traffic to the VIPs of every Master that may not accept it (row A03)."""
        blocked = [
            vip.address.ip
            for inst in self.instances.values()
            if inst.machine.state is State.MASTER and not inst.machine.accepts_vip_traffic
            for vip in inst.spec.vips
        ]
        self.accept_mode.update(blocked)

    # -- interface tracking ------------------------------------------------------------------

    def _priority(self, ispec: InstanceSpec) -> int:
        return tracked_priority(ispec, *self._tracker_states())

    def _own_fault(self, ispec: InstanceSpec) -> str | None:
        return fault_reason(ispec, *self._tracker_states())

    def _on_checks(self, events: list[ScriptEvent], now: float) -> None:
        """Put changed script deadlines on the heap, then apply the scripts' new states."""
        for name, deadline, gen in self.checks.pending():
            heapq.heappush(self._heap, (deadline, next(self._seq), "s", name, gen))
        for event in events:
            for inst in list(self.instances.values()):
                if any(t.name == event.name for t in inst.spec.track_scripts):
                    self._reassess(inst, now)

    def _on_files(self, changed: list[str], now: float) -> None:
        """Apply the tracked files whose number changed."""
        for inst in list(self.instances.values()):
            if any(t.name in changed for t in inst.spec.track_files):
                self._reassess(inst, now)

    def _on_bfd(self, events: list[BfdEvent], now: float) -> None:
        """Put changed session deadlines on the heap, then apply the sessions' events."""
        for name, deadline, gen in self.bfd.pending():
            heapq.heappush(self._heap, (deadline, next(self._seq), "b", name, gen))
        for event in events:
            if not event.notify or not self.bfd.notifies_vrrp(event.name):
                continue
            state = "Up" if event.up else "Down"
            delivered = round((time.monotonic() - event.at) * 1e6)
            # keepalived's VRRP process logs these two (with -D), in these words.
            log.info(
                "Received BFD event: instance %s is in state %s (delivered in %d usec)",
                *(event.name, state, delivered),
            )
            for inst in list(self.instances.values()):
                if not any(t.name == event.name for t in inst.spec.track_bfds):
                    continue
                log.info(
                    "VRRP_Instance(%s) Tracked BFD instance %s is %s",
                    *(inst.name, event.name, state.upper()),
                )
                neighbor = self.bfd.neighbor(event.name)
                if (
                    not event.up
                    and not inst.fault
                    and bfd_takeover_due(inst.spec, event.name, neighbor, inst.last_master)
                    and self._may_take_over(inst, now)
                ):
                    # Ours (bfd_takeover): the session to the master is down, so is the master.
                    self._execute(inst, inst.machine.master_down(now), now)
                self._reassess(inst, now)

    def _is_up(self, ifname: str) -> bool:
        if ifname not in self.link_up:
            assert self.links is not None
            self.link_up[ifname] = self.links.is_up(ifname)
        return self.link_up[ifname]

    def _on_link_events(self, now: float) -> None:
        assert self.link_monitor is not None
        changed = False
        for ifname, up in self.link_monitor.read():
            if self.link_up.get(ifname) != up:
                log.info("interface %s is %s", ifname, "up" if up else "down")
                self.link_up[ifname] = up
                changed = True
        if not changed:
            return
        if self.links is not None:
            self.links.forget()  # an interface that went may come back with another index
        for inst in list(self.instances.values()):
            self._reassess(inst, now)

    def _reassess_one(self, inst: Instance, now: float) -> None:
        """Apply the state of what the instance tracks (interfaces, BFD sessions, scripts,
        files, its sync group's members) to it: start it once its scripts have reported, FAULT
        in or out, or a new priority."""
        if inst.waiting:
            if not self._pending(inst.spec):
                self._run_instance(inst, now)
            return
        reason = self._fault_reason(inst.spec)
        faulted = reason is not None
        if reason and not inst.fault:
            inst.fault, inst.entering_fault = True, reason
            try:
                # As keepalived: a Master leaving for FAULT sends priority 0 and drops the VIPs.
                actions = inst.machine.shutdown(now)
                self._execute(inst, actions, now)
            finally:
                inst.entering_fault = ""
            if not any(isinstance(a, BecomeInitialize) for a in actions):
                self._announce(inst, "FAULT", reason)
            return
        priority = self._priority(inst.spec)
        if priority != inst.machine.priority:
            self._execute(inst, inst.machine.set_priority(now, priority), now)
            inst.advert_cache.clear()
        if not faulted and inst.fault:
            inst.fault = False
            self._execute(inst, inst.machine.startup(now), now)

    # -- timers -------------------------------------------------------------------------------

    def _schedule_machine(self, inst: Instance) -> None:
        deadline = inst.machine.next_deadline()
        if deadline == inst.scheduled:
            return  # already in the heap: most received adverts leave the timer unchanged
        inst.scheduled = deadline
        inst.timer_gen += 1
        if deadline is not None and inst.name in self.instances:
            heapq.heappush(self._heap, (deadline, next(self._seq), "m", inst.name, inst.timer_gen))

    def _schedule_garp(self, inst: Instance, when: float, repeat: int) -> None:
        """The instance's next GARP batch, ``repeat`` per VIP at ``when``, in place of any
        batch scheduled before (refreshes resume after it)."""
        inst.garp_gen += 1
        inst.garp_next_repeat = repeat
        heapq.heappush(self._heap, (when, next(self._seq), "g", inst.name, inst.garp_gen))

    def _fire_timers(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _seq, kind, name, gen = heapq.heappop(heap)
            if kind == "b":
                if self.bfd.is_current(name, gen):
                    self._on_bfd(self.bfd.tick(name, now), now)
                continue
            if kind == "s":
                if self.checks.is_current(name, gen):
                    self._on_checks(self.checks.tick(name, now), now)
                continue
            if kind == "p":
                if gen == self.processes.gen:
                    self._on_processes(self.processes.tick(now), now)
                continue
            inst = self.instances.get(name)
            if inst is None:
                continue
            if kind == "m":
                if gen != inst.timer_gen:
                    continue
                inst.scheduled = None
                # On the grid when only slightly late: the next period counts from the
                # deadline, so wake-up latency does not accumulate into the interval.
                late = now - deadline
                self._lateness.append(late)
                # Fire as of the last point of the timer's grid (deadline + k·interval) not after
                # now: the next deadline is then at most one interval ahead (no catch-up burst
                # after a stall), and the phase of the period is kept whatever the lateness, so
                # wake-up latency and busy moments never accumulate into the advert interval.
                interval = inst.machine.advertisement_interval
                at = deadline + (late // interval) * interval if late > 0 else deadline
                if (
                    inst.spec.sync_group
                    and inst.machine.state is State.BACKUP
                    and not self._may_take_over(inst, at)
                ):
                    continue
                self._execute(inst, inst.machine.tick(at), now)
            elif gen == inst.garp_gen and inst.machine.state is State.MASTER:
                # Delayed and refresh GARPs are not urgent: queued, and sent when no advert is
                # due within _GARP_SLACK, so that a batch for hundreds of instances (they all
                # became master together) never delays an advert.
                self._garp_due.append((name, gen))

    def _run_deferred(self) -> None:
        """Send queued GARP batches, one instance at a time, while no advert is about due."""
        while self._garp_due:
            slack = self._next_timeout(time.monotonic())
            if slack is not None and slack < _GARP_SLACK:
                return
            name, gen = self._garp_due.popleft()
            inst = self.instances.get(name)
            if inst is None or gen != inst.garp_gen or inst.machine.state is not State.MASTER:
                continue
            garp = inst.spec.garp
            assert self.frames is not None
            send_garps(self.frames, inst, inst.machine.params.vips, inst.garp_next_repeat)
            if garp.refresh > 0:
                self._schedule_garp(inst, time.monotonic() + garp.refresh, garp.refresh_repeat)

    def _next_timeout(self, now: float) -> float | None:
        heap = self._heap
        # Drop stale entries at the top so they do not cause useless wake-ups.
        while heap:
            deadline, _seq, kind, name, gen = heap[0]
            inst = self.instances.get(name)
            if kind == "b":
                stale = not self.bfd.is_current(name, gen)
            elif kind == "s":
                stale = not self.checks.is_current(name, gen)
            elif kind == "p":
                stale = gen != self.processes.gen
            else:
                stale = inst is None or gen != (inst.timer_gen if kind == "m" else inst.garp_gen)
            if not stale:
                return max(0.0, deadline - now)
            heapq.heappop(heap)
        return None

    # -- receive ------------------------------------------------------------------------------

    def _on_readable(self, key: tuple[str, int]) -> None:
        rx = self.rx_sockets[key]
        counters = self.rx_counters[key]
        for _ in range(_MAX_DRAIN):
            try:
                received = rx.receive()
            except AdvertError as err:
                # Not even an IPv4 datagram we can split: counted, dropped.
                counters.received += 1
                counters.count(err.reason)
                continue
            except OSError as exc:
                log.warning("receive on %s failed: %s", rx.ifname, exc)
                return
            if received is None:
                return
            # Each datagram is stamped as it is read, not when the loop woke: one that arrived
            # while earlier ones were handled would otherwise start its timers in the past, and
            # a priority 0 behind an advert would end Skew_Time early (F02: 2 ms seen).
            try:
                self._dispatch(key, received, counters, time.monotonic())
            except Exception:  # the network must never crash the daemon
                log.exception("unexpected error handling a packet from %s", received.src)

    def _dispatch(
        self, key: tuple[str, int], received: Received, counters: Counters, now: float
    ) -> None:
        taken = accept(self.instances, key, received, counters)
        if taken is None:
            return
        inst, advert = taken
        actions = inst.machine.advert_received(
            now, advert.priority, advert.interval_cs, str(received.src)
        )
        group = self.sync.group_of(inst.name) if inst.spec.sync_group else None
        if (
            group is not None
            and advert.priority
            and inst.machine.state is State.BACKUP
            and not any(isinstance(a, DiscardAdvert) for a in actions)
        ):
            # A master heard and accepted: a member held in Backup wants BACKUP again (vrrp.c
            # vrrp_state_backup, "We might have been held in backup by a sync group").
            group.want_backup(inst.name)
        self._execute(inst, actions, now)

    # -- control socket -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The JSON-ready status: state and counters per instance, receive counters per socket."""
        return {
            "pid": os.getpid(),
            "timer_lateness_ms": lateness_ms(self._lateness),
            "config": self.config_path,
            "started": self.started,
            "reloads": self.reloads,
            "memory": memory_status(),
            "instances": {inst.name: instance_status(inst) for inst in self.instances.values()},
            "bfd": self.bfd.status(),
            "bfd_receive": self.bfd.receive_counters(),
            "scripts": self.checks.status(),
            "files": self.files.status(),
            "processes": self.processes.status(),
            "sync_groups": self.sync.status(),
            "receive": {
                f"{ifname}/ipv{family}": c.as_dict()
                for (ifname, family), c in self.rx_counters.items()
            },
        }

    # -- reload -------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the configuration; keep each unchanged instance's state (no flap)."""
        try:
            new = self.load()
        except (config_mod.ConfigError, OSError) as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        self.reloads += 1
        if self.links is not None:
            self.links.forget()
        now = time.monotonic()
        self.notifier.open_fifo(new.notify_fifo)
        # Sessions whose peer is unchanged are kept; new timers go through a Poll Sequence.
        self._on_bfd(self.bfd.configure(new.bfds, now), now)
        self.checks.configure(new.scripts, now)
        self._on_checks([], now)
        self.files.configure(new.files, reload=True)
        self._on_processes(self.processes.configure(new.processes, now), now)
        self.sync = SyncGroups(new.sync_groups, previous=self.sync)
        wanted = {s.name: s for s in new.instances}
        for name, inst in list(self.instances.items()):
            ispec = wanted.get(name)
            if (
                ispec is None
                or ispec.identity() != inst.spec.identity()
                or (ispec.is_unicast != inst.spec.is_unicast)
            ):
                log.info("(%s) removed or changed identity: stopping it", name)
                self._stop_instance(inst, now)
        for name, ispec in wanted.items():
            current = self.instances.get(name)
            if current is None:
                try:
                    self._start_instance(ispec, now)
                except OSError as exc:
                    log.error("(%s) cannot start: %s", name, exc)
                continue
            inst = current
            if ispec == inst.spec:
                continue
            old_vips = {str(v.address.ip): v for v in inst.spec.vips}
            inst.retired_vips = tuple(v for v in inst.spec.vips if v not in ispec.vips)
            inst.spec = ispec
            inst.advert_cache.clear()
            inst.garp_mac = garp_mac(inst, self.links)
            inst.tx = self._tx(ispec.tx_interface, ispec.family)
            try:
                actions = inst.machine.reconfigure(
                    now, params_for(ispec, inst.primary_ip, self._priority(ispec))
                )
            except ValueError as exc:
                log.error("(%s) cannot apply the new configuration: %s", name, exc)
                continue
            # A VIP that moved to another device while we are Master: move it now.
            if inst.machine.state is State.MASTER:
                for vip in ispec.vips:
                    old = old_vips.get(str(vip.address.ip))
                    if old is not None and old != vip and self.links is not None:
                        self.links.remove_address(old.dev, old.address)
                        self.links.add_address(vip.dev, vip.address)
            self._execute(inst, actions, now)
            inst.retired_vips = ()
            self._sync_accept_mode()
            log.info("(%s) reconfigured in state %s", name, inst.machine.state)
        # Every instance: a tracked session or script may have changed without its instance.
        for inst in list(self.instances.values()):
            self._reassess(inst, now)

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        monotonic = time.monotonic
        sockets_seen: object = None
        fd_keys: dict[int, tuple[str, int]] = {}
        bfd_fds: dict[int, int] = {}
        check_fds: dict[int, str] = {}
        files_fd = -1
        readers: list[int] = []
        control = self.control
        control_fd = control.fileno() if control is not None else -1
        links_fd = self.link_monitor.fileno() if self.link_monitor is not None else -1
        while not self._stopping:
            # The descriptor list only changes when sockets come or go (start, reload).
            current = (
                tuple(self.rx_sockets.values()),
                tuple(self.bfd.fds()),
                tuple(self.checks.fds()),
                self.files.fileno(),
            )
            if current != sockets_seen:
                sockets_seen = current
                fd_keys = {rx.fileno(): key for key, rx in self.rx_sockets.items()}
                bfd_fds = self.bfd.fds()
                check_fds = self.checks.fds()
                files_fd = self.files.fileno()
                extra = [fd for fd in (self._wake_r, control_fd, links_fd, files_fd) if fd >= 0]
                readers = [*fd_keys, *bfd_fds, *check_fds, *extra]
            self._fire_timers(monotonic())
            if self._garp_due:
                self._run_deferred()
            timeout = self._next_timeout(monotonic())
            try:
                ready, _, _ = select.select(readers, [], [], timeout)
            except InterruptedError:
                ready = []
            if not ready:
                continue  # a timer is due: the common case, kept short
            for fd in ready:
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 512)
                    self._handle_signals()
                elif fd == control_fd and control is not None:
                    control.serve(self.status)
                elif fd == links_fd:
                    self._on_link_events(monotonic())
                elif fd in fd_keys:
                    self._on_readable(fd_keys[fd])
                elif fd in bfd_fds:
                    self._on_bfd(self.bfd.readable(fd, monotonic), monotonic())
                elif fd == files_fd:
                    self._on_files(self.files.readable(), monotonic())
                elif fd in check_fds:
                    self._on_checks(self.checks.readable(fd, monotonic()), monotonic())

    def _handle_signals(self) -> None:
        while self._pending_signals:
            sig = self._pending_signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                log.info("received %s: stopping", signal.Signals(sig).name)
                self._stopping = True
            elif sig == signal.SIGHUP:
                log.info("received SIGHUP: reloading %s", self.config_path)
                self.reload()
            elif sig == signal.SIGCHLD:
                self.notifier.reap()
            elif sig == signal.SIGUSR1:
                self._dump_traced_memory()

    def _dump_traced_memory(self) -> None:
        # keepalived's SIGUSR1 dumps its data to a file; ours dumps where the Python heap's
        # live memory was allocated, beside the control socket (the soak's memory hunt reads it).
        path = f"{self.control_path or DEFAULT_CONTROL}.tracemalloc"
        why_not = dump_traced_memory(path)
        if why_not:
            log.warning("SIGUSR1: no memory snapshot: %s", why_not)
        else:
            log.info("SIGUSR1: memory snapshot written to %s", path)

    # -- shutdown -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Priority-0 adverts, VIPs and VMACs removed, STOP notified, everything closed."""
        now = time.monotonic()
        for inst in list(self.instances.values()):
            try:
                self._stop_instance(inst, now)
            except Exception:  # keep going: the rest must be cleaned up too
                log.exception("(%s) error while stopping", inst.name)
        for group in self.sync.groups.values():
            # keepalived's vrrp_notify at exit: every group STOP, after its instances.
            self.notifier.notify_group(group.spec, "STOP")
        # After the priority-0 adverts: RFC 5880 §6.8.16's AdminDown (diag 7) on every session,
        # which keepalived does not send (its peers time out instead).
        try:
            self.bfd.shutdown(time.monotonic())
        except Exception:
            log.exception("error while taking the BFD sessions down")
        self.checks.shutdown()
        self.files.close()
        if self.links is not None:
            self.links.cleanup()
        for rx in self.rx_sockets.values():
            rx.close()
        for tx in self.tx_sockets.values():
            tx.close()
        self.rx_sockets.clear()
        self.tx_sockets.clear()
        if self.frames is not None:
            self.frames.close()
        if self.link_monitor is not None:
            self.link_monitor.close()
        self.accept_mode.close()
        if self.control is not None:
            self.control.close()
        self.notifier.close_fifo()
        for pidfile in self.pidfiles:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
        self.notifier.wait()
        log.info("stopped")
