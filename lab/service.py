"""The service behind the VIP: Debian's haproxy in every proxy node, the lab's HTTP backend
behind them, and the observer's HTTP clients in front (the scenario's ``service:`` block,
:mod:`lab.service_spec`).

What runs where:

* **backend node**: ``lab/http_prober.py backend`` (:class:`lab.service_probe.BackendRun`), an
  HTTP/1.1 server naming itself in every answer (``X-Backend``).
* **each proxy node**: ``haproxy -db`` with a config this module renders
  (:func:`haproxy_config`): a frontend bound to the VIP, which the node may not hold yet
  (``net.ipv4.ip_nonlocal_bind=1``, set in the node's own network namespace), that names the
  proxy in every answer (``X-Served-By``); a monitor frontend on the loopback for the health
  check; the backend behind both. haproxy logs to its stdout, normal requests left out
  (``option dontlog-normal``), so what it logs is what went wrong: each line is stamped on the
  lab clock as it arrives and shown on the run's timeline.
* **health check**: :data:`lab.service_spec.CHECK_PATH` in each proxy node, a script that asks
  haproxy's monitor URI over the loopback. A ``vrrp_script`` names it. Killed, haproxy refuses
  the connection and the check fails at once; hung (SIGSTOP), the kernel still accepts the
  connection and nothing answers, so the check's timeout fails it.
* **observer**: ``lab/http_prober.py client`` (:class:`lab.service_probe.HttpClientRun`).

Every process runs in the lab's sandbox, so none outlives it, SIGKILL of the runner included
(docs/architecture.md#sandbox-and-nodes); :meth:`Service.stop` is registered with
``lab.defer`` and ends them in order first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab import clock
from lab.errors import EnvironmentMissing, LabError, UsageError
from lab.service_probe import BackendRun, HttpClientRun, HttpResults
from lab.service_spec import CHECK_PATH, HEALTH_PORT, ServiceSpec
from lab.wait import wait_until

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.node import Node

#: The haproxy binary (Debian's package).
HAPROXY = "haproxy"
#: Where a proxy node's haproxy config, pidfile and check live (the node's private /run).
RUN_DIR = "/run/haproxy"
#: How long haproxy may take to answer on its monitor port after it starts (s).
START_TIMEOUT = 10.0

#: The health check of one node's haproxy (bash: its ``/dev/tcp`` is the client, so the check
#: costs no interpreter start-up).
CHECK_SCRIPT = f"""#!/bin/bash
# vrrp-lab's health check of this node's haproxy (lab/service.py): its monitor URI on the
# loopback answers 200. Killed, haproxy refuses the connection; hung, the kernel accepts it and
# nothing answers, so the vrrp_script's timeout fails the check.
exec 3<>/dev/tcp/127.0.0.1/{HEALTH_PORT} || exit 1
printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3
read -r _ status _ <&3
[ "$status" = 200 ]
"""


def haproxy_config(
    *, node: str, vip: str, port: int, backend: str, backend_ip: str, backend_port: int
) -> str:
    """The haproxy config of the proxy in ``node``: the VIP's frontend, the monitor frontend
    on the loopback, and the backend."""
    bind = f"[{vip}]:{port}" if ":" in vip else f"{vip}:{port}"
    target = (
        f"[{backend_ip}]:{backend_port}" if ":" in backend_ip else f"{backend_ip}:{backend_port}"
    )
    return f"""# Rendered by vrrp-lab (lab/service.py) for {node}.
global
    log stdout format raw local0 info
    pidfile {RUN_DIR}/haproxy.pid
    # Twice this in descriptors (client and server side) must fit the sandbox's limit.
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    # Only what went wrong is logged: 1,000 normal requests a second would drown it, and a
    # connection that sent nothing (the lab's readiness probe, a client's given-up connect)
    # is not a request.
    option dontlog-normal
    option dontlognull
    timeout connect 1s
    timeout client 30s
    timeout server 5s
    timeout http-keep-alive 30s

frontend vip
    bind {bind}
    http-response set-header X-Served-By {node}
    default_backend app

