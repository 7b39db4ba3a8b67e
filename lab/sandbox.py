"""The sandbox: a PID namespace that owns every process, and so every namespace, of one lab.

Why a PID namespace: when its first process (its "init") dies, the kernel SIGKILLs every other
process in it. The init is the child of an ``unshare`` process that the runner starts with a
parent-death signal, so the chain runner → unshare → init → everything else collapses whatever
ends the runner: a normal exit, an exception, Ctrl-C or SIGKILL. Network namespaces are held
only by processes of the sandbox (never bind-mounted), so they vanish with them.

Processes are started *into* the sandbox by a spawner thread of the runner whose
``pid_for_children`` points at the sandbox's PID namespace (see :meth:`Sandbox.spawn`), so they
stay ordinary children of the runner: ``subprocess.Popen`` works on them as usual.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lab import linux
from lab.errors import EnvironmentMissing, LabError

_rootless_lock = threading.Lock()
_entered_userns = False
_outer_uid: int | None = None

REQUIRED_PROGRAMS = {
    "unshare": "util-linux (apt-get install util-linux)",
    "nsenter": "util-linux (apt-get install util-linux)",
    "mount": "mount (apt-get install mount)",
}


def check_environment() -> None:
    """Raise :class:`EnvironmentMissing` when this machine cannot host a lab, saying what to do."""
    reason = linux.namespaces_refused_reason()
    if reason:
        raise EnvironmentMissing(f"cannot create network namespaces: {reason}")
    for program, package in REQUIRED_PROGRAMS.items():
        if shutil.which(program) is None:
            raise EnvironmentMissing(f"{program} is not installed; install {package}")


def ensure_privileges() -> bool:
    """Make this process able to create namespaces; return True when it runs rootless.

    As root nothing changes. Otherwise the process enters a user namespace of its own (once:
    the change is for the life of the process), which the kernel only allows while it is
    single-threaded.
    """
    global _entered_userns
    if os.geteuid() == 0 and not _entered_userns:
        return False
    with _rootless_lock:
        if _entered_userns:
            return True
        check_environment()
        if threading.active_count() > 1:
            raise EnvironmentMissing(
                "rootless labs need a single-threaded process to enter a user namespace, and this "
                f"one runs {threading.active_count()} threads: build the lab before starting "
                "threads, or run as root"
            )
        global _outer_uid
        _outer_uid = os.getuid()
        try:
            linux.enter_user_namespace()
        except OSError as exc:
            raise EnvironmentMissing(f"cannot enter a user namespace: {exc}; run as root") from None
        _entered_userns = True
        return True


def outer_uid() -> int:
    """The uid that started this process, even after a user namespace made it look like root."""
    return _outer_uid if _outer_uid is not None else os.getuid()


def is_rootless() -> bool:
    """True once this process has entered its own user namespace."""
    return _entered_userns


def read_ready(proc: subprocess.Popen[Any], timeout: float, what: str) -> str:
    """Wait for a program's first line, which must start with ``ready``, and return it.

    Every helper program of the lab (keepers, prober, capture, followers) announces itself this
    way. The line is read byte by byte, so whatever the program prints next stays in the pipe
    for the reader that takes over. On EOF or timeout, :class:`LabError` says what the program
    printed (or its stderr) instead.
    """
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LabError(f"timed out after {timeout:g}s waiting for {what} to start; saw {buf!r}")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            err = proc.stderr.read().strip() if proc.stderr else b""
            if isinstance(err, bytes):
                err = err.decode(errors="replace")
            code = proc.wait(timeout=5)
            raise LabError(f"{what} exited {code} before it was ready: {err or buf.decode()!r}")
        buf += chunk
    line = buf.decode(errors="replace").strip()
    if not line.startswith("ready"):
        raise LabError(f"{what} printed {line!r} instead of 'ready'")
    return line


def end_by_stdin(proc: subprocess.Popen[Any], timeout: float) -> int:
    """Close ``proc``'s stdin, the lab's helper programs' cue to finish, and reap it.

    A program that has not exited ``timeout`` seconds later is killed. Returns the exit code.
    """
    if proc.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Sandbox:
    """The PID namespace that holds one lab's processes. Start it, spawn into it, close it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rootless = False
        self._unshare: subprocess.Popen[bytes] | None = None
        self._pidns_fd: int | None = None
        self._children: list[subprocess.Popen[Any]] = []
        self._lock = threading.Lock()
        self.init_pid: int | None = None
        self._spawner: ThreadPoolExecutor | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Create the PID namespace and its init process."""
        self.rootless = ensure_privileges()
        check_environment()
        # `--kill-child` gives the init a parent-death signal tied to `unshare`, and our
        # preexec gives `unshare` one tied to us: together they make a SIGKILLed runner take
        # the whole sandbox with it.
        self._unshare = subprocess.Popen(
            [
                "unshare",
                "--pid",
                "--fork",
                "--kill-child=SIGKILL",
                "--",
                "sh",
                "-c",
                # The init must reap: a process whose parent dies before it (keepalived's VRRP
                # child when the `crash` fault SIGKILLs both) is re-parented to it, and a
                # `sleep` as init left it a zombie for the lab's lifetime, one per crash
                # (found by the soak, docs/benchmarks.md). dash, waiting for its foreground
                # `sleep`, reaps whatever child exits (wait3 on any pid).
                "echo ready; while :; do sleep 3600; done",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=linux.set_parent_death_signal,
            start_new_session=True,
        )
        read_ready(self._unshare, timeout, f"the sandbox of lab {self.label}")
        assert self._unshare.stdout is not None
        self._unshare.stdout.close()
        self._pidns_fd = linux.open_namespace(self._unshare.pid, "pid_for_children")
        self._spawner = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"spawn-{self.label}", initializer=self._enter_pidns
        )
        with open(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children") as f:
            self.init_pid = int(f.read().split()[0])

    @property
    def running(self) -> bool:
        """True while the sandbox's init is alive."""
        return self.init_pid is not None and linux.pid_alive(self.init_pid)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        enter: Sequence[tuple[int, int]] = (),
        **popen_kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the sandbox, after entering the namespaces in ``enter``.

        ``enter`` is a list of ``(fd, CLONE_NEW*)`` pairs, applied in order in the child before
        exec. The process is in its own session, so a Ctrl-C meant for the runner does not hit
        the lab's daemons before the runner has stopped them in order.
        """
        if self._spawner is None or not self.running:
            raise LabError(f"the sandbox of lab {self.label} is not running")
        preexec = _preexec_entering(enter) if enter else None
        popen_kwargs.setdefault("start_new_session", True)
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[Any] = self._spawner.submit(
            subprocess.Popen, list(argv), preexec_fn=preexec, **popen_kwargs
        ).result()
        with self._lock:
            self._children = [c for c in self._children if c.returncode is None]
            self._children.append(proc)
        return proc

    def _enter_pidns(self) -> None:
        """Spawner-thread initializer: children forked by this thread land in the sandbox.

        ``pid_for_children`` is per thread, so one dedicated thread enters the sandbox's PID
        namespace for good. Nothing has to switch back, which matters rootless: a process
        may not re-enter the PID namespace it started in once it lives in its own user
        namespace.
        """
        assert self._pidns_fd is not None
        linux.setns(self._pidns_fd, linux.CLONE_NEWPID)

    def close(self) -> None:
        """Kill everything in the sandbox and reap it; safe twice, or after a failed start."""
        if self._spawner is not None:
            self._spawner.shutdown(wait=True)
            self._spawner = None
        if self._unshare is not None:
            with contextlib.suppress(ProcessLookupError):
                self._unshare.send_signal(signal.SIGKILL)
            self._unshare.wait()
            for stream in (self._unshare.stdout, self._unshare.stderr):
                if stream is not None:
                    stream.close()
            self._unshare = None
        # The kernel has SIGKILLed the rest with the init; reaping only collects exit codes.
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._pidns_fd is not None:
            os.close(self._pidns_fd)
            self._pidns_fd = None


def _preexec_entering(enter: Sequence[tuple[int, int]]) -> Callable[[], None]:
    fds = list(enter)

    def preexec() -> None:
        for fd, nstype in fds:
            linux.setns(fd, nstype)

    return preexec
