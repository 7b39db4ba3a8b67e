"""Capture: one pcapng per lab run covering every fabric port, and a reader that extracts events.

:func:`start_capture` makes a :class:`Capture`: it runs the recorder of :mod:`lab.pcapng` in the
**fabric** namespace, one ``AF_PACKET`` socket for every tap, and reads the file back, also while
it grows, as the events of :mod:`lab.capture_events` (adverts, ARP packets, probes). Taps on
a second OVN chassis are recorded by the same process through a packet socket the runner opens
in that hypervisor's namespace.
``python -m lab.capture record`` records taps; ``python -m lab.capture show FILE`` prints the
events of a capture file.

The events and their classes are importable from here too: :func:`events`,
:class:`CaptureEvent`, :class:`VrrpAdvert`, :class:`ArpEvent`, :class:`ProbePacket` and the
``Event`` union.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab import pcapng
from lab.capture_events import (
    FOLD_WINDOW,
    ArpEvent,
    BfdControl,
    CaptureEvent,
    Event,
    ProbePacket,
    VrrpAdvert,
    describe,
    events,
)

if TYPE_CHECKING:
    from lab.lab import Lab

#: ``ETH_P_ALL`` (linux/if_ether.h): a packet socket that sees every protocol.
ETH_P_ALL = 0x0003

__all__ = [
    "ArpEvent",
    "BfdControl",
    "Capture",
    "CaptureEvent",
    "Event",
    "ProbePacket",
    "VrrpAdvert",
    "events",
    "main",
    "start_capture",
]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.capture record|show ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.capture", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pcapng.record_arguments(sub.add_parser("record", help=pcapng.RECORD_HELP))
    show = sub.add_parser("show", help="print the events of a capture file")
    show.add_argument("file", type=Path)
    show.add_argument("--all-copies", action="store_true", help="one line per captured copy")
    args = parser.parse_args(argv)
    if args.command == "show":
        try:
            for ev in events(args.file, dedupe=not args.all_copies):
                print(describe(ev))
        except BrokenPipeError:  # `| head` closed the pipe: not an error
            sys.stderr.close()
        return 0
    return pcapng.record(args)


# -- runner side ------------------------------------------------------------------------------


class Capture:
    """A recording of every fabric tap of a lab, made by :func:`start_capture`.

    :meth:`frames` and :meth:`events` read the file, also while it is being written (up to the
    last flush, at most ``flush`` seconds old). :meth:`stop` ends the recording; it runs at lab
    teardown at the latest, and the file stays where it is.
    """

    def __init__(self, lab: Lab, path: Path, *, flush: float = 0.05) -> None:
        self.lab = lab
        self.path = path
        self.flush = flush
        self.figures: dict[str, float] = {}
        """After :meth:`stop`: frames written, kernel drops, CPU seconds (utime, stime)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader = pcapng.PcapngReader(path)
        self._frames: list[pcapng.Frame] = []
        self._lock = threading.Lock()

    def interfaces(self) -> list[tuple[str, str]]:
        """(tap, description) of every fabric port, in a stable order."""
        out = []
        for port in sorted(self.lab.fabric.ports.values(), key=lambda p: (p.instance.name, p.tap)):
            desc = (
                f"instance={port.instance.name} ifname={port.ifname} mac={port.mac} "
                f"network={port.network.name} port={port.id}"
            )
            out.append((port.tap, desc))
        return out

    def start(self, timeout: float = 10.0) -> Capture:
        """Start recording; return once the capture socket is open."""
        from lab.sandbox import read_ready

        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        # The runner opens the file and hands the descriptor over: the fabric's /tmp is private,
        # so a path of the runner's may not exist, or be another file, in there.
        args = ["record", f"--fd={fd}", f"--flush={self.flush}"]
        args += [f"--iface={tap}={desc}" for tap, desc in self.interfaces()]
        # Taps on a second OVN chassis live in its hypervisor's namespace: the runner opens a
        # packet socket there and hands it over, so one recorder writes one file on one clock.
        others = [
            ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            for ns in self.lab.fabric.tap_namespaces()
            if ns is not self.lab.fabric
        ]
        args += [f"--socket-fd={s.fileno()}" for s in others]
        # By path, not `-m lab.capture`: lab/pcapng.py imports only the standard library, and
        # importing the lab package would cost the recorder 0.6 s of CPU in every lab.
        try:
            self._proc = self.lab.fabric.popen(
                [sys.executable, "-I", os.path.abspath(pcapng.__file__), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fd, *(s.fileno() for s in others)),
            )
        finally:
            os.close(fd)
            for sock in others:
                sock.close()
        read_ready(self._proc, timeout, "the fabric capture")
        return self

    @property
    def running(self) -> bool:
        """True while the capture program runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Path:
        """Stop recording (draining what the kernel still holds) and return the file's path."""
        from lab.errors import LabError

        proc, self._proc = self._proc, None
        if proc is None:
            return self.path
        from lab.sandbox import end_by_stdin

        end_by_stdin(proc, timeout)
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read().decode(errors="replace")
        err = proc.stderr.read().decode(errors="replace")
        proc.stdout.close()
        proc.stderr.close()
        for line in out.splitlines():
            if line.startswith("done "):
                self.figures = {k: float(v) for k, v in (p.split("=", 1) for p in line.split()[1:])}
        if proc.returncode != 0:
            raise LabError(
                f"the fabric capture exited {proc.returncode}: {err.strip().splitlines()[-3:]}"
            )
        return self.path

    def frames(self) -> list[pcapng.Frame]:
        """Every frame recorded so far (read incrementally: repeated calls are cheap)."""
        with self._lock:
            self._frames.extend(self._reader.read())
            return list(self._frames)

    def latest(self) -> float | None:
        """The time of the newest frame recorded so far (None before the first)."""
        with self._lock:
            self._frames.extend(self._reader.read())
            return self._frames[-1].time if self._frames else None

    def catch_up(self, until: float, timeout: float) -> bool:
        """Wait until the file holds a frame from ``until`` on, so that what was on the wire
        before it has been written; False when no frame came within ``timeout`` (a quiet
        wire: nothing newer to read)."""
        from lab.errors import WaitTimeout
        from lab.wait import wait_until

        try:
            wait_until(
                self.latest,
                accept=lambda t: t is not None and t >= until,
                timeout=timeout,
                what=f"a captured frame from {until:.6f} on",
            )
        except WaitTimeout:
            return False
        return True

    def events(self, *, dedupe: bool = True, since: float | None = None) -> list[Event]:
        """The adverts, ARP packets and probes recorded so far (see :func:`events`); with
        ``since``, only those at or after that time (and only the frames near it are folded)."""
        frames = self.frames()
        if since is not None:
            # An event's copies lie within the folding window of its first one.
            frames = [f for f in frames if f.time >= since - 2 * FOLD_WINDOW]
        found = events(frames, dedupe=dedupe)
        return found if since is None else [e for e in found if e.time >= since]

    def wait_for(
        self,
        match: Callable[[Event], bool],
        *,
        timeout: float,
        what: str,
        since: float | None = None,
    ) -> Event:
        """Wait until the capture holds an event for which ``match`` holds (at or after
        ``since``), and return the first such event. Sees frames up to ``flush`` seconds late."""
        from lab.wait import wait_until

        def first() -> Event | None:
            return next((e for e in self.events(since=since) if match(e)), None)

        found = wait_until(first, timeout=timeout, what=what, accept=lambda e: e is not None)
        assert found is not None
        return found


def start_capture(
    lab: Lab,
    where: str | os.PathLike[str] | None = None,
    *,
    flush: float = 0.05,
) -> Capture:
    """Record every fabric port of ``lab``; stopped at lab teardown at the latest.

    ``where`` is a file (a name ending in ``.pcapng``) or a directory, which gets
    ``<lab id>.pcapng``: what ``--pcap DIR`` names. Without it the file goes to the system's
    temporary directory, and is kept.
    """
    target = Path(where) if where is not None else Path(tempfile.gettempdir())
    if target.suffix not in (".pcapng", ".pcap"):
        target = target / f"{lab.id}.pcapng"
    target.parent.mkdir(parents=True, exist_ok=True)
    capture = Capture(lab, target, flush=flush)
    lab.defer(f"capture {capture.path}", capture.stop)
    return capture.start()


if __name__ == "__main__":
    sys.exit(main())
