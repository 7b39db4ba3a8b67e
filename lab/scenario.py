"""Scenario files: YAML in, a validated :class:`Scenario` out, or one clear line of error.

A scenario is a topology (networks, instances, virtual IPs) plus what later sections add
(routers, steps). Errors name the file, the line, the dotted path of the field and what was
expected, e.g.::

    scenarios/seed.yaml:23: instances[0].ports[0].mac_address: 'zz' is not a MAC address ...
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from lab.errors import ScenarioError
from lab.routers.schema import RouterSpec, check_router_specs
from lab.service_spec import ServiceSpec, check_service
from lab.steps import SERVICE_ACTIONS, Expect, Step
from lab.topology import Instance, Topology


def _package_path(name: str) -> Path:
    """A data file or directory shipped inside the ``lab`` package, as a real path.

    Keepalived and the nodes read the bundled configs by path, so the package must be installed
    unpacked (as pip installs a wheel, or ``pip install -e``); a zipped package has no such path.
    """
    found = resources.files("lab") / name
    if not isinstance(found, Path):
        raise ImportError(f"vrrp-lab must be installed unpacked: lab/{name} is not a file path")
    return found


#: Where the bundled scenarios live (inside the package, so a wheel carries them), and the one
#: ``vrrp-lab run`` uses by default. A checkout also reaches them as ``scenarios/``, a symlink.
SCENARIO_DIR = _package_path("scenarios")
DEFAULT_SCENARIO = SCENARIO_DIR / "seed.yaml"
#: The JSON Schema of scenario files as shipped; ``json_schema_text()`` generates it.
SCHEMA_FILE = _package_path("scenario.schema.json")


class Scenario(Topology):
    """A whole scenario: a topology, the routers it runs and the steps it plays."""

    name: str = Field(description="Short name, used in reports and lab ids.")
    description: str = ""
    observer: str | None = Field(
        None, description="The node that probes the first VIP (default: the node `observer`)."
    )
    routers: list[RouterSpec] = Field(default_factory=list)
    service: ServiceSpec | None = Field(
        None,
        description="haproxy on the routers' nodes, bound to the first VIP, in front of "
        "an HTTP backend; the observer's HTTP clients measure it.",
    )
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        """Every node a step or router names exists, and steps only touch routers that exist."""
        check_router_specs(self, self.routers)
        nodes = [inst.name for inst in self.instances]
        if self.observer is not None and self.observer not in nodes:
            raise ValueError(
                f"observer: unknown instance {self.observer!r} "
                f"(expected one of: {', '.join(nodes)})"
            )
        with_router = [r.node for r in self.routers]
        if self.service is not None:
            observer = self.observer or ("observer" if "observer" in nodes else None)
            check_service(self.service, nodes, with_router, len(self.vips), observer)
        proxies = self.service.proxy_nodes(with_router) if self.service is not None else []
        for i, step in enumerate(self.steps):
            _check_impls(i, step)
            value = getattr(step, step.action)
            if step.action in ("start", "stop", "crash", "freeze", "thaw"):
                names = value if isinstance(value, list) else ([] if value == "all" else [value])
            elif step.expect is not None and step.expect.bfd is not None:
                names = [step.expect.bfd.node]
            elif step.action in SERVICE_ACTIONS:
                node = value if isinstance(value, str) else value.node
                if node not in proxies:
                    raise ValueError(
                        f"steps[{i}].{step.action.replace('_', '-')}: no haproxy runs on "
                        f"{node!r} (proxies: {', '.join(proxies) or 'none; declare `service:`'})"
                    )
                names = []
            else:
                names = []
            for name in names:
                if name not in with_router:
                    where = "expect.bfd.node" if step.action == "expect" else step.action
                    raise ValueError(
                        f"steps[{i}].{where}: no router runs on {name!r} "
                        f"(routers run on: {', '.join(with_router) or 'none'})"
                    )
            if step.expect is not None:
                _check_probed(i, step.expect, [str(v.address) for v in self.vips])
            if step.action in ("interface_down", "interface_up"):
                _check_interface(i, step.action, value.node, value.interface, self.instances)
            named = [getattr(value, k) for k in ("node", "a", "b", "port") if hasattr(value, k)]
            if step.action == "host_down":
                named = [value]
            for name in named:
                if name not in nodes and step.action not in ("port_set", "port_unset"):
                    raise ValueError(
                        f"steps[{i}].{step.action.replace('_', '-')}: unknown "
                        f"instance {name!r} (expected one of: {', '.join(nodes)})"
                    )
        return self


def _check_probed(i: int, expect: Expect, vips: list[str]) -> None:
    """A ``reachable``/``unreachable`` expectation names the address the observer probes: the
    scenario's first VIP. Another address would be judged by that VIP's probes, under the
    other's name."""
    for key in ("reachable", "unreachable"):
        address = getattr(expect, key)
        if address is not None and (not vips or str(address) != vips[0]):
            probed = f"probes {vips[0]} only" if vips else "probes nothing: declare a VIP"
            raise ValueError(f"steps[{i}].expect.{key}: the observer {probed}, not {address}")


