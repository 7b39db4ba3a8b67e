"""Thin, typed wrappers over the Linux calls the sandbox needs and Python 3.11 lacks.

``os.setns`` and ``os.unshare`` only arrived in Python 3.12, and ``prctl`` has never been in the
standard library, so they are reached through ctypes here, in one place; so are glibc's
allocator controls (``malloc_trim``, ``mallopt``), which a long-lived runner uses.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import functools
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

#: The namespace kinds a node is made of, with the /proc/PID/ns file of each. The mount namespace
#: comes last on purpose: once a process has entered it, paths under /proc may mean another tree.
NODE_NAMESPACES: tuple[tuple[str, int], ...] = (
    ("net", CLONE_NEWNET),
    ("uts", CLONE_NEWUTS),
    ("mnt", CLONE_NEWNS),
)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace that ``fd`` refers to."""
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    """Detach the calling process from the namespaces named in ``flags``."""
    _check(_libc.unshare(flags), "unshare")


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when the thread that forked it ends.

    Called between fork and exec. It is what ties the sandbox's lifetime to the runner's, even
    when the runner is SIGKILLed and can run no cleanup of its own.
    """
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def open_namespace(pid: int, kind: str) -> int:
    """Open ``/proc/PID/ns/KIND`` and return the descriptor (close-on-exec)."""
    return os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)


def namespace_inode(pid: int, kind: str) -> int:
    """The inode that identifies a process's namespace of ``kind``: equal inodes, same namespace."""
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def call_in_netns(fd: int, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a throwaway thread that lives in the network namespace ``fd``.

    A socket keeps the namespace it was created in, so sockets ``fn`` makes (netlink,
    AF_PACKET) keep working there from any thread. The thread never moves back: a rootless
    runner is not allowed to re-enter the namespace it started in, and a thread that simply
    ends needs no permission.
    """
    outcome: list[Any] = []

    def body() -> None:
        try:
            setns(fd, CLONE_NEWNET)
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    worker = threading.Thread(target=body, name="netns-call")
    worker.start()
    worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def socket_in_netns(fd: int, family: int, kind: int, proto: int = 0) -> socket.socket:
    """Create a socket that lives in the network namespace ``fd``."""
    return call_in_netns(fd, lambda: socket.socket(family, kind, proto))


def enter_user_namespace() -> None:
    """Become root of a fresh user namespace, mapped to the caller's own uid and gid.

    The kernel allows this only while the process has a single thread, so it must run before
    anything starts threads. Afterwards the process may create the other namespaces rootless.
    """
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc/PID/stat`` (R, S, D, T, Z, ...), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def namespaces_refused_reason() -> str | None:
    """Say why this process cannot make namespaces, or return None when it can."""
    if os.geteuid() == 0:
        return None
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read().strip() or 0) == 0:
                return (
                    "not root, and user namespaces are disabled (user.max_user_namespaces=0): "
                    "run as root, or enable them with sysctl -w user.max_user_namespaces=15000"
                )
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return (
                    "not root, and unprivileged user namespaces are disabled "
                    "(kernel.unprivileged_userns_clone=0): run as root, or enable them"
                )
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") as f:
            if f.read().strip() == "1":
                return (
                    "not root, and AppArmor restricts unprivileged user namespaces "
                    "(kernel.apparmor_restrict_unprivileged_userns=1): run as root"
                )
    except OSError:
        pass
    return None


def errno_name(code: int) -> str:
    """The symbolic name of an errno value, for messages."""
    return errno.errorcode.get(code, str(code))


@dataclasses.dataclass(frozen=True)
class Scheduling:
    """How a daemon the lab starts is scheduled: SCHED_OTHER at ``nice`` (neither set: as the
    runner), raised to SCHED_FIFO at ``fifo`` once it runs.

    A nice value weighs only inside the daemon's own session: with the kernel's scheduler
    autogroups (on in Debian) every session is one entity weighted as nice 0, and the lab
    starts each daemon in a session of its own. A conformance IUT at nice -10 was measured
    waiting up to 32 ms for a CPU beside two other benches; at SCHED_FIFO 1 its worst advert
    period deviation over 50 runs was 4.6 ms (p90 0.65 ms against 4.2 ms at nice -10).
    """

    nice: int | None = None
    fifo: int | None = None

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` started at :attr:`nice` (``nice`` execs the program, so the pid is the
        daemon's). A SCHED_FIFO priority is not given here: :meth:`raise_realtime` sets it
        once the daemon runs."""
        if self.nice is not None:
            return ["nice", "-n", str(self.nice), *argv]
        return list(argv)

    def raise_realtime(self, pids: Iterable[int]) -> None:
        """Put every thread of ``pids`` at SCHED_FIFO :attr:`fifo` (nothing when unset).

        Only once the daemon has started: a daemon's start-up is its one burst of work
        (Python's imports take the bundled daemon 0.3 s of CPU), and at SCHED_FIFO it would
        hold a CPU from every ordinary task for that long. What it forks later inherits it.
        """
        if self.fifo is None:
            return
        param = os.sched_param(self.fifo)
        for pid in pids:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:  # gone already
                continue
            for tid in tids:
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setscheduler(tid, os.SCHED_FIFO, param)

    @property
    def label(self) -> str:
        """``fifo1``, ``nice-10`` or ``inherited``: how reports and stall sources name it."""
        if self.fifo is not None:
            return f"fifo{self.fifo}"
        if self.nice is not None:
            return f"nice{self.nice:+d}"
        return "inherited"


def own_session() -> bool:
    """Put this process in a session of its own, and so in a scheduler autogroup of its own;
    True when it now leads one.

    For a process that measures: with autogroups (on in Debian) every session weighs as one
    nice-0 task, and every daemon, recorder and probe of a lab is a session of its own. Left
    in the session that started them, a test run's measuring processes (pytest-xdist workers,
    the conformance CLI's workers) would share one session's weight among them all, against
    each lab process's own, and fall behind while they stamp events and send the tester's
    frames. A process that already leads a process group cannot start a session: it stays.
    """
    with contextlib.suppress(OSError):
        os.setsid()
    return os.getsid(0) == os.getpid()


@functools.cache
def realtime_allowed() -> bool:
    """True when this process may start programs at SCHED_FIFO (root in the initial user
    namespace; never rootless, where the kernel refuses it). Asked once, of ``chrt``."""
    try:
        done = subprocess.run(
            ["chrt", "--fifo", "1", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


#: ``mallopt``'s parameters (``<malloc.h>``): the most malloc arenas glibc makes, and the size
#: from which a block gets a mapping of its own.
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
#: The runner's mmap threshold: below the 64 KiB buffers its daemon-output readers hold for as
#: long as a daemon runs (``lab.routers.base``), so that they never sit inside the heap.
MMAP_THRESHOLD = 64 * 1024


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (every field a ``size_t``): the heap and arenas' size
    (``arena``), the mapped blocks (``hblks``, ``hblkhd`` bytes), in use (``uordblks``) and free
    (``fordblks``) across every arena."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with its allocator calls typed, or None under another C library. Loaded and
    typed once: a library typed anew at every call would allocate in the process it measures."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


@functools.cache
def _mallinfo2() -> Callable[[], MallInfo2] | None:
    """glibc's ``mallinfo2``, typed once; None without glibc or before 2.33, which has only the
    older ``mallinfo`` (its ``int`` fields wrap at 2 GiB)."""
    libc = _glibc()
    function = getattr(libc, "mallinfo2", None) if libc is not None else None
    if function is not None:
        function.restype = MallInfo2
    return function


def mallinfo() -> MallInfo2 | None:
    """glibc's allocator totals now (``mallinfo2``, bytes); None where it has none."""
    function = _mallinfo2()
    return None if function is None else function()


def malloc_trim() -> bool:
    """Ask glibc to hand the free pages of every malloc arena back to the kernel
    (``malloc_trim(0)``); False without glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def one_malloc_arena() -> bool:
    """Make glibc serve every thread of this process from one malloc arena, as
    ``MALLOC_ARENA_MAX=1`` does (``mallopt(M_ARENA_MAX, 1)``); call it before threads start.
    Returns whether glibc took it.

    glibc gives threads arenas of their own (up to eight a core) so that they do not contend
    for one lock. A lab runner's threads allocate under CPython's GIL and never contend, so
    the arenas buy nothing, and they scatter the free memory of short-lived threads (a link
    flap's, a daemon's output reader, a prober's) where ``malloc_trim`` cannot return it: in
    the one-lab soak, the runner's trimmed resident set grew +0.95 KiB a cycle over 270
    cycles with them, +0.35 with one arena and +0.03 over its last 90 cycles
    (``benchmarks/soak_memory.py``, docs/benchmarks.md).
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, 1) == 1


def fixed_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Never grow the heap for a block of ``size`` bytes or more: one the heap's free memory
    cannot hold gets a mapping of its own, for good (``mallopt(M_MMAP_THRESHOLD, size)``, as
    ``MALLOC_MMAP_THRESHOLD_`` does; the trim threshold then keeps its default too, no longer
    raised with it). Returns whether glibc took it.

    By default the threshold slides: each time a mapped block is freed, glibc raises the
    threshold to that block's size (up to 32 MiB), and the heap is then grown for larger and
    larger blocks. In a long-lived runner those are buffers (a 64 KiB read buffer held for a
    daemon's whole life, a dump's reply) placed at the heap's end among small long-lived
    blocks: the heap grew around them and ``malloc_trim`` could not give it back. In the
    one-lab soak, side by side for 300 cycles: the heap grew from 13,424 to 13,988 KiB and the
    trimmed resident set +0.43 KiB a cycle with the sliding threshold; with it fixed at 64 KiB
    the heap stayed at 12,192 KiB and the trimmed resident set was flat over the last 100 cycles
    (``benchmarks/soak_memory.py --dynamic-mmap``, docs/benchmarks.md).
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, size) == 1


def steady_malloc() -> bool:
    """The runner's allocator settings, set before any thread starts: one arena
    (:func:`one_malloc_arena`) and a fixed mmap threshold (:func:`fixed_mmap_threshold`).
    Returns whether glibc took both (each is asked either way)."""
    arena = one_malloc_arena()
    threshold = fixed_mmap_threshold()
    return arena and threshold
