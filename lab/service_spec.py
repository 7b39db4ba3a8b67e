"""The ``service:`` block of a scenario: the load balancer behind the VIP, as a pure model.

The seed's problem statement is about keeping a reverse proxy reachable, and in production the
VIP moves because a health check failed as often as because a daemon died. A scenario may
declare that service::

    service:
      backend: backend              # the instance that serves HTTP behind the proxies
      proxies: [ha_first, ha_second]  # default: every router's node
      port: 80                      # what haproxy binds on the VIP
      client: {interval: 0.001, sessions: 8}

The lab (:mod:`lab.service`) then runs Debian's haproxy in every proxy node, bound to the
scenario's first VIP (``net.ipv4.ip_nonlocal_bind`` in the node, so a BACKUP's haproxy is
ready before the VIP arrives), in front of the lab's HTTP backend, and the observer runs HTTP
clients against the VIP (:mod:`lab.service_probe`). Faults on it are ``service-down``,
``service-hang``, ``service-up`` and ``service-flap`` (:mod:`lab.faults`).

Each proxy node also gets haproxy's own health check, at :data:`CHECK_PATH`: what a
``vrrp_script`` names to track the proxy of its node (``script "/run/haproxy/check"``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Where the lab puts the health check of a proxy node's haproxy: it asks haproxy's monitor
#: URI on the loopback, so that a killed haproxy fails it at once (connection refused) and a
#: hung one times out, as keepalived's ``vrrp_script`` timeout then judges.
CHECK_PATH = "/run/haproxy/check"
#: The loopback port haproxy's monitor frontend listens on, for :data:`CHECK_PATH`.
HEALTH_PORT = 8404


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientSpec(_Model):
    """How the observer's HTTP clients load the service."""

    interval: float = Field(
        0.001,
        gt=0,
        le=1,
        description="Seconds between two requests, each on a new TCP connection.",
    )
    timeout: float = Field(
        1.0, gt=0, le=30, description="Seconds a request (or a session's answer) may take."
    )
    sessions: int = Field(
        8, ge=0, le=256, description="Long-lived keep-alive connections, kept, reset or hung."
    )
    session_interval: float = Field(
        0.1, gt=0, le=10, description="Seconds between two requests on a long-lived connection."
    )


class ServiceSpec(_Model):
    """haproxy on the proxies, bound to the first VIP, in front of an HTTP backend."""

    backend: str = Field(description="The instance that serves HTTP behind the proxies.")
    backend_port: int = Field(8080, ge=1, le=65535, description="The backend's HTTP port.")
    proxies: list[str] | None = Field(
        None, description="The instances that run haproxy (default: every router's node)."
    )
    port: int = Field(80, ge=1, le=65535, description="The port haproxy binds on the VIP.")
    client: ClientSpec = Field(
        default_factory=ClientSpec, description="The observer's HTTP clients."
    )

    @model_validator(mode="after")
    def _ports_differ(self) -> ServiceSpec:
        if HEALTH_PORT in (self.port, self.backend_port):
            raise ValueError(
                f"port {HEALTH_PORT} is haproxy's health check port on the loopback; pick another"
            )
        return self

    def proxy_nodes(self, router_nodes: list[str]) -> list[str]:
        """The instances that run haproxy: as declared, else every router's node."""
        return list(self.proxies) if self.proxies is not None else list(router_nodes)


def check_service(
    service: ServiceSpec,
    instances: list[str],
    router_nodes: list[str],
    vips: int,
    observer: str | None,
) -> None:
    """Raise ``ValueError`` (``service.FIELD: what is wrong``) when ``service`` does not fit
    the scenario: unknown instances, a backend that is also a proxy, no VIP or no observer."""
    known = ", ".join(instances)
    if service.backend not in instances:
        raise ValueError(
            f"service.backend: unknown instance {service.backend!r} (expected one of: {known})"
        )
    proxies = service.proxy_nodes(router_nodes)
    if not proxies:
        raise ValueError("service.proxies: no proxy (declare them, or add routers)")
    for name in proxies:
        if name not in instances:
            raise ValueError(
                f"service.proxies: unknown instance {name!r} (expected one of: {known})"
            )
    if service.backend in proxies:
        raise ValueError(
            f"service.backend: {service.backend!r} is also a proxy; the backend stands behind them"
        )
    if vips == 0:
        raise ValueError(
            "service: haproxy binds the first VIP, and the scenario has none (add `vips:`)"
        )
    if observer is None:
        raise ValueError("service: the HTTP clients run in the observer; name one (`observer:`)")