def _check_interface(
    i: int, action: str, node: str, interface: str, instances: list[Instance]
) -> None:
    """An ``interface-down``/``-up`` names an interface the node has."""
    inst = next((x for x in instances if x.name == node), None)
    if inst is not None and interface not in inst.interface_names():
        raise ValueError(
            f"steps[{i}].{action.replace('_', '-')}.interface: {node} has no interface "
            f"{interface!r} (it has: {', '.join(inst.interface_names())})"
        )


def _check_impls(i: int, step: Step) -> None:
    """A step's ``impl`` names known implementations: a misspelt one would skip it silently."""
    from lab.routers.base import known_drivers

    known = known_drivers()
    for name in step.impl or ():
        if name not in known:
            raise ValueError(
                f"steps[{i}].impl: unknown implementation {name!r} (expected one of: "
                f"{', '.join(known)})"
            )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` on any problem."""
    path = Path(path)
    source = _display(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError(
            source, "", "no such file; `vrrp-lab scenarios` lists the bundled ones"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read it: {exc}") from None
    return parse_scenario(text, source, base_dir=path.parent)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate scenario YAML ``text``; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(source, "", f"not valid YAML: {problem}", line) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "expected a mapping with keys name, networks, instances", 1)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, source, tree) from None
    except ValueError as exc:  # raised by model validators that build their own paths
        raise ScenarioError(source, "", str(exc)) from None
    if base_dir is not None:
        object.__setattr__(scenario, "_base_dir", base_dir)
    return scenario


def scenario_base_dir(scenario: Scenario) -> Path:
    """The directory relative paths in ``scenario`` are resolved against."""
    return getattr(scenario, "_base_dir", SCENARIO_DIR)


def bundled_scenarios() -> list[Path]:
    """The scenario files shipped in the package's ``scenarios/``, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario(name: str | Path | None) -> Path:
    """Turn a CLI argument (a path, or the name of a bundled scenario) into a path.

    A bare name (no suffix, no slash) that is not a file in the working directory is a bundled
    scenario, found in the package wherever the command runs.
    """
    if name is None:
        return DEFAULT_SCENARIO
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in str(name):
        return path
    return SCENARIO_DIR / f"{name}.yaml"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the scenario format, for editors (yaml-language-server)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vrrp-lab scenario"
    return schema


def json_schema_text() -> str:
    """The JSON Schema as stable, diff-friendly text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# --- error formatting -------------------------------------------------------------------------

# Keys may be spelt with "-" as steps are (``steps[3].host-down``).
_PATH_IN_MESSAGE = re.compile(
    r"^([a-z_][a-z_-]*(?:\[\d+\])?(?:\.[a-z_][a-z_-]*(?:\[\d+\])?)*)(?:: )(.*)$", re.S
)


def first_error(exc: ValidationError, source: str, tree: yaml.Node | None) -> ScenarioError:
    """Turn pydantic's first error into one line with the YAML line of the offending field
    (``tree``, the composed YAML, finds the line; None leaves it out). Every file the lab reads
    into a model (scenarios, sweeps) reports its errors through this."""
    err = exc.errors(include_url=False)[0]
    loc = [
        p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function")))
    ]
    message = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}; check its spelling against `vrrp-lab schema`"
    elif kind == "missing":
        message = "this field is required"
    elif kind in ("ip_v4_address", "ip_v6_address", "ip_any_address") or "ip" in kind:
        message = f"{err.get('input')!r} is not a valid IP address"
    path = _dotted(loc)
    # Model validators report their own dotted path inside the message: honour it.
    if kind == "value_error":
        match = _PATH_IN_MESSAGE.match(message)
        if match:
            inner = match.group(1)
            path = f"{path}.{inner}" if path and not inner.startswith(path.split(".")[0]) else inner
            message = match.group(2)
            loc = _parse_dotted(path)
    return ScenarioError(source, path, message, _line_of(tree, loc))


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_dotted(path: str) -> list[Any]:
    loc: list[Any] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return loc


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