frontend health
    bind 127.0.0.1:{HEALTH_PORT}
    monitor-uri /healthz

backend app
    http-reuse always
    server {backend} {target}
"""


@dataclass(frozen=True)
class ServiceLine:
    """A line haproxy logged, stamped on the lab clock as it was read."""

    at: float
    node: str
    line: str


class Haproxy:
    """haproxy in one proxy node: started, killed, hung, resumed, its log lines kept."""

    def __init__(self, node: Node, config: str) -> None:
        self.node = node
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._hung = False
        self._lines: list[ServiceLine] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    @property
    def name(self) -> str:
        """The proxy's node."""
        return self.node.name

    @property
    def running(self) -> bool:
        """True while haproxy is alive (hung or not)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """haproxy's pid (as the runner sees it), None before it was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def hung(self) -> bool:
        """True while haproxy is stopped by SIGSTOP."""
        return self._hung and self.running

    def install(self) -> None:
        """Write the config and the health check into the node, and let haproxy bind the VIP
        before the node holds it."""
        run = self.node.path(RUN_DIR)
        run.mkdir(mode=0o755, exist_ok=True)
        (run / "haproxy.cfg").write_text(self.config)
        check = self.node.path(CHECK_PATH)
        check.write_text(CHECK_SCRIPT)
        # keepalived's script security wants the check and its directory root's, not writable
        # by others.
        os.chmod(check, 0o755)
        self.node.run(["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"])
        self.node.run(["sysctl", "-q", "-w", "net.ipv6.ip_nonlocal_bind=1"])

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start haproxy; return once its monitor port answers, with the time it was started."""
        if self.running:
            raise LabError(f"haproxy already runs in {self.name}")
        if shutil.which(HAPROXY) is None:
            raise EnvironmentMissing(
                f"{HAPROXY} is not installed; install it with apt-get install haproxy "
                "(`make system` does)"
            )
        at = clock.now()
        self._proc = self.node.popen(
            [HAPROXY, "-db", "-f", f"{RUN_DIR}/haproxy.cfg"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._hung = False
        for stream in (self._proc.stdout, self._proc.stderr):
            assert stream is not None
            reader = threading.Thread(
                target=self._read, args=(stream,), name=f"haproxy-{self.name}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        proc = self._proc

        def answering() -> bool | str:
            if proc.poll() is not None:
                raise LabError(
                    f"haproxy in {self.name} exited {proc.returncode} at start: "
                    + " | ".join(line.line for line in self.lines()[-5:])
                )
            return self._monitor_answers()

        wait_until(
            answering,
            timeout=timeout,
            what=f"haproxy in {self.name} to answer on 127.0.0.1:{HEALTH_PORT}",
        )
        return at

    def _monitor_answers(self) -> bool:
        """True when the monitor frontend accepts a connection (from inside the node)."""
        with self.node.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", HEALTH_PORT))
            except OSError:
                return False
        return True

    def _read(self, stream: Iterable[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if line:
                with self._lock:
                    self._lines.append(ServiceLine(clock.now(), self.name, line))

    def lines(self) -> list[ServiceLine]:
        """What haproxy logged so far, in order."""
        with self._lock:
            return list(self._lines)

    def _signal(self, sig: signal.Signals) -> float:
        if not self.running:
            raise LabError(f"haproxy is not running in {self.name}")
        assert self._proc is not None
        # The time is taken before the signal, so nothing it causes comes before it.
        at = clock.now()
        self._proc.send_signal(sig)
        return at

    def kill(self) -> float:
        """SIGKILL haproxy (a crashed service); return the time."""
        at = self._signal(signal.SIGKILL)
        assert self._proc is not None
        self._proc.wait(timeout=5)
        self._hung = False
        return at

    def hang(self) -> float:
        """SIGSTOP haproxy (a hung service); return the time."""
        at = self._signal(signal.SIGSTOP)
        self._hung = True
        return at

    def resume(self) -> float:
        """SIGCONT a hung haproxy; return the time."""
        at = self._signal(signal.SIGCONT)
        self._hung = False
        return at

    def stop(self, timeout: float = 5.0) -> None:
        """End haproxy (SIGCONT first if hung, then SIGTERM; SIGKILL after ``timeout``)."""
        if self._proc is None:
            return
        if self.running:
            if self._hung:
                self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        self._readers.clear()


class Service:
    """The scenario's service in a lab: the backend, one haproxy per proxy, the clients.

    Made and started by :func:`start_service`; stopped with the lab (``lab.defer``).
    """

    def __init__(
        self,
        lab: Lab,
        spec: ServiceSpec,
        *,
        vip: str,
        proxies: list[str],
        observer: str,
    ) -> None:
        self.lab = lab
        self.spec = spec
        self.vip = vip
        backend_node = lab.node(spec.backend)
        self.backend = BackendRun(backend_node, spec.backend, port=spec.backend_port)
        self.proxies = {
            name: Haproxy(
                lab.node(name),
                haproxy_config(
                    node=name,
                    vip=vip,
                    port=spec.port,
                    backend=spec.backend,
                    backend_ip=str(backend_node.ip),
                    backend_port=spec.backend_port,
                ),
            )
            for name in proxies
        }
        c = spec.client
        self.client = HttpClientRun(
            lab.node(observer),
            vip,
            port=spec.port,
            interval=c.interval,
            timeout=c.timeout,
            sessions=c.sessions,
            session_interval=c.session_interval,
        )
        self._results: HttpResults | None = None

    def start(self) -> Service:
        """Start the backend, then every haproxy (ready on its monitor port). The clients are
        started by :meth:`start_clients`, once there is something to measure."""
        self.backend.start()
        for proxy in self.proxies.values():
            proxy.install()
            proxy.start()
        return self

    def start_clients(self) -> None:
        """Start the observer's HTTP clients."""
        self.client.start()

    def proxy(self, node: str) -> Haproxy:
        """The haproxy of ``node``; a clear error when none runs there."""
        try:
            return self.proxies[node]
        except KeyError:
            raise UsageError(
                f"no haproxy runs in {node!r}; proxies: {', '.join(self.proxies)}"
            ) from None

    def results(self) -> HttpResults:
        """What the clients measured so far (all of it after :meth:`stop`)."""
        return self._results if self._results is not None else self.client.results()

    def lines(self) -> list[ServiceLine]:
        """Every proxy's log lines, in time order."""
        return sorted(
            (line for p in self.proxies.values() for line in p.lines()), key=lambda x: x.at
        )

    def stop_clients(self) -> HttpResults:
        """Stop the clients (once) and keep their results."""
        if self._results is None:
            self._results = self.client.stop() if self.client.running else self.client.results()
        return self._results

    def stop(self) -> None:
        """Stop the clients, the proxies, then the backend."""
        try:
            self.stop_clients()
        finally:
            for proxy in self.proxies.values():
                proxy.stop()
            self.backend.stop()


#: The service of each lab that runs one, by lab id: how the faults find a node's haproxy
#: (``service_of``). Emptied at the lab's teardown.
_SERVICES: dict[str, Service] = {}


def start_service(lab: Lab, spec: ServiceSpec, *, proxies: list[str], observer: str) -> Service:
    """Start the scenario's service in ``lab`` (see :class:`Service`); it stops with the lab."""
    if not lab.scenario.vips:
        raise UsageError("the service binds the scenario's first VIP, and it has none")
    service = Service(
        lab, spec, vip=str(lab.scenario.vips[0].address), proxies=proxies, observer=observer
    )
    lab.defer("service", service.stop)
    _SERVICES[lab.id] = service
    lab.defer("service registry", lambda: _SERVICES.pop(lab.id, None))
    return service.start()


def service_of(lab: Lab) -> Service:
    """The service started in ``lab``; a clear error when the scenario declares none."""
    try:
        return _SERVICES[lab.id]
    except KeyError:
        raise UsageError(
            f"lab {lab.id} runs no service; declare `service:` in the scenario"
        ) from None
