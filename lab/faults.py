"""The fault catalogue (docs/architecture.md#faults), as calls on a running lab.

=============== =========================================== ===================================
fault           what it does                                models
=============== =========================================== ===================================
``stop``        SIGTERM to the daemon (priority-0 advert)   a graceful ``systemctl stop``
``crash``       SIGKILL; VIP and VMAC left behind           a daemon crash: split brain
``host-down``   the node's fabric tap goes down             instance or hypervisor death
``freeze``      SIGSTOP (``thaw``: SIGCONT)                 a hung daemon
``partition``   the fabric drops A↔B                        split brain
``advert-loss`` nft ``numgen random`` drop of protocol 112  a lossy fabric (no netem here)
``link-flap``   the tap goes down, then up                  a flapping NIC
``bfd-loss``    the fabric drops BFD (UDP 3784/3785) A↔B    a BFD false positive: BFD lost,
                (``bfd-restore``: lets it through again)    VRRP intact
``file-flag``   a number written to a file in a node, or    an operator's or a health
                the file removed                            check's flag (``track_file``)
``interface-down`` an interface inside the node goes down   a lost uplink (``track_interface``)
                (``interface-up``: up again); the fabric
                port stays up
``service-down`` SIGKILL to the node's haproxy              a crashed load balancer
``service-hang`` SIGSTOP to the node's haproxy              a hung one: its check times out
                (``service-up``: SIGCONT, or start again)
``service-flap`` haproxy killed and restarted N times       an intermittent service
``inject``      a node sends crafted frames (VRRP adverts,  a hostile or broken neighbour on
                GARPs, ARP replies, NAs) at a rate for a    the subnet (:mod:`lab.inject`)
                duration
=============== =========================================== ===================================

Every fault returns the lab-clock time at which it took effect (the signal was sent, the link
change or the nft transaction was acknowledged), and is logged in :func:`history`. Where an undo
makes sense it is a paired call (``host_up``, ``thaw``, ``heal``, ``clear_advert_loss``,
``bfd_restore``) and it
is registered with ``lab.defer``, so a test that ends mid-fault still tears down in order: a
frozen daemon is thawed before its graceful stop, a downed port comes back before it.

Faults that filter traffic (``partition``, ``advert-loss``, ``bfd-loss``) are kept here as
the set of what is active, and rendered and loaded by :mod:`lab.fault_table` into its own
``lab_faults`` table, swapped atomically on every change.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pyroute2 import IPRoute

from lab import clock, fault_table
from lab.errors import LabError, UsageError
from lab.fault_table import EVERY_PAIR, NFT_TABLE, LossCounters
from lab.node import link_index
from lab.routers.base import Router
from lab.routers.spec import router_of
from lab.steps import Inject

if TYPE_CHECKING:
    from lab.lab import Lab


@dataclasses.dataclass(frozen=True)
class FaultRecord:
    """One fault (or undo) applied to a lab, for timelines and reports."""

    kind: str
    """The catalogue name: ``stop``, ``host-down``, ``thaw``, ``heal``, ..."""
    target: str
    """What it hit: a node, ``a<->b``, or ``fabric``."""
    at: float
    """Lab-clock time at which it took effect."""
    detail: str = ""


@dataclasses.dataclass
class _FaultState:
    """Per-lab state of the catalogue: the history and the active nft faults."""

    history: list[FaultRecord] = dataclasses.field(default_factory=list)
    partitions: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    advert_loss: dict[str, float] = dataclasses.field(default_factory=dict)
    """Loss percentage by source node (``*`` for every source)."""
    bfd_loss: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    """Pairs of nodes between which BFD is dropped (:data:`EVERY_PAIR`: between all)."""
    table_loaded: bool = False
    last_commit_span: float = 0.0
    """How long after the ruleset was handed over nft had certainly committed it (s)."""
    flaps: list[_Flap] = dataclasses.field(default_factory=list)
    """The link flaps still pending (an ended one is dropped when the next one starts)."""
    undos: set[Any] = dataclasses.field(default_factory=set)
    """The keys of the undos already on the lab's teardown stack (:func:`_defer_once`)."""
    service_flaps: list[threading.Event] = dataclasses.field(default_factory=list)
    lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)


