"""The bundled daemon with one tracker rule broken: proof that each K row's check can fail.

Run inside a lab node as ``python mutant.py --flaw NAME DAEMON-ARGS...``: it replaces one
function of the daemon (:data:`FLAWS` says which row each breaks), then runs ``python -m vrrp``
with the rest of its arguments, so the lab drives it exactly as it drives the bundled daemon.
``--flaw none`` replaces nothing: that is the bundled daemon itself, which passes every K row.

The K rows ask about keepalived's trackers (health checks, preemption knobs, notify scripts),
which a scripted stand-in such as ``liar.py`` would have to re-implement whole to break one
rule; a mutant of the real daemon breaks one rule and keeps every other. This is test code: the
product has no such switch.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import vrrp.checks
import vrrp.daemon
import vrrp.daemon_sync
import vrrp.notify
import vrrp.tracking
from vrrp.__main__ import main
from vrrp.state import Params

#: Each flaw and the row whose rule it breaks.
FLAWS = {
    "none": "",
    "fault-ignored": "K01",
    "weight-ignored": "K02",
    "fall-once": "K03",
    "group-ignored": "K04",
    "nopreempt-ignored": "K05",
    "no-preempt-delay": "K06",
    "notify-twice": "K07",
}


def _params(change: Callable[[Params], Params]) -> None:
    """Have the daemon build every state machine from ``change(params)``."""
    honest = vrrp.daemon.params_for

    def params_for(*args: object, **kwargs: object) -> Params:
        return change(honest(*args, **kwargs))  # type: ignore[arg-type]

    vrrp.daemon.params_for = params_for  # type: ignore[assignment]


class _FallOnce(vrrp.tracking.ScriptCounter):
    """A script counter that fails a script at its first failure, whatever ``fall`` says."""

    def __init__(self, rise: int = 1, fall: int = 1, init_fail: bool = False) -> None:
        super().__init__(rise, 1, init_fail)


def _spawn_twice() -> None:
    """Run every notify script twice (the FIFO is still told once)."""
    honest = vrrp.notify.Notifier._spawn

    def spawn(self: vrrp.notify.Notifier, argv: list[str]) -> None:
        honest(self, argv)
        honest(self, argv)

    vrrp.notify.Notifier._spawn = spawn  # type: ignore[method-assign]


def break_rule(flaw: str) -> None:
    """Replace the daemon's function that ``flaw`` breaks (nothing for ``none``)."""
    if flaw == "fault-ignored":
        # A weight-0 check that fails no longer faults the instance.
        vrrp.tracking.script_faulted = lambda *args, **kwargs: None  # type: ignore[assignment]
    elif flaw == "weight-ignored":
        vrrp.tracking.script_weight = lambda *args, **kwargs: 0  # type: ignore[assignment]
    elif flaw == "fall-once":
        vrrp.checks.ScriptCounter = _FallOnce  # type: ignore[misc]
    elif flaw == "group-ignored":
        # The group neither takes its members along nor holds one back.
        glue = vrrp.daemon_sync.SyncGroupGlue
        glue._sync_transition = lambda *args, **kwargs: None  # type: ignore[method-assign]
        glue._may_take_over = lambda *args, **kwargs: True  # type: ignore[method-assign]
    elif flaw == "nopreempt-ignored":
        _params(lambda p: dataclasses.replace(p, preempt=True))
    elif flaw == "no-preempt-delay":
        _params(lambda p: dataclasses.replace(p, preempt_delay=0.0))
    elif flaw == "notify-twice":
        _spawn_twice()
    elif flaw != "none":
        raise SystemExit(f"mutant: unknown flaw {flaw!r}; known: {', '.join(FLAWS)}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] != ["--flaw"] or len(args) < 2:
        raise SystemExit("usage: mutant.py --flaw NAME DAEMON-ARGS...")
    break_rule(args[1])
    sys.exit(main(args[2:]))
