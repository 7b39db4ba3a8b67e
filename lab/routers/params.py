"""The parameters a generated ``keepalived.conf`` is made from, as :mod:`vrrp.config`'s model.

The lab has one model of a keepalived configuration, :mod:`vrrp.config`'s: its parser reads
the user's files, its renderer writes every file the lab generates, and its checks are the only
place a range (VRID, priority, centiseconds) or a combination (VRRPv2 with a sub-second
interval, ``vmac_xmit_base`` without ``use_vmac``) is judged. :class:`RouterParams` is the
lab's short spelling of one ``vrrp_instance``: it builds that model, reports the model's errors
as its problems (named by its own field names, which the scenario's ``routers:`` entries share),
and renders through the model's renderer.

A router may also run BFD to its peers (:class:`BfdParams`): one ``bfd_instance`` per peer,
named after the peer's node, a ``track_bfd`` entry for each in the ``vrrp_instance`` (weighted,
unweighted, or none), and the bundled daemon's ``bfd_takeover``.

This module imports nothing of the lab, so the scenario schema (:mod:`lab.routers.schema`) can
validate a ``routers:`` entry by building the same model.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from vrrp.config import (
    BfdInstance,
    Config,
    ConfigError,
    GlobalDefs,
    TrackBfd,
    TrackedFile,
    TrackFile,
    TrackInterface,
    TrackScript,
    VrrpInstance,
    VrrpScript,
    render,
)
from vrrp.timers import Timers

__all__ = [
    "BfdParams",
    "CheckParams",
    "FileParams",
    "RouterParams",
    "field_message",
    "master_down_interval",
    "skew_time",
]

#: The model's keywords that :class:`RouterParams` (and a scenario's ``routers:`` entry) spell
#: differently; every other keyword is the field's own name.
_FIELD_OF_KEYWORD = {
    "virtual_router_id": "vrid",
    "virtual_ipaddress": "vips",
    "unicast_peer": "unicast_peers",
    "vrrp_instance": "instance",
}


def field_message(err: ConfigError, instance: str) -> str:
    """The model's error as ``field: what is wrong``, in :class:`RouterParams`' field names.

    The model says ``vrrp_instance NAME: virtual_router_id: expected ...`` for a check that
    spans fields; the instance is implied here, and the keyword becomes the field it came from.
    """
    message = err.message.removeprefix(f"vrrp_instance {instance}: ")
    keyword, sep, rest = message.partition(": ")
    if not sep or " " in keyword:
        return message
    return f"{_FIELD_OF_KEYWORD.get(keyword, keyword)}: {rest}"


#: The model's BFD keywords that :class:`BfdParams` spells differently (a ``track_bfd`` entry
#: can only be wrong here by its weight: the lab writes its names).
_BFD_FIELD_OF_KEYWORD = {"track_bfd weight": "weight", "track_bfd": "weight"}

#: The statement that asks the bundled daemon for the drafts' fast takeover (``vrrp.spec``
#: reads it from the statements the model keeps; keepalived warns about it and ignores it).
BFD_TAKEOVER = "bfd_takeover"


@dataclasses.dataclass(frozen=True)
class BfdParams:
    """BFD from one router to each of its peers, as a scenario's ``bfd:`` spells it.

    Times are seconds (keepalived's file writes milliseconds); the defaults are keepalived
    2.2.7's. ``track`` says what a session going down does to the ``vrrp_instance``:
    ``unweighted`` (keepalived's FAULT while it is not Up), ``weighted`` (the priority moves by
    ``weight`` while it is Up) or ``none`` (BFD runs, VRRP ignores it). ``takeover`` adds the
    bundled daemon's ``bfd_takeover``. Every range is the model's.
    """

    min_rx: float = 0.010
    min_tx: float = 0.010
    multiplier: int = 5
    idle_tx: float = 1.0
    track: Literal["unweighted", "weighted", "none"] = "unweighted"
    weight: int = 0
    takeover: bool = False

    def problem(self) -> str | None:
        """What the combination of fields gets wrong (the model judges each value)."""
        if self.track not in ("unweighted", "weighted", "none"):
            return f"track: expected unweighted, weighted or none, got {self.track!r}"
        if self.track == "weighted" and not self.weight:
            return "weight: expected a non-zero weight with track: weighted"
        if self.track != "weighted" and self.weight:
            return f"weight: expected none with track: {self.track} (or track: weighted)"
        if self.takeover and self.track == "none":
            return "takeover: expected a tracked session (track: unweighted or weighted)"
        return None

    def instances(
        self, peers: tuple[tuple[str, str], ...], source: str | None
    ) -> list[BfdInstance]:
        """One ``bfd_instance`` per ``(name, address)`` peer, from ``source``."""
        return [
            BfdInstance(
                name,
                address,  # type: ignore[arg-type]  # coerced by the model
                source_ip=source,  # type: ignore[arg-type]
                min_rx=self.min_rx,
                min_tx=self.min_tx,
                idle_tx=self.idle_tx,
                multiplier=self.multiplier,
            )
            for name, address in peers
        ]

    def tracks(self, peers: tuple[tuple[str, str], ...]) -> list[TrackBfd]:
        """The ``track_bfd`` entries of the instance (none with ``track: none``)."""
        if self.track == "none":
            return []
        weight = self.weight if self.track == "weighted" else None
        return [TrackBfd(name, weight) for name, _ in peers]


@dataclasses.dataclass(frozen=True)
class CheckParams:
    """A health check tracked by the router's instance: a ``vrrp_script`` of that name, and a
    ``track_script`` entry naming it. Times are whole seconds (keepalived reads no less);
    the defaults and every range are the model's (keepalived 2.2.7's). ``weight`` 0 puts the
    instance in FAULT while the check fails; a negative weight lowers its priority then."""

    name: str
    script: str
    interval: int = 1
    timeout: int | None = None
    weight: int = 0
    rise: int = 1
    fall: int = 1
    init_fail: bool = False

    def vrrp_script(self) -> VrrpScript:
        """The ``vrrp_script`` block."""
        return VrrpScript(
            self.name,
            self.script,
            interval=self.interval,
            timeout=self.timeout,
            weight=self.weight,
            rise=self.rise,
            fall=self.fall,
            init_fail=self.init_fail,
        )


@dataclasses.dataclass(frozen=True)
class FileParams:
    """A file tracked by the router's instance: a ``track_file`` block of that name, and an
    entry naming it. The file holds a number; ``weight`` 0 puts the instance in FAULT while it
    is non-zero, another weight moves the priority by number × weight (FAULT at -254 or less).
    ``init``: the number written at start when the file is missing. Ranges are the model's."""

    name: str
    path: str
    weight: int = 1
    reverse: bool = False
    init: int | None = None

    def block(self) -> TrackedFile:
        """The ``track_file`` block."""
        return TrackedFile(
            self.name, self.path, weight=self.weight, reverse=self.reverse, init_value=self.init
        )