_STATE: weakref.WeakKeyDictionary[Lab, _FaultState] = weakref.WeakKeyDictionary()


def _state(lab: Lab) -> _FaultState:
    return _STATE.setdefault(lab, _FaultState())


def _defer_once(lab: Lab, key: Any, what: str, undo: Callable[[], Any]) -> None:
    """Register ``undo`` at teardown once per ``key``, not once per fault.

    Every such undo reads the state at teardown and does nothing when there is nothing to
    undo, so one registration serves every later fault of the same kind on the same target.
    Registered per fault, a long-lived lab's teardown stack kept a closure (a link flap's
    with its timer thread) for every freeze, host-down and link-flap ever applied, and ran
    them all at teardown (found by the soak, docs/benchmarks.md).
    """
    state = _state(lab)
    with state.lock:
        if key in state.undos:
            return
        state.undos.add(key)
    lab.defer(what, undo)


def _record(lab: Lab, kind: str, target: str, at: float, detail: str = "") -> float:
    _state(lab).history.append(FaultRecord(kind, target, at, detail))
    return at


def history(lab: Lab) -> list[FaultRecord]:
    """Every fault and undo applied to ``lab`` so far, in order."""
    return list(_state(lab).history)


def forget_history(lab: Lab) -> int:
    """Drop ``lab``'s :func:`history` so far and return how many records it held. For a run
    that makes no report from it (the one-lab soak, docs/benchmarks.md)."""
    state = _state(lab)
    with state.lock:
        dropped = len(state.history)
        state.history = []
    return dropped


# --- daemon faults ----------------------------------------------------------------------------


def stop(lab: Lab, router: str | Router, *, timeout: float = 10.0) -> float:
    """``stop``: SIGTERM the router (priority-0 advert), wait for it to exit.

    Returns the time SIGTERM was sent.
    """
    r = router_of(lab, router)
    return _record(lab, "stop", r.name, r.stop(timeout=timeout))


def crash(lab: Lab, router: str | Router) -> float:
    """``crash``: SIGKILL the router. Its VIPs and VMAC interface stay in the node.

    Returns the time the VRRP process was killed.
    """
    r = router_of(lab, router)
    return _record(lab, "crash", r.name, r.kill())


def freeze(lab: Lab, router: str | Router) -> float:
    """``freeze``: SIGSTOP the router's processes. Undone by :func:`thaw` (also at teardown)."""
    r = router_of(lab, router)
    at = r.freeze()
    _defer_once(
        lab, ("thaw", r), f"thaw {r.name}", lambda: r.thaw() if r.running and r.frozen else None
    )
    return _record(lab, "freeze", r.name, at)


def thaw(lab: Lab, router: str | Router) -> float:
    """``thaw``: SIGCONT the router's processes."""
    r = router_of(lab, router)
    return _record(lab, "thaw", r.name, r.thaw())


# --- link faults ----------------------------------------------------------------------------


class _TapSwitch:
    """A node's fabric taps, ready to be set up or down: a netlink socket of its own in each
    namespace that holds one (a tap on a second chassis lives in its hypervisor's,
    :meth:`lab.fabric.Fabric.tap_namespace`) and the link indices resolved, so that the change
    itself is one request per tap.

    Sockets of its own because the shared ``IPRoute`` objects are not thread-safe and a link
    flap comes back up from its own thread; pyroute2's ``IPRoute`` is used only by the thread
    that made it, so each thread makes its own switch.
    """

    def __init__(self, lab: Lab, node: str) -> None:
        self._sockets: dict[str, IPRoute] = {}
        self.links: list[tuple[IPRoute, int]] = []
        """(the socket of the tap's namespace, the tap's index), per port of the node."""
        try:
            for port in lab.node(node).ports:
                where = lab.fabric.tap_namespace(port)
                ipr = self._sockets.get(where.name)
                if ipr is None:
                    sock = where.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
                    ipr = self._sockets[where.name] = IPRoute(use_socket=sock)
                index = link_index(ipr, port.tap)
                if index is None:
                    raise LabError(f"{where.name} has no device {port.tap} for {node}")
                self.links.append((ipr, index))
        except BaseException:
            self.close()
            raise

    def set(self, state: str) -> float:
        """Set every tap ``up`` or ``down``; return the time the kernel acknowledged the last."""
        for ipr, index in self.links:
            ipr.link("set", index=index, state=state)
        return clock.now()

    def close(self) -> None:
        """Close the netlink sockets."""
        for ipr in self._sockets.values():
            ipr.close()
        self._sockets.clear()

    def __enter__(self) -> _TapSwitch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set_taps(lab: Lab, node: str, state: str) -> float:
    """Set every fabric tap of ``node`` up or down; return the time the kernel acknowledged."""
    with _TapSwitch(lab, node) as taps:
        return taps.set(state)


