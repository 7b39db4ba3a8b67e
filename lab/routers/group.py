"""The routers of a lab, by node name: what :attr:`lab.lab.Lab.routers` holds.

Below the lab, so that a lab owns its routers as a plain attribute; the bring-up that fills it
(:mod:`lab.routers.spec`) sits above the lab.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lab.routers.base import Router

#: Seconds a router's graceful stop may take at lab teardown before it is SIGKILLed. Routers
#: stop side by side, so a lab's teardown is allowed one such stop (:meth:`Lab.allow_teardown`).
STOP_TIMEOUT = 10.0


class Routers(dict[str, Router]):
    """The started routers of a lab, by node name, with a few questions about them all."""

    def masters(self, instance: str | None = None) -> list[str]:
        """The nodes whose router reports MASTER (of ``instance`` when given)."""
        return [name for name, r in self.items() if r.state(instance) == "MASTER"]

    def states(self, instance: str | None = None) -> dict[str, str]:
        """Every router's current state, by node."""
        return {name: r.state(instance) for name, r in self.items()}

    def stop_all(self, *, timeout: float = 10.0) -> None:
        """Stop every running router gracefully, newest first."""
        for router in reversed(list(self.values())):
            router.close(timeout=timeout)

    def close_together(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every router gracefully at once: the teardown of a lab.

        A graceful stop waits for the daemon to exit, and keepalived takes about a second to
        remove its VMAC interface; stopping the routers side by side costs one such wait, not
        one per router. Every router is stopped even if another's stop fails.
        """
        routers = list(self.values())
        if not routers:
            return
        with ThreadPoolExecutor(max_workers=len(routers)) as pool:
            futures = [pool.submit(router.close, timeout=timeout) for router in routers]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
