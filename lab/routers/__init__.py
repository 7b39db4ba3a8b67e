"""VRRP router drivers: one interface (:class:`Router`), one module per implementation.

``make_router("keepalived", node, config)`` builds a driver; ``driver_class(name)`` imports
``lab.routers.<name>`` on demand, so an implementation only needs its own module, registered
with :func:`register_driver`. A generated config is :class:`lab.routers.params.RouterParams`,
rendered through :mod:`vrrp.config`'s model. Scenario ``routers:`` entries are modelled by
:class:`lab.routers.schema.RouterSpec` and started with :func:`lab.routers.spec.start_routers`.
"""

from lab.routers.base import (
    STATES,
    STOPPED,
    BfdEvent,
    EventStream,
    Router,
    RouterError,
    Transition,
    driver_class,
    known_drivers,
    make_router,
    parse_notify_line,
    register_driver,
)
from lab.routers.params import RouterParams, master_down_interval, skew_time

#: The implementation a router runs when neither the scenario nor the run names one.
DEFAULT_IMPL = "keepalived"

__all__ = [
    "DEFAULT_IMPL",
    "STATES",
    "STOPPED",
    "BfdEvent",
    "EventStream",
    "Router",
    "RouterError",
    "RouterParams",
    "Transition",
    "driver_class",
    "known_drivers",
    "make_router",
    "master_down_interval",
    "parse_notify_line",
    "register_driver",
    "skew_time",
]