def host_down(lab: Lab, node: str) -> float:
    """``host-down``: take the node's fabric ports down (the instance or hypervisor died).

    Undone by :func:`host_up`, also at teardown so routers can still stop gracefully.
    """
    at = _set_taps(lab, node, "down")
    _defer_once(lab, ("host-up", node), f"host-up {node}", lambda: _set_taps(lab, node, "up"))
    return _record(lab, "host-down", node, at)


def _set_interface(lab: Lab, node: str, interface: str, state: str) -> float:
    """Set an interface inside ``node`` up or down; return the time of the request.

    Taken before the request, not at the kernel's acknowledgement: the daemons in the node
    hear of the change from netlink before the acknowledgement is read (keepalived reported
    FAULT first), and nothing a fault causes may come before its time. A netlink socket of
    its own per call, as :func:`_set_taps` opens one."""
    sock = lab.node(node).socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    with IPRoute(use_socket=sock) as ipr:
        index = link_index(ipr, interface)
        if index is None:
            raise UsageError(f"{node} has no interface {interface!r}")
        at = clock.now()
        ipr.link("set", index=index, state=state)
        return at


def interface_down(lab: Lab, node: str, interface: str) -> float:
    """``interface-down``: take an interface down inside ``node`` (its fabric port stays up):
    what a router's ``track_interface`` watches. Undone by :func:`interface_up`, also at
    teardown."""
    at = _set_interface(lab, node, interface, "down")
    _defer_once(
        lab,
        ("interface-up", node, interface),
        f"interface-up {node} {interface}",
        lambda: _set_interface(lab, node, interface, "up"),
    )
    return _record(lab, "interface-down", node, at, interface)


def interface_up(lab: Lab, node: str, interface: str) -> float:
    """Bring an interface inside ``node`` back up."""
    return _record(lab, "interface-up", node, _set_interface(lab, node, interface, "up"), interface)


def host_up(lab: Lab, node: str) -> float:
    """Bring the node's fabric ports back up."""
    return _record(lab, "host-up", node, _set_taps(lab, node, "up"))


@dataclasses.dataclass(eq=False)
class _Flap:
    """One pending link flap: its thread, and how it ends."""

    thread: threading.Thread
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    """Set once the link is back up (at its due time or cut short), or the flap failed."""
    cut_short: threading.Event = dataclasses.field(default_factory=threading.Event)
    """Set at teardown: bring the link up now, and record nothing."""
    error: BaseException | None = None
    """Why the link could not be brought back up, for :func:`wait_link_up` to raise."""

    def cancel(self) -> None:
        """End the flap now, with the link up (the flap's own thread does it)."""
        self.cut_short.set()
        self.done.wait(CANCEL_SECONDS)


#: How long teardown waits for a cut-short flap's thread to bring its link up.
CANCEL_SECONDS = 5.0


