"""The parameters a generated ``keepalived.conf`` is made from, as :mod:`vrrp.config`'s model.

The lab has one model of a keepalived configuration, :mod:`vrrp.config`'s: its parser reads
the user's files, its renderer writes every file the lab generates, and its checks are the only
place a range (VRID, priority, centiseconds) or a combination (VRRPv2 with a sub-second
interval, ``vmac_xmit_base`` without ``use_vmac``) is judged. :class:`RouterParams` is the
lab's short spelling of one ``vrrp_instance``: it builds that model, reports the model's errors
as its problems (named by its own field names, which the scenario's ``routers:`` entries share),
and renders through the model's renderer.

This module imports nothing of the lab, so the scenario schema (:mod:`lab.routers.schema`) can
validate a ``routers:`` entry by building the same model.
"""

from __future__ import annotations

import dataclasses

from vrrp.config import Config, ConfigError, VrrpInstance, render
from vrrp.timers import Timers

__all__ = ["RouterParams", "field_message", "master_down_interval", "skew_time"]

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

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])

    def to_config(self) -> Config:
        """The validated :mod:`vrrp.config` model of these parameters (``ConfigError`` if
        they are invalid)."""
        instance = VrrpInstance(
            self.instance,
            self.interface,
            self.vrid,
            state=self.state,  # type: ignore[arg-type]  # the model checks the word
            priority=self.priority,
            advert_int=self.advert_int,
            version=self.version,
            nopreempt=self.nopreempt,
            use_vmac=self.use_vmac,
            vmac_xmit_base=self.vmac_xmit_base,
            unicast_src_ip=self.unicast_src_ip,  # type: ignore[arg-type]  # coerced by the model
            unicast_peer=list(self.unicast_peers),  # type: ignore[arg-type]
            virtual_ipaddress=list(self.vips),  # type: ignore[arg-type]
        )
        return Config(instances=[instance])

    def problems(self) -> list[str]:
        """What the model finds wrong with these parameters, as ``field: ...`` (empty when
        valid). An error stops the model, so there is at most one of those; what keepalived
        would only warn about counts too, since a config the lab writes should draw no
        warning (an instance with no VIP is one)."""
        try:
            config = self.to_config()
        except ConfigError as err:
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
        """The ``keepalived.conf`` text for these parameters: the model's renderer's."""
        return render(self.to_config())