def _bfd_message(err: ConfigError) -> str:
    """The model's error about a BFD keyword as ``bfd.field: ...``."""
    message = err.message
    if message.startswith("bfd_instance "):
        # `bfd_instance NAME: field: ...`: the instance is the peer, implied here.
        message = message.split(": ", 1)[1]
    keyword, sep, rest = message.partition(": ")
    if not sep:
        return f"bfd: {message}"
    if "expected milliseconds" in rest:
        # The model states its ranges as keepalived.conf writes them; the field is seconds.
        rest += " (the field is in seconds)"
    return f"bfd.{_BFD_FIELD_OF_KEYWORD.get(keyword, keyword)}: {rest}"


def skew_time(priority: int, advert_int: float, version: int = 3) -> float:
    """RFC Skew_Time in seconds of a backup of ``priority`` (:mod:`vrrp.timers`): scaled by
    the interval for v3 (RFC 5798 §6.1), not for v2 (RFC 3768 §6.1)."""
    return Timers.of(version, priority, advert_int).skew_time


def master_down_interval(priority: int, advert_int: float, version: int = 3) -> float:
    """RFC Master_Down_Interval in seconds, 3·Adv + Skew_Time, of a backup of ``priority``
    (:mod:`vrrp.timers`)."""
    return Timers.of(version, priority, advert_int).master_down_interval