def link_flap(
    lab: Lab,
    node: str,
    down_for: float,
    *,
    on_up: Callable[[float], None] | None = None,
) -> float:
    """``link-flap``: take the node's fabric ports down now and back up ``down_for`` s later.

    Returns at once with the time the link went down; the flap's thread brings it back up
    (recorded in :func:`history` as ``link-up``, with how late after its due time, and passed to
    ``on_up``). :func:`wait_link_up` blocks until then. At teardown a pending flap is cut
    short and the link brought up.

    The thread opens its netlink socket and resolves the taps while the link is down, so that
    at the due time only the ``up`` requests are left: done at the due time, the dump of the
    fabric's links made the link come up late by however long the runner took to make it.
    """
    if down_for <= 0:
        raise UsageError(f"link-flap down_for must be positive, not {down_for:g}")
    state = _state(lab)
    at = _set_taps(lab, node, "down")
    due = at + down_for

    def bring_up() -> None:
        """Hold the link down until it is due, then bring it up (the flap's thread)."""
        try:
            with _TapSwitch(lab, node) as taps:
                flap.cut_short.wait(max(0.0, due - clock.now()))
                up_at = taps.set("up")
            if not flap.cut_short.is_set():
                late = clock.ms(up_at - due)
                _record(lab, "link-up", node, up_at, f"after {down_for:g}s down (+{late:.1f} ms)")
                if on_up is not None:
                    on_up(up_at)
        except Exception as exc:  # handed to wait_link_up, not lost in the thread
            flap.error = exc
        finally:
            flap.done.set()

    flap = _Flap(threading.Thread(target=bring_up, name=f"link-flap {node}", daemon=True))
    with state.lock:
        # An ended flap has nothing left to wait for or to cut short: forget it, so a
        # long-lived lab does not keep every flap's thread.
        state.flaps = [f for f in state.flaps if not f.done.is_set()]
        state.flaps.append(flap)
    _defer_once(lab, "link-flap", "link flaps", lambda: _cancel_flaps(state))
    # Recorded before the thread starts, so the history never shows the link up first.
    _record(lab, "link-flap", node, at, f"down for {down_for:g}s")
    flap.thread.start()
    return at


def _cancel_flaps(state: _FaultState) -> None:
    """At teardown: cut every pending link flap short, with its link up, and forget them all.

    A flap's thread holds the lab; kept in the lab's entry of :data:`_STATE`, flaps held the
    lab itself alive, so that every lab that ever flapped a link stayed in the runner's memory
    after its teardown (found by the soak, docs/benchmarks.md).
    """
    with state.lock:
        flaps = list(state.flaps)
    for flap in flaps:
        flap.cancel()
    with state.lock:
        state.flaps.clear()


def wait_link_up(lab: Lab, timeout: float) -> None:
    """Block until every pending link flap of ``lab`` has brought its link back up; raise
    :class:`~lab.errors.LabError` if one did not, or could not."""
    deadline = clock.now() + timeout
    with _state(lab).lock:
        flaps = list(_state(lab).flaps)
    for flap in flaps:
        if not flap.done.wait(max(0.0, deadline - clock.now())):
            raise LabError(f"a link flap of lab {lab.id} did not end within {timeout:g}s")
        if flap.error is not None:
            raise LabError(f"a link flap of lab {lab.id} could not bring its link up: {flap.error}")


# --- nftables faults ----------------------------------------------------------------------------


def _load(lab: Lab, state: _FaultState) -> float:
    """Load the table for the current faults in one transaction; return when it applied.

    ``nft`` commits only after reading its whole input, so the moment the ruleset is handed
    over is a lower bound of the commit, and nft's exit an upper bound. To keep that interval
    small (the process start-up alone costs tens of ms), ``nft`` is started first and the
    ruleset written once it blocks reading stdin. The lower bound is returned; the interval
    goes into the history's detail.
    """
    rulesets = fault_table.render(lab, state.partitions, state.advert_loss, state.bfd_loss)
    at, applied = fault_table.apply(rulesets)
    state.last_commit_span = applied - at
    if not state.table_loaded:
        state.table_loaded = True
        lab.defer(f"nft table {NFT_TABLE}", lambda: _drop_table(lab, state))
    return at


def _drop_table(lab: Lab, state: _FaultState) -> None:
    with state.lock:
        state.partitions.clear()
        state.advert_loss.clear()
        state.bfd_loss.clear()
        if state.table_loaded:
            fault_table.delete(lab)
            state.table_loaded = False


def advert_loss_counters(lab: Lab) -> LossCounters:
    """The packet counters of the advert-loss rules (zero when none is loaded)."""
    if not _state(lab).table_loaded:
        return LossCounters(0, 0)
    return fault_table.loss_counters(lab)


def _span(state: _FaultState) -> str:
    return f"committed within {state.last_commit_span * 1000:.1f} ms"


