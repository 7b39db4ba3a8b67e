"""Command line of the bundled VRRP daemon: ``python -m vrrp`` (console script target:
``vrrp.__main__:main``).

Daemon (keepalived's flags where they make sense)::

    python -m vrrp [-f FILE] [-n] [-l] [-D] [-p PIDFILE] [--control SOCKET] [--rfc9568 MODE]
    python -m vrrp -t -f FILE          # check the configuration and exit (0 valid, 1 not)

    -f, --use-file FILE     keepalived.conf to read (default /etc/keepalived/keepalived.conf)
    -n, --dont-fork         stay in the foreground (what the lab uses)
    -l, --log-console       log to stderr instead of syslog
    -D, --log-detail        detailed (debug) logging
    -p, --pid PIDFILE       pid file (default /run/vrrp/vrrp.pid)
    -r, --vrrp_pid PIDFILE  also write the pid here (keepalived's VRRP child pid file)
    -P, --vrrp              accepted for keepalived compatibility (this daemon is VRRP only)
    -G, --no-syslog         never log to syslog (without -l, logs are then dropped)
    --control SOCKET        the status socket (default /run/vrrp/vrrp.ctl)
    --rfc9568 {all,behaviour,checksum}   RFC 9568 mode for every VRRPv3 instance

Status::

    python -m vrrp status [--control SOCKET] [--instance NAME]

prints the running daemon's state and counters per instance as JSON (exit 1 if none answers).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from vrrp import config as config_mod
from vrrp import spec as spec_mod
from vrrp.daemon import (
    DEFAULT_CONTROL,
    DEFAULT_PIDFILE,
    Daemon,
    daemonize,
    query_status,
    setup_logging,
)
from vrrp.spec import Rfc9568

_RFC9568 = {
    "all": Rfc9568.ALL,
    "behaviour": Rfc9568.BEHAVIOUR,
    "checksum": Rfc9568.CHECKSUM,
    "none": Rfc9568.NONE,
}


def _daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vrrp",
        description="The bundled VRRP daemon (VRRPv2/v3, RFC 5798 / RFC 9568), reading "
        "keepalived.conf. `python -m vrrp status` queries a running one.",
    )
    p.add_argument("-f", "--use-file", dest="file", default="/etc/keepalived/keepalived.conf")
    p.add_argument("-n", "--dont-fork", action="store_true", help="stay in the foreground")
    p.add_argument("-l", "--log-console", action="store_true", help="log to stderr")
    p.add_argument("-D", "--log-detail", action="store_true", help="detailed logging")
    p.add_argument("-p", "--pid", dest="pidfile", default=DEFAULT_PIDFILE)
    p.add_argument(
        "-r",
        "--vrrp_pid",
        dest="vrrp_pidfile",
        default=None,
        help="also write the pid here (keepalived's VRRP child pid file)",
    )
    p.add_argument("-P", "--vrrp", action="store_true", help="accepted; VRRP is all we do")
    p.add_argument("-G", "--no-syslog", action="store_true", help="never log to syslog")
    p.add_argument("-t", "--config-test", action="store_true", help="check the config, exit")
    p.add_argument("--control", default=DEFAULT_CONTROL, help="status socket path")
    p.add_argument(
        "--rfc9568",
        choices=sorted(_RFC9568),
        default="none",
        help="RFC 9568 mode for every VRRPv3 instance",
    )
    return p


def _status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vrrp status", description="Print a running daemon's status as JSON."
    )
    p.add_argument("--control", default=DEFAULT_CONTROL, help="status socket path")
    p.add_argument("--instance", help="only this instance")
    return p


def _status(argv: Sequence[str]) -> int:
    args = _status_parser().parse_args(argv)
    try:
        status = query_status(args.control)
    except (OSError, ValueError) as exc:
        print(f"python -m vrrp status: no daemon answers on {args.control}: {exc}", file=sys.stderr)
        return 1
    if args.instance:
        try:
            status = status["instances"][args.instance]
        except KeyError:
            print(f"python -m vrrp status: no instance {args.instance!r}", file=sys.stderr)
            return 1
    json.dump(status, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def _config_test(path: str) -> int:
    try:
        cfg = config_mod.load(path)
        spec = spec_mod.build(cfg)
    except (config_mod.ConfigError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in spec.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m vrrp`` and of the ``vrrp`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        return _status(argv[1:])
    args = _daemon_parser().parse_args(argv)
    if args.config_test:
        return _config_test(args.file)
    if not args.dont_fork:
        daemonize()
    setup_logging(console=args.log_console, detail=args.log_detail, syslog=not args.no_syslog)
    pidfiles = [p for p in (args.pidfile, args.vrrp_pidfile) if p]
    daemon = Daemon(
        args.file, pidfiles=pidfiles, control=args.control, rfc9568=_RFC9568[args.rfc9568]
    )
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main())
