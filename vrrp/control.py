"""The control socket: the daemon's side (:class:`ControlServer`, and the status JSON it
serves, :func:`instance_status` and :func:`lateness_ms`) and the client's
(:func:`query_status`, what ``python -m vrrp status`` calls, lives in
:mod:`vrrp.status_client` and is re-exported here).

Connecting is the request: the daemon reads nothing (a slow client cannot stall its loop),
writes its status as one JSON document and closes.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import logging
import os
import socket
import sys
import tracemalloc
from collections.abc import Callable, Collection, Iterator
from typing import Any

from vrrp.instance import Instance
from vrrp.spec import Rfc9568
from vrrp.status_client import DEFAULT_CONTROL, query_status

__all__ = [
    "DEFAULT_CONTROL",
    "ControlServer",
    "LatenessRing",
    "dump_traced_memory",
    "instance_status",
    "lateness_ms",
    "memory_status",
    "query_status",
]

log = logging.getLogger("vrrp")


class ControlServer:
    """The daemon's listening control socket at ``path`` (made, or replaced, on creation)."""

    def __init__(self, path: str) -> None:
        """Bind and listen, non-blocking, so that the loop can ``select()`` on it."""
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.bind(path)
        sock.listen(8)
        sock.setblocking(False)
        self.sock = sock

    def fileno(self) -> int:
        """The listening socket's descriptor, readable when a client connects."""
        return self.sock.fileno()

    def serve(self, status: Callable[[], dict[str, Any]]) -> None:
        """Answer every client waiting with ``status()`` as JSON."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("control socket: %s", exc)
                return
            with conn:
                # Connecting is the request: no read, so a slow client cannot stall the loop.
                conn.settimeout(0.05)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(status(), indent=1).encode() + b"\n")

    def close(self) -> None:
        """Close the socket and remove its file."""
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def instance_status(inst: Instance) -> dict[str, Any]:
    """One instance's entry in the status: its state, timers, configuration and counters."""
    m = inst.machine
    spec = inst.spec
    return {
        "state": "FAULT" if inst.fault else str(m.state),
        "effective_priority": m.priority,
        "vrid": spec.vrid,
        "interface": spec.interface,
        "family": spec.family,
        "version": spec.version,
        "rfc9568": [
            name
            for flag, name in (
                (Rfc9568.BEHAVIOUR, "behaviour"),
                (Rfc9568.CHECKSUM, "checksum"),
            )
            if flag in spec.rfc9568
        ],
        "priority": spec.priority,
        "primary_ip": str(inst.primary_ip),
        "unicast_peers": [str(p) for p in spec.peers],
        "vips": [str(v.address) for v in spec.vips],
        "vip_dev": sorted({v.dev for v in spec.vips}),
        "vmac": spec.vmac_name,
        "vmac_address": spec.vmac_address if spec.vmac_name else None,
        "vmac_xmit_base": spec.vmac_xmit_base,
        "advert_int": spec.advert_int_cs / 100,
        "master_adver_interval": m.master_adver_interval,
        "skew_time": m.skew_time,
        "master_down_interval": m.master_down_interval,
        "last_master": inst.last_master,
        "since": inst.since,
        "transitions": inst.transitions,
        "adverts_sent": inst.adverts_sent,
        "send_errors": inst.send_errors,
        "garps_sent": inst.garps_sent,
        "rx": inst.counters.as_dict(),
        "discards": dict(inst.discards),
        "checksum_forms_received": dict(inst.checksum_forms),
        "checksum_form_sent": str(spec.checksum_form),
        "unicast_ttl_not_255_accepted": {str(k): v for k, v in inst.unicast_ttls.items()},
    }


class LatenessRing:
    """The last ``size`` timer-lateness samples (seconds), for :func:`lateness_ms`.

    One array of ``size`` doubles, allocated at start and overwritten in turn: the daemon's
    memory does not move as it fills. A ``deque(maxlen=...)`` of floats was bounded too, but
    grew by a float object and a slot (32 bytes) a sample until full, 320 KB at ten samples a
    second of mastership, which showed as a slow rise of a never-restarted daemon's resident
    set in the soak (docs/benchmarks.md).
    """

    def __init__(self, size: int = 10000) -> None:
        if size < 1:
            raise ValueError(f"a lateness ring holds at least one sample, not {size}")
        self._samples = array.array("d", bytes(8 * size))
        self._count = 0
        self._next = 0

    def append(self, seconds: float) -> None:
        """Keep ``seconds``, overwriting the oldest sample once the ring is full."""
        self._samples[self._next] = seconds
        self._next = (self._next + 1) % len(self._samples)
        self._count = min(self._count + 1, len(self._samples))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[float]:
        return iter(self._samples[: self._count])


def memory_status() -> dict[str, Any]:
    """What the daemon's Python heap holds: the live objects' blocks (CPython's small-object
    allocator, cheap to count), and with tracing on (``PYTHONTRACEMALLOC=N`` in its
    environment) the traced memory now and at its peak, in KiB. A leak of Python objects
    shows as a rising ``allocated_blocks``; a resident set that rises while these stay flat
    is the allocators' pages, not live memory (docs/benchmarks.md, the soak)."""
    out: dict[str, Any] = {"allocated_blocks": sys.getallocatedblocks()}
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        out |= {"traced_kib": round(current / 1024, 1), "traced_peak_kib": round(peak / 1024, 1)}
    return out


def dump_traced_memory(path: str) -> str | None:
    """Write a tracemalloc snapshot of the daemon to ``path`` (``tracemalloc.Snapshot.load``
    reads it back), for SIGUSR1: written to a temporary name and renamed, so a reader never
    sees half a file. Returns why nothing was written, or None.

    A full collection comes first, so that the snapshot holds what is reachable: cyclic
    garbage (pyroute2's requests leave some) waits for the collector otherwise, and two
    snapshots would differ by whatever it had not reached yet."""
    if not tracemalloc.is_tracing():
        return "tracemalloc is off: start the daemon with PYTHONTRACEMALLOC=N in its environment"
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    partial = f"{path}.partial"
    snapshot.dump(partial)
    os.replace(partial, path)
    return None


def lateness_ms(samples: Collection[float]) -> dict[str, Any]:
    """How late the timers fired (``samples`` in seconds): count, p50, p99 and max in ms."""
    late = sorted(samples)

    def pct(q: float) -> float | None:
        return round(late[min(len(late) - 1, int(q * len(late)))] * 1000, 3) if late else None

    return {
        "samples": len(late),
        "p50": pct(0.5),
        "p99": pct(0.99),
        "max": pct(1.0),
    }