def partition(lab: Lab, a: str, b: str) -> float:
    """``partition``: the fabric drops every frame between nodes ``a`` and ``b``.

    Undone by :func:`heal`; partitions of other pairs are independent.
    """
    if a == b:
        raise UsageError(f"cannot partition {a} from itself")
    lab.node(a), lab.node(b)  # unknown names fail here, with the list of nodes
    state = _state(lab)
    with state.lock:
        state.partitions.add((min(a, b), max(a, b)))
        at = _load(lab, state)
    return _record(lab, "partition", f"{a}<->{b}", at, _span(state))


def heal(lab: Lab, a: str | None = None, b: str | None = None) -> float:
    """Undo :func:`partition` of ``a`` and ``b`` (of every pair when both are None)."""
    state = _state(lab)
    with state.lock:
        if a is None and b is None:
            state.partitions.clear()
        else:
            if a is None or b is None:
                raise UsageError("heal takes two nodes, or none to heal every partition")
            state.partitions.discard((min(a, b), max(a, b)))
        at = _load(lab, state)
    return _record(lab, "heal", "fabric" if a is None else f"{a}<->{b}", at, _span(state))


def advert_loss(lab: Lab, percent: float, *, source: str | None = None) -> float:
    """``advert-loss``: drop ``percent`` % of VRRP packets (IP protocol 112) at random.

    ``percent`` has a resolution of 0.01. With ``source``, only the adverts a node sends. Each
    forwarded copy is dropped independently (nft ``numgen random``), since this kernel has no
    netem. 0 removes the loss.
    """
    if not 0 <= percent <= 100 or round(percent * 100) != percent * 100:
        raise UsageError(f"advert-loss takes a percentage 0..100 in steps of 0.01, not {percent}")
    key = "*" if source is None else source
    if source is not None:
        lab.node(source)
    state = _state(lab)
    with state.lock:
        if percent == 0:
            state.advert_loss.pop(key, None)
        else:
            state.advert_loss[key] = float(percent)
        at = _load(lab, state)
    return _record(lab, "advert-loss", key, at, f"{percent:g}%; {_span(state)}")


def clear_advert_loss(lab: Lab) -> float:
    """Remove every advert-loss rule."""
    state = _state(lab)
    with state.lock:
        state.advert_loss.clear()
        at = _load(lab, state)
    return _record(lab, "advert-loss", "*", at, f"cleared; {_span(state)}")


def _bfd_pair(lab: Lab, a: str | None, b: str | None) -> tuple[str, str]:
    """The key of a ``bfd-loss`` between ``a`` and ``b``: every pair when neither (or ``all``)
    is given."""
    if a in (None, "all") and b is None:
        return EVERY_PAIR
    if a is None or b is None:
        raise UsageError("bfd-loss takes two nodes, or none (`all`) for every pair")
    if a == b:
        raise UsageError(f"cannot drop BFD between {a} and itself")
    lab.node(a), lab.node(b)  # unknown names fail here, with the list of nodes
    return (min(a, b), max(a, b))


def bfd_loss(lab: Lab, a: str | None = None, b: str | None = None) -> float:
    """``bfd-loss``: the fabric drops BFD (UDP to 3784 and 3785, IPv4 and IPv6) between nodes
    ``a`` and ``b``, both ways, or between every pair when neither is given; VRRP and every
    other packet still pass.

    A BFD false positive: each end's session times out while VRRP still hears the master.
    Undone by :func:`bfd_restore` (also at teardown, with the rest of the table).
    """
    key = _bfd_pair(lab, a, b)
    state = _state(lab)
    with state.lock:
        state.bfd_loss.add(key)
        at = _load(lab, state)
    return _record(lab, "bfd-loss", "<->".join(key), at, _span(state))


def bfd_restore(lab: Lab, a: str | None = None, b: str | None = None) -> float:
    """Undo :func:`bfd_loss` between ``a`` and ``b`` (every ``bfd-loss`` when neither is
    given)."""
    state = _state(lab)
    with state.lock:
        if a in (None, "all") and b is None:
            state.bfd_loss.clear()
        else:
            state.bfd_loss.discard(_bfd_pair(lab, a, b))
        at = _load(lab, state)
    target = "all" if a in (None, "all") else f"{a}<->{b}"
    return _record(lab, "bfd-restore", target, at, _span(state))