@dataclasses.dataclass(frozen=True)
class RouterParams:
    """The parameters of one generated ``vrrp_instance``; invalid ones raise ``ValueError``.

    Field names follow keepalived's keywords, shortened where the scenario's ``routers:``
    entries shorten them (``vrid``, ``vips``, ``unicast_peers``). ``advert_int`` may be
    sub-second with version 3 (whole centiseconds, the v3 wire unit); version 2 needs whole
    seconds. Every check is the model's (:meth:`problems`).
    """

    interface: str
    priority: int
    vrid: int = 1
    vips: tuple[str, ...] = ()
    advert_int: float = 1.0
    version: int = 3
    state: str = "BACKUP"
    instance: str = "vrrp_1"
    unicast_src_ip: str | None = None
    unicast_peers: tuple[str, ...] = ()
    use_vmac: bool = False
    vmac_xmit_base: bool = False
    nopreempt: bool = False
    check_unicast_src: bool = False
    """Drop unicast adverts from strangers (keepalived's ``check_unicast_src``)."""
    bfd: BfdParams | None = None
    """BFD to each of ``bfd_peers``, tracked by the instance; None: no BFD."""
    bfd_peers: tuple[tuple[str, str], ...] = ()
    """``(name, address)`` of each BFD peer: a ``bfd_instance NAME`` to that neighbour."""
    bfd_source: str | None = None
    """The BFD sessions' ``source_ip`` (keepalived binds its send socket only when it is set);
    default: ``unicast_src_ip``."""
    checks: tuple[CheckParams, ...] = ()
    """Health checks the instance tracks (``vrrp_script`` / ``track_script``)."""
    files: tuple[FileParams, ...] = ()
    """Files the instance tracks (``track_file``)."""
    track_interface: tuple[TrackInterface, ...] = ()
    """Interfaces of the node the instance tracks (``track_interface``)."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])

    def to_config(self) -> Config:
        """The validated :mod:`vrrp.config` model of these parameters (``ConfigError`` if
        they are invalid)."""
        bfd_instances, tracks = self._bfd()
        instance = VrrpInstance(
            self.instance,
            self.interface,
            self.vrid,
            state=self.state,  # type: ignore[arg-type]  # the model checks the word
            priority=self.priority,
            advert_int=self.advert_int,
            version=self.version,
            nopreempt=self.nopreempt,
            check_unicast_src=self.check_unicast_src,
            use_vmac=self.use_vmac,
            vmac_xmit_base=self.vmac_xmit_base,
            unicast_src_ip=self.unicast_src_ip,  # type: ignore[arg-type]  # coerced by the model
            unicast_peer=list(self.unicast_peers),  # type: ignore[arg-type]
            virtual_ipaddress=list(self.vips),  # type: ignore[arg-type]
            track_bfd=tracks,
            track_script=[TrackScript(check.name) for check in self.checks],
            track_file=[TrackFile(tracked.name) for tracked in self.files],
            track_interface=list(self.track_interface),
        )
        try:
            scripts = [check.vrrp_script() for check in self.checks]
        except ConfigError as err:
            raise ConfigError(f"checks: {err.message}") from None
        try:
            files = [tracked.block() for tracked in self.files]
        except ConfigError as err:
            raise ConfigError(f"files: {err.message}") from None
        # keepalived runs no script as root unless told whose the scripts are.
        settings = GlobalDefs(enable_script_security=True, script_user="root")
        try:
            return Config(
                global_defs=settings if scripts else GlobalDefs(),
                instances=[instance],
                bfd_instances=bfd_instances,
                vrrp_scripts=scripts,
                track_files=files,
            )
        except ConfigError as err:
            # A BFD block's own error, or one of the instance's track_bfd entries.
            if err.message.startswith("bfd_instance ") or "track_bfd" in err.message:
                raise ConfigError(_bfd_message(_unscoped(err, self.instance))) from None
            raise

    def _bfd(self) -> tuple[list[BfdInstance], list[TrackBfd]]:
        """The ``bfd_instance`` blocks and ``track_bfd`` entries of :attr:`bfd` (ConfigError
        as ``bfd.field: ...``)."""
        if self.bfd is None:
            return [], []
        problem = self.bfd.problem()
        if problem is not None:
            raise ConfigError(f"bfd.{problem}")
        if not self.bfd_peers:
            raise ConfigError("bfd: expected another router to run BFD with, got none")
        try:
            return (
                self.bfd.instances(self.bfd_peers, self.bfd_source or self.unicast_src_ip),
                self.bfd.tracks(self.bfd_peers),
            )
        except ConfigError as err:
            raise ConfigError(_bfd_message(err)) from None

    def problems(self) -> list[str]:
        """What the model finds wrong with these parameters, as ``field: ...`` (empty when
        valid). An error stops the model, so there is at most one of those; what keepalived
        would only warn about counts too, since a config the lab writes should draw no
        warning (an instance with no VIP is one)."""
        try:
            config = self.to_config()
        except ConfigError as err:
            if err.message.startswith(("bfd", "checks", "files")):
                return [err.message]
            return [field_message(err, self.instance)]
        return [
            field_message(ConfigError(caution), self.instance)
            for caution in config.instances[0].cautions(config.global_defs)
        ]

    @property
    def skew_time(self) -> float:
        """RFC Skew_Time of this router, in seconds."""
        return skew_time(self.priority, self.advert_int, self.version)

    @property
    def master_down_interval(self) -> float:
        """RFC Master_Down_Interval of this router when it is backup, in seconds."""
        return master_down_interval(self.priority, self.advert_int, self.version)

    def render(self) -> str:
        """The ``keepalived.conf`` text for these parameters: the model's renderer's, plus
        ``bfd_takeover`` (a statement the model keeps but does not render) when asked."""
        text = render(self.to_config())
        if self.bfd is not None and self.bfd.takeover:
            # The vrrp_instance is the file's last block: the statement goes before its end.
            head, _, tail = text.rpartition("}")
            text = f"{head}    {BFD_TAKEOVER}\n}}{tail}"
        return text


def _unscoped(err: ConfigError, instance: str) -> ConfigError:
    """``err`` without the ``vrrp_instance NAME: `` the model puts before an instance's error."""
    return ConfigError(err.message.removeprefix(f"vrrp_instance {instance}: "))
