"""The one router driver interface: a VRRP daemon run inside a lab node, and its events.

Every implementation (``keepalived``, ``bundled``, later ``frr``) is driven the same way
(docs/architecture.md#routers):

* it is given a ``keepalived.conf``, either verbatim (text) or rendered from
  :class:`RouterParams`;
* the lab wraps that file in a small config of its own whose ``global_defs`` names a
  ``vrrp_notify_fifo`` and which ``include``s the user's file unchanged;
* the daemon runs in the foreground inside the node, with per-node pid files in the node's
  private ``/run``, its stdout/stderr captured into a per-router log;
* state transitions arrive on the notify FIFO as ``INSTANCE "name" STATE PRIORITY`` lines, and
  are stamped on the lab clock the moment the runner reads them.
  A daemon without a notify FIFO (FRR's vrrpd) sets :attr:`Router.events_from_output`
  instead: :meth:`Router.parse_output_line` turns its output's lines into the same
  transitions, stamped the same way;
* the daemon's output is read through a pipe, copied to its log, and its BFD lines become
  :class:`~lab.routers.events.BfdEvent` records (:meth:`Router.parse_bfd_line`) on
  :attr:`Router.bfd_events`, stamped the same way.

A driver module only says how to start its program (:meth:`Router.command`) and registers itself
with :func:`register_driver`; everything else (files, FIFO, signals, waiting, logs) lives here,
so adding an implementation never touches another module.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pkgutil
import select
import shutil
import signal
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar, TypeVar

from lab import clock
from lab.errors import EnvironmentMissing, LabError, Unsupported, UsageError, WaitTimeout
from lab.linux import Scheduling
from lab.routers.events import (
    STATES,
    BfdEvent,
    BfdStream,
    EventStream,
    Transition,
    parse_bfd_line,
    parse_notify_line,
)
from lab.routers.params import RouterParams
from lab.stall_probe import descendants

if TYPE_CHECKING:
    from lab.node import Node

log = logging.getLogger(__name__)

#: What :meth:`Router.state` says once the daemon process is gone, whatever it reported last.
STOPPED = "STOPPED"


class RouterError(LabError):
    """A router daemon failed to start, stop or reach a state; the message ends with its log."""


# --- the driver ---------------------------------------------------------------------------

#: The directory inside a node where a router keeps its files (the node's private /run).
RUN_DIR = "/run/vrrp-lab/router"


class Router(ABC):
    """A VRRP daemon in a lab node: start, stop, kill, freeze/thaw, reload, state and events.

    Subclasses set :attr:`impl` and :attr:`program` and implement :meth:`command`; they register
    with :func:`register_driver`. The daemon must run in the foreground, write its pid files
    where told, and write a notify line for its initial state (keepalived writes
    ``INSTANCE "x" BACKUP prio`` on start): :meth:`start` returns once that first line arrived.

    Every lifecycle call returns the lab-clock time at which it took effect (the signal was sent,
    the daemon reported in).
    """

    impl: ClassVar[str]
    """The driver's registry name (``keepalived``, ``bundled``, ...)."""
    program: ClassVar[str]
    """The executable the driver runs, checked for before starting."""
    install_hint: ClassVar[str] = ""
    """How to get :attr:`program` when it is missing."""
    unicast: ClassVar[bool] = True
    """Whether the daemon can send unicast adverts (``unicast_peer``); one that cannot is run
    multicast where a sweep asks for unicast (``lab.sweep.spec``)."""
    netlink_before_first_advert: ClassVar[bool] = True
    """Whether, taking over, the daemon may change an address or a link (its VIPs, a VMAC's
    protodown) before its first advert as master leaves. Only a daemon known to send that
    advert first says False: an RTNL hold then cannot delay the takeover as the wire shows it
    (:meth:`lab.runner.ScenarioRun._netlink` judges the detection's stalls by it)."""
    events_from_output: ClassVar[bool] = False
    """True for a daemon with no notify FIFO that reports its states in its own output.

    Every line of the daemon's stdout/stderr (read through a pipe, stamped on the lab clock as
    it arrives, copied to the log) then goes to :meth:`parse_output_line`, and the FIFO is not
    opened.
    """

    def __init__(
        self,
        node: Node,
        config: str | RouterParams,
        *,
        source: str | None = None,
    ) -> None:
        """Prepare a router for ``node``; nothing runs until :meth:`start`.

        ``config`` is a ``keepalived.conf`` text, used verbatim, or :class:`RouterParams` to
        render one. ``source`` names where the text came from, for messages.
        """
        self.node = node
        self.name = node.name
        self.params = config if isinstance(config, RouterParams) else None
        self.config_text = config.render() if isinstance(config, RouterParams) else config
        self.source = source or ("<rendered>" if self.params is not None else "<text>")
        self.events = EventStream(self.name)
        self.bfd_events = BfdStream(self.name)
        """The BFD events of the daemon's log (:meth:`parse_bfd_line`)."""
        self.scheduling = Scheduling()
        """How the daemon is scheduled from its next :meth:`start` (default: as the runner).
        keepalived's ``vrrp_priority`` and ``vrrp_rt_priority`` do the same from inside; this
        works for every implementation, and for all of a driver's processes."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._fifo_fd: int | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._reader: threading.Thread | None = None
        self._output_reader: threading.Thread | None = None
        self._log_saved: list[bytes] = []
        """The log as read so far, in pieces (:meth:`_save_log`)."""
        self._log_saved_size = 0
        self._frozen = False
        self._lock = threading.RLock()

    # -- what a driver provides -------------------------------------------------------------

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the daemon in the foreground with this router's files.

        Use :meth:`standard_flags` for the keepalived-compatible flags every driver accepts.
        """

    def launch(self, argv: list[str]) -> list[str]:
        """``argv`` as the runner starts it, under :attr:`scheduling`."""
        return self.scheduling.wrap(argv)

    def parse_output_line(self, line: str, at: float) -> Transition | None:
        """One line of the daemon's output, read at lab-clock ``at``, as a transition or None.

        Only called when :attr:`events_from_output` is set; the default ignores every line.
        """
        return None

    def parse_bfd_line(self, line: str, at: float) -> BfdEvent | None:
        """One line of the daemon's output, read at lab-clock ``at``, as a BFD event or None.

        keepalived's and the bundled daemon's lines (:func:`lab.routers.events.parse_bfd_line`);
        a daemon that logs BFD differently overrides this.
        """
        return parse_bfd_line(line, at, self.name)

    def standard_flags(self) -> list[str]:
        """keepalived's flags for a foreground VRRP-only daemon with the lab's files.

        ``-n`` foreground, ``-l`` log to the console (captured), ``-D`` detailed log, ``-G`` no
        syslog (``/dev/log`` is the host's, and the host is never touched), ``--vrrp`` only the
        VRRP subsystem, ``-f`` the wrapper config, ``-p``/``-r`` pid files in the node's /run.
        """
        return [
            "-n",
            "-l",
            "-D",
            "-G",
            "--vrrp",
            "-f",
            self.wrapper_path,
            "-p",
            f"{RUN_DIR}/daemon.pid",
            "-r",
            f"{RUN_DIR}/vrrp.pid",
        ]

    def wrapper_text(self) -> str:
        """The lab's config: ``global_defs`` with the notify FIFO, then the user's file included.

        Kept separate from the user's file so that a verbatim config runs byte for byte.
        keepalived applies every ``global_defs`` block it reads, so a user file with its own
        still works (tested); one that sets its own ``vrrp_notify_fifo`` would conflict with
        the lab's.
        """
        return (
            "# Written by vrrp-lab: the notify FIFO the lab reads, then the router's own config.\n"
            "global_defs {\n"
            f"    vrrp_notify_fifo {self.fifo_path}\n"
            "}\n"
            f"include {self.config_path}\n"
        )

    # -- paths (inside the node) ------------------------------------------------------------

    @property
    def config_path(self) -> str:
        """The router's ``keepalived.conf`` (verbatim or rendered), inside the node."""
        return f"{RUN_DIR}/keepalived.conf"

    @property
    def wrapper_path(self) -> str:
        """The lab's wrapper config, inside the node."""
        return f"{RUN_DIR}/lab.conf"

    @property
    def fifo_path(self) -> str:
        """The notify FIFO, inside the node."""
        return f"{RUN_DIR}/notify.fifo"

    @property
    def log_path(self) -> str:
        """The daemon's captured stdout and stderr, inside the node."""
        return f"{RUN_DIR}/daemon.log"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the daemon's main process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def frozen(self) -> bool:
        """True between :meth:`freeze` and :meth:`thaw`."""
        return self._frozen

    @property
    def pid(self) -> int:
        """The main process's pid, as the runner sees it."""
        if self._proc is None:
            raise RouterError(f"router {self.name} has not been started")
        return self._proc.pid

    def pids(self) -> list[int]:
        """The main process and all its descendants (runner's pids), parents first."""
        if not self.running:
            return []
        return process_tree(self.pid)

    def daemon_pids(self) -> list[int]:
        """Every process of the implementation: :meth:`pids`, and the helper daemons a driver
        starts beside the main one (FRR's zebra)."""
        return self.pids()

    def start(self, *, timeout: float = 10.0) -> float:
        """Write the configs, start the daemon, and wait until it reports its first state.

        Returns the lab-clock time of that first report. Raises :class:`RouterError` with the
        log's tail when the daemon exits or stays silent.
        """
        with self._lock:
            if self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is already running")
            if shutil.which(self.program) is None:
                raise EnvironmentMissing(
                    f"{self.program} is not installed; {self.install_hint or 'install it'}"
                )
            self._prepare_files()
            if not self.events_from_output:
                self._open_fifo()
            began = clock.now()
            log_file = open(self.node.path(self.log_path), "ab")  # noqa: SIM115 (handed over)
            handed_over = False
            try:
                # Through a pipe, not straight into the log: its lines are events too (BFD,
                # and the transitions of a daemon without a FIFO). keepalived writes its
                # console log to stderr, unbuffered, so each line arrives as it is logged.
                self._proc = self.node.popen(
                    self.launch(self.command()),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                self._output_reader = threading.Thread(
                    target=self._read_output,
                    args=(self._proc, log_file),
                    name=f"daemon-output-{self.name}",
                    daemon=True,
                )
                self._output_reader.start()
                handed_over = True  # the reader closes the log at the daemon's exit
            finally:
                if not handed_over:
                    log_file.close()
            self._frozen = False

        first = self._await_first_report(began, timeout)
        if first is None:
            assert self._proc is not None
            raise RouterError(
                f"{self.impl} on {self.name} exited {self._proc.returncode} before reporting a "
                f"state; {self._failure_detail()}"
            )
        self.scheduling.raise_realtime(self.daemon_pids())
        return first.at

    def _await_first_report(self, since: float, timeout: float) -> Transition | None:
        """The first transition at or after ``since``; None if the daemon exits first."""
        # Blocking on the stream alone would sit out the whole timeout when the daemon dies at
        # once (a config error), so the wait is cut in slices that check the process too.
        deadline = clock.now() + timeout
        while True:
            try:
                return self.events.wait_for(
                    lambda e: True,
                    timeout=max(0.0, min(0.05, deadline - clock.now())),
                    what="a first report",
                    since=since,
                )
            except WaitTimeout:
                pass
            if not self.running:
                seen = self.events.snapshot(since=since)
                return seen[0] if seen else None
            if clock.now() >= deadline:
                where = "in its output" if self.events_from_output else f"on {self.fifo_path}"
                raise RouterError(
                    f"timed out after {timeout:g}s waiting for {self.impl} on {self.name} to "
                    f"report its first state {where}; {self._failure_detail()}"
                )

    def stop(self, *, timeout: float = 10.0) -> float:
        """SIGTERM the daemon (a graceful shutdown: priority-0 advert) and wait for its exit.

        Returns the lab-clock time the signal was sent. A frozen daemon is thawed first, so it
        can act on the signal. Raises :class:`RouterError` (and SIGKILLs it) if it outlives
        ``timeout``.
        """
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            assert self._proc is not None
            at = self._signal_main(signal.SIGTERM)
            if self._frozen:
                self._signal_all(signal.SIGCONT)
                self._frozen = False
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_tree()
                raise RouterError(
                    f"{self.impl} on {self.name} did not exit within {timeout:g}s of SIGTERM and "
                    f"was killed; {self._failure_detail()}"
                ) from None
            self._save_log()
            return at

    def kill(self) -> float:
        """SIGKILL the daemon: no priority-0 advert, VIPs and VMAC interfaces stay behind.

        Returns the lab-clock time the VRRP process was killed.
        """
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            at = self._kill_tree()
            self._frozen = False
            self._save_log()
            return at

    def freeze(self) -> float:
        """SIGSTOP every process of the daemon (a hung daemon). Returns the lab-clock time."""
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            # Children first: a stopped VRRP process is the fault; the parent only supervises.
            at = self._signal_all(signal.SIGSTOP, children_first=True)
            self._frozen = True
            return at

    def thaw(self) -> float:
        """SIGCONT every process of the daemon. Returns the lab-clock time."""
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            at = self._signal_all(signal.SIGCONT)
            self._frozen = False
            return at

    def reload(self) -> float:
        """SIGHUP the daemon: it re-reads its config. Returns the lab-clock time.

        Change :attr:`config_text` (or call :meth:`set_config`) first to load a new config.
        """
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            self._prepare_files()
            return self._signal_main(signal.SIGHUP)

    @property
    def ignored(self) -> tuple[str, ...]:
        """The settings of its config this daemon runs without, one line each naming the
        keyword (FRR's vrrpd has no notify scripts, say); empty for a daemon that runs them
        all."""
        return ()

    def require(self, keywords: tuple[str, ...]) -> None:
        """Refuse (:class:`lab.errors.Unsupported`) if the config's ``keywords`` are among
        the settings this daemon would run without (:attr:`ignored`): a question about them
        cannot be asked of it."""
        missing = [note for note in self.ignored if any(k in note for k in keywords)]
        if missing:
            raise Unsupported(f"{self.impl} runs without {'; '.join(missing)}")

    def set_config(self, config: str | RouterParams) -> None:
        """Replace the config; it takes effect at the next :meth:`start` or :meth:`reload`."""
        self.params = config if isinstance(config, RouterParams) else None
        self.config_text = config.render() if isinstance(config, RouterParams) else config

    def close(self, *, timeout: float = 10.0) -> None:
        """Stop the daemon gracefully if it runs (SIGKILL if that fails), then stop reading.

        Safe to call twice and after a crash. Lab teardown calls it before the sandbox dies.
        """
        try:
            if self.running:
                try:
                    self.stop(timeout=timeout)
                except RouterError as exc:
                    log.warning("%s", exc)
        finally:
            self._close_fifo()

    # -- state and events --------------------------------------------------------------------

    def state(self, instance: str | None = None) -> str:
        """The last state the daemon reported (of ``instance``, else of its last report).

        ``INIT`` before the first report, and :data:`STOPPED` once the daemon is gone.
        """
        if not self.running:
            return STOPPED
        latest = self.events.latest(instance)
        return latest.state if latest is not None else "INIT"

    def wait_state(
        self,
        state: str,
        *,
        timeout: float,
        instance: str | None = None,
        since: float | None = None,
    ) -> Transition:
        """Wait until the router reports ``state`` and return that transition.

        Without ``since``, a router already in ``state`` returns its latest transition at once;
        with ``since`` (a lab-clock time), only a transition at or after it counts. The timeout
        message lists every transition seen and the tail of the daemon's log.
        """
        state = state.upper()
        if since is None:
            latest = self.events.latest(instance)
            if latest is not None and latest.state == state and self.running:
                return latest
            # Not there yet: anything from the latest report on counts (that report itself does
            # not match), so a transition arriving right now cannot slip between two checks.
            since = latest.at if latest is not None else None
        who = f"{self.name}" + (f"/{instance}" if instance else "")
        return self.events.wait_for(
            lambda e: e.kind == "INSTANCE" and e.state == state and instance in (None, e.instance),
            timeout=timeout,
            what=f"{who} ({self.impl}) to become {state}",
            since=since,
            describe=self._failure_detail,
        )

    # -- logs --------------------------------------------------------------------------------

    def log_text(self) -> str:
        """The daemon's captured output so far (kept after it exits and after the lab ends)."""
        try:
            return self.node.path(self.log_path).read_text(errors="replace")
        except OSError:
            return b"".join(self._log_saved).decode(errors="replace")

    @property
    def saved_log_bytes(self) -> int:
        """How much of the daemon's log the runner holds (:meth:`_save_log`), in bytes."""
        return sum(len(piece) for piece in self._log_saved)

    def forget_records(self) -> None:
        """Drop what the router keeps of the run for a report: its transitions and BFD events
        but the latest of each (:meth:`state` still answers) and the saved pieces of its log
        (:meth:`log_text` reads the log itself while the lab stands). For a run that makes no
        report from them, the one-lab soak (docs/benchmarks.md)."""
        self.events.forget()
        self.bfd_events.forget()
        with self._lock:
            self._log_saved = []

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the daemon's log."""
        return "\n".join(self.log_text().rstrip().splitlines()[-lines:])

    def _failure_detail(self) -> str:
        status = (
            "running"
            if self.running
            else (f"exited {self._proc.returncode}" if self._proc is not None else "never started")
        )
        tail = self.log_tail().replace("\n", "\n    ")
        return f"{self.impl} on {self.name} is {status}; log tail:\n    {tail}"

    def _save_log(self) -> None:
        # The daemon has exited: let the output reader drain the pipe first, so the log and
        # the event stream hold the daemon's last words (e.g. its shutdown transition).
        if self._output_reader is not None:
            self._output_reader.join(timeout=5)
            self._output_reader = None
        # Only what the log gained since the last save: the daemon appends to one log across
        # its restarts, and re-reading it whole at every stop and crash made the runner read
        # (and allocate) a longer copy each time, for a log it already held but the end of.
        with contextlib.suppress(OSError), self.node.path(self.log_path).open("rb") as log:
            log.seek(self._log_saved_size)
            new = log.read()
            self._log_saved.append(new)
            self._log_saved_size += len(new)

    # -- internals ---------------------------------------------------------------------------

    def _prepare_files(self) -> None:
        run_dir = self.node.path(RUN_DIR)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.node.path(self.config_path).write_text(self.config_text)
        self.node.path(self.wrapper_path).write_text(self.wrapper_text())
        fifo = self.node.path(self.fifo_path)
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)

    def _open_fifo(self) -> None:
        if self._fifo_fd is not None:
            return
        # O_RDWR: opening never blocks, and the FIFO never reads EOF when the daemon closes it
        # (on reload or restart): the runner holds a writer end itself.
        self._fifo_fd = os.open(self.node.path(self.fifo_path), os.O_RDWR | os.O_NONBLOCK)
        self._wake_r, self._wake_w = os.pipe()
        self._reader = threading.Thread(
            target=self._read_fifo, name=f"notify-fifo-{self.name}", daemon=True
        )
        self._reader.start()

    def _read_fifo(self) -> None:
        assert self._fifo_fd is not None and self._wake_r is not None
        fifo, wake = self._fifo_fd, self._wake_r
        buf = b""
        while True:
            readable, _, _ = select.select([fifo, wake], [], [])
            if wake in readable:
                return
            try:
                chunk = os.read(fifo, 65536)
            except BlockingIOError:
                continue
            # Stamped the moment the bytes are in hand: "timestamped on arrival".
            at = clock.now()
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace")
                event = parse_notify_line(line, at, self.name)
                if event is None:
                    log.debug("%s: ignoring notify line %r", self.name, line)
                    continue
                self.events.append(event)

    def _read_output(self, proc: subprocess.Popen[bytes], log_file: BinaryIO) -> None:
        """Copy the daemon's output to its log and turn its lines into events, until EOF."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        try:
            while chunk := os.read(fd, 65536):
                # Stamped the moment the bytes are in hand, as for the notify FIFO.
                at = clock.now()
                log_file.write(chunk)
                log_file.flush()
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode(errors="replace")
                    if self.events_from_output:
                        event = self.parse_output_line(line, at)
                        if event is not None:
                            self.events.append(event)
                    bfd = self.parse_bfd_line(line, at)
                    if bfd is not None:
                        self.bfd_events.append(bfd)
        except Exception:  # a parser bug must not leave the pipe unread (the daemon would block)
            log.exception("%s: reading the output of %s failed", self.name, self.impl)
            while os.read(fd, 65536):
                pass
        finally:
            log_file.close()
            proc.stdout.close()

    def _close_fifo(self) -> None:
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        for fd in (self._fifo_fd, self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fifo_fd = self._wake_r = self._wake_w = None

    # A signal that wakes the daemon (SIGTERM, SIGHUP, SIGCONT) is stamped just before it is
    # sent: the daemon may run at once and act (a priority-0 advert on SIGTERM) before the
    # runner gets the CPU back, and a stamp taken after the kill() once came 14 ms after the
    # advert it caused (F02: "no priority-0 advert on shutdown"). One that wakes nothing
    # (SIGSTOP, SIGKILL) is stamped once sent: the daemon is silent from then on, and a stamp
    # taken before would count any delay of the runner's in between as the backup's.

    def _signal_main(self, sig: int) -> float:
        at = clock.now()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        return at

    def _signal_all(self, sig: int, *, children_first: bool = False) -> float:
        pids = self.pids()
        at = clock.now()
        for pid in reversed(pids) if children_first else pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return clock.now() if sig == signal.SIGSTOP else at

    def _kill_tree(self) -> float:
        """SIGKILL the daemon so that no process of it can shut down gracefully."""
        pids = self.pids()
        at = clock.now()
        if pids:
            # Stop the parent first: keepalived would respawn a killed child, and a child with a
            # parent-death signal would shut down *gracefully* (priority 0) if the parent died
            # first. Then kill the children, deepest first, then the parent.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[0], signal.SIGSTOP)
            for pid in reversed(pids[1:]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            at = clock.now()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[0], signal.SIGKILL)
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        return at

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.state()}>"


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, breadth first (parents before children)."""
    # The stall witness's run-queue probe walks the same tree; it lives in the probe's
    # standard-library-only module, so the probe need not import the lab package.
    return descendants([root])