# --- files in a node -------------------------------------------------------------------------


def file_flag(lab: Lab, node: str, path: str, value: int | None = 1) -> float:
    """``file-flag``: write ``value`` to ``path`` in ``node`` (its own ``/run`` and ``/tmp``),
    or remove the file when ``value`` is None: what a ``track_file`` (or a health check that
    tests for a file) watches. The file is written whole and closed, as an operator's
    ``echo 1 > FILE`` is. The time is taken before the write, so nothing it causes comes
    before it."""
    if not path.startswith("/"):
        raise UsageError(f"file-flag path must be absolute inside the node, not {path!r}")
    at = clock.now()
    if value is None:
        lab.node(node).run(["rm", "-f", "--", path])
    else:
        lab.node(node).run(
            ["sh", "-c", r'printf "%s\n" "$1" > "$2"', "file-flag", str(value), path]
        )
    return _record(lab, "file-flag", node, at, f"{path} {'removed' if value is None else value}")


# --- the service behind the VIP (lab.service) -------------------------------------------------


def service_down(lab: Lab, node: str) -> float:
    """``service-down``: SIGKILL the node's haproxy. Returns the time of the signal."""
    from lab.service import service_of

    return _record(lab, "service-down", node, service_of(lab).proxy(node).kill())


def service_hang(lab: Lab, node: str) -> float:
    """``service-hang``: SIGSTOP the node's haproxy; the kernel still accepts connections and
    nothing answers them. Undone by :func:`service_up` (and by the service's stop)."""
    from lab.service import service_of

    return _record(lab, "service-hang", node, service_of(lab).proxy(node).hang())


def service_up(lab: Lab, node: str) -> float:
    """``service-up``: SIGCONT a hung haproxy, or start a killed one again (returns once its
    monitor port answers, with the time it was started)."""
    from lab.service import service_of

    proxy = service_of(lab).proxy(node)
    if proxy.hung:
        return _record(lab, "service-up", node, proxy.resume(), "resumed")
    if proxy.running:
        raise UsageError(f"haproxy already runs in {node}: service-up has nothing to undo")
    return _record(lab, "service-up", node, proxy.start(), "started")


def service_flap(
    lab: Lab, node: str, times: int = 3, down_for: float = 0.5, up_for: float = 0.5
) -> float:
    """``service-flap``: kill the node's haproxy and start it again ``down_for`` s later,
    ``times`` times, ``up_for`` s apart; what an intermittent service does to a check's rise
    and fall.

    Returns at once with the time of the first kill; a thread plays the rest (each kill and
    start in :func:`history`). :func:`wait_service_flap` blocks until it ends. At teardown a
    flap still playing is cut short, with haproxy left as the service's stop finds it.
    """
    from lab.service import service_of

    if times < 1 or down_for <= 0 or up_for <= 0:
        raise UsageError(
            f"service-flap takes times >= 1 and positive down_for, up_for; got {times}, "
            f"{down_for:g}, {up_for:g}"
        )
    proxy = service_of(lab).proxy(node)
    state = _state(lab)
    cancelled, done = threading.Event(), threading.Event()

    def play() -> None:
        """The rest of the flap, on its schedule (runs in its own thread)."""
        try:
            for n in range(times):
                if n > 0:
                    if cancelled.wait(up_for):
                        return
                    _record(lab, "service-down", node, proxy.kill(), f"flap {n + 1}/{times}")
                if cancelled.wait(down_for):
                    return
                _record(lab, "service-up", node, proxy.start(), f"flap {n + 1}/{times}")
        finally:
            done.set()

    at = _record(lab, "service-flap", node, proxy.kill(), f"{times} × {down_for:g}s down")
    thread = threading.Thread(target=play, name=f"service-flap-{node}", daemon=True)
    with state.lock:
        state.service_flaps.append(done)

    def cancel() -> None:
        """At teardown: end a flap still playing."""
        cancelled.set()
        thread.join(timeout=START_GRACE)

    lab.defer(f"service-flap {node}", cancel)
    thread.start()
    return at


