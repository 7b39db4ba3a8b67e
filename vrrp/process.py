"""The daemon's process and what it asks of the OS: detaching from the terminal
(:func:`daemonize`), where its log goes (:func:`setup_logging`), its scheduling priority
(:func:`apply_scheduling`, keepalived's ``vrrp_priority`` / ``vrrp_rt_priority``) and its
timer slack (:func:`set_timer_slack`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from pathlib import Path
from typing import Any

from vrrp.spec import DaemonSpec

__all__ = ["apply_scheduling", "daemonize", "set_timer_slack", "setup_logging"]

log = logging.getLogger("vrrp")

_PR_SET_TIMERSLACK = 29


def set_timer_slack(nanoseconds: int) -> None:
    """Ask for precise wake-ups (default slack is 50 µs); harmless if refused."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0)


def apply_scheduling(spec: DaemonSpec) -> None:
    """keepalived's ``vrrp_priority`` (nice) and ``vrrp_rt_priority`` (SCHED_RR)."""
    if spec.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, spec.nice)
        except OSError as exc:
            log.warning("cannot set vrrp_priority %d: %s", spec.nice, exc)
    if spec.rt_priority is not None:
        try:
            # Reset on fork: notify scripts must not inherit real-time scheduling.
            policy = os.SCHED_RR | getattr(os, "SCHED_RESET_ON_FORK", 0)
            os.sched_setscheduler(0, policy, os.sched_param(spec.rt_priority))
        except OSError as exc:
            log.warning("cannot set vrrp_rt_priority %d: %s", spec.rt_priority, exc)


def daemonize() -> None:
    """Detach from the terminal (the usual double fork), as keepalived does without ``-n``."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")


def setup_logging(*, console: bool, detail: bool, syslog: bool = True, stream: Any = None) -> None:
    """Log to stderr with ``-l``, else to syslog (``/dev/log``) when there is one and allowed."""
    level = logging.DEBUG if detail else logging.INFO
    root = logging.getLogger("vrrp")
    root.setLevel(level)
    handler: logging.Handler
    if not console and not syslog:
        handler = logging.NullHandler()
    elif console or not Path("/dev/log").exists():
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s vrrp[%(process)d]: %(message)s"))
    else:
        from logging.handlers import SysLogHandler

        handler = SysLogHandler(address="/dev/log")
        handler.setFormatter(logging.Formatter("vrrp[%(process)d]: %(message)s"))
    root.handlers[:] = [handler]