# --- registry ---------------------------------------------------------------------------------

_DRIVERS: dict[str, type[Router]] = {}
R = TypeVar("R", bound=type[Router])

# Modules of this package that are not drivers (tests/unit/test_router_params.py checks that
# every other module registers the driver it is named after).
_NOT_DRIVERS = {"base", "events", "group", "params", "schema", "spec"}


def register_driver(cls: R) -> R:
    """Class decorator: make ``cls`` available under its :attr:`Router.impl` name."""
    _DRIVERS[cls.impl] = cls
    return cls


def driver_class(impl: str) -> type[Router]:
    """The driver class registered as ``impl``, importing ``lab.routers.<impl>`` on demand.

    A driver is thus found from its own module alone: ``bundled`` lives in
    ``lab/routers/bundled.py`` and registers itself when imported.
    """
    if impl not in _DRIVERS and impl.isidentifier() and impl not in _NOT_DRIVERS:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"{__package__}.{impl}")
    try:
        return _DRIVERS[impl]
    except KeyError:
        raise UsageError(
            f"no router implementation {impl!r}; known: {', '.join(known_drivers()) or 'none'}"
        ) from None


def known_drivers() -> list[str]:
    """Names of the driver modules present in this package (registered or not yet imported)."""
    here = Path(__file__).parent
    names = {m.name for m in pkgutil.iter_modules([str(here)])} - _NOT_DRIVERS
    return sorted(names | set(_DRIVERS))


def make_router(
    impl: str, node: Node, config: str | RouterParams, *, source: str | None = None
) -> Router:
    """A router of implementation ``impl`` for ``node`` (not started)."""
    return driver_class(impl)(node, config, source=source)


__all__: Sequence[str] = (
    "RUN_DIR",
    "STATES",
    "STOPPED",
    "BfdEvent",
    "BfdStream",
    "EventStream",
    "Router",
    "RouterError",
    "Transition",
    "driver_class",
    "known_drivers",
    "make_router",
    "parse_notify_line",
    "register_driver",
)