#: Seconds a cancelled service flap may take to notice (one haproxy start at most).
START_GRACE = 15.0


def wait_service_flap(lab: Lab, timeout: float) -> None:
    """Block until every service flap of ``lab`` has played out."""
    deadline = clock.now() + timeout
    with _state(lab).lock:
        flaps = list(_state(lab).service_flaps)
    for done in flaps:
        if not done.wait(max(0.0, deadline - clock.now())):
            raise LabError(f"a service flap of lab {lab.id} did not end within {timeout:g}s")


# --- crafted frames from a node (lab.inject) --------------------------------------------------


def inject(lab: Lab, spec: Inject) -> float:
    """``inject``: ``spec.node`` sends crafted frames at ``spec.rate`` per second for
    ``spec.duration`` seconds (:mod:`lab.inject`). Returns the time of the first frame, at
    once; the rest is sent from a thread, and its end is an ``inject-end`` in :func:`history`."""
    from lab.inject import start_injection

    def logged(kind: str, at: float, detail: str) -> None:
        _record(lab, kind, spec.node, at, detail)

    return start_injection(lab, spec, logged)


#: The catalogue by fault name (docs/architecture.md#faults), for scenario steps. Each takes
#: the lab first.
CATALOGUE: dict[str, Callable[..., float]] = {
    "stop": stop,
    "crash": crash,
    "host-down": host_down,
    "host-up": host_up,
    "freeze": freeze,
    "thaw": thaw,
    "partition": partition,
    "heal": heal,
    "advert-loss": advert_loss,
    "link-flap": link_flap,
    "bfd-loss": bfd_loss,
    "bfd-restore": bfd_restore,
    "file-flag": file_flag,
    "interface-down": interface_down,
    "interface-up": interface_up,
    "service-down": service_down,
    "service-hang": service_hang,
    "service-up": service_up,
    "service-flap": service_flap,
    "inject": inject,
}


def apply(
    lab: Lab,
    fault: str | Any,
    *args: Any,
    routers: Mapping[str, Router] | None = None,
    **kwargs: Any,
) -> float:
    """Apply a fault and return its lab-clock time.

    ``fault`` is a catalogue name (``host-down`` or ``host_down``) followed by that fault's
    arguments, or a scenario step object: its ``action`` names the fault and the action's value
    holds the arguments (a node name; ``a``/``b``; ``percent``; ``node``/``down_for``).
    ``routers`` maps node names to routers for the daemon faults (default: the lab's).
    """
    if not isinstance(fault, str):
        name = str(fault.action)
        args, kwargs = _step_arguments(getattr(fault, name)), {}
    else:
        name = fault
    name = name.replace("_", "-")
    try:
        call = CATALOGUE[name]
    except KeyError:
        raise UsageError(
            f"unknown fault {name!r}; the catalogue has: {', '.join(CATALOGUE)}"
        ) from None
    if routers is not None and name in _DAEMON_FAULTS and args and isinstance(args[0], str):
        if args[0] not in routers:
            raise UsageError(f"no router runs in {args[0]!r}; routers: {', '.join(routers)}")
        args = (routers[args[0]], *args[1:])
    return call(lab, *args, **kwargs)


#: The faults that act on a router daemon rather than on the fabric.
_DAEMON_FAULTS = {"stop", "crash", "freeze", "thaw"}


def _step_arguments(value: Any) -> tuple[Any, ...]:
    """A step's action value as positional arguments of the matching catalogue call."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Inject):
        return (value,)
    if hasattr(value, "a") and hasattr(value, "b"):
        return (value.a, value.b)
    if hasattr(value, "percent"):
        return (value.percent,)
    if hasattr(value, "node") and hasattr(value, "down_for"):
        return (value.node, value.down_for)
    if hasattr(value, "node") and hasattr(value, "path"):
        return (value.node, value.path, value.value)
    if hasattr(value, "node") and hasattr(value, "interface"):
        return (value.node, value.interface)
    if hasattr(value, "node") and hasattr(value, "times"):
        return (value.node, value.times, value.down_for, value.up_for)
    raise UsageError(f"cannot read fault arguments from {value!r}")
