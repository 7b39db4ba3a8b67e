"""keepalived.conf parser and renderer for the VRRP subset used by the lab.

The reference is keepalived 2.2.7.  The module reads and writes the part of
``keepalived.conf`` that concerns VRRP: ``global_defs`` (VRRP-related keys),
``bfd_instance``, ``vrrp_script`` and ``track_file`` blocks (with ``track_bfd``,
``track_script`` and ``track_file`` in instances), ``vrrp_instance`` and ``vrrp_sync_group``
blocks, with
``include``, comments and keepalived's rules for braces and quoting.

Three entry points:

* :func:`parse` / :func:`load` turn text or a file into a :class:`Config`.
  Invalid values raise :class:`ConfigError` whose ``str`` is
  ``FILE:LINE: keyword: what was expected``; unknown keywords are collected as
  :class:`ConfigWarning` in ``Config.warnings`` (keepalived also carries on), and every
  statement the parser does not model is kept, with its file, line and scope, as a
  :class:`Statement` in ``Config.unused``.
* :func:`render` turns a :class:`Config` back into text that this parser and
  keepalived 2.2.7 (``keepalived -t``) both accept, with
  ``parse(render(c)) == c``.
* The dataclasses themselves are meant to be built by hand, e.g.
  ``VrrpInstance("vi_1", "eth0", 51, priority=150, virtual_ipaddress=["10.0.0.10/24"])``;
  strings are accepted wherever an address or a sub-object is expected and are
  converted on construction.

Field names are the keepalived keywords, so the model reads like the file.  A
field left at ``None`` means "not configured": keepalived then derives the value
(from ``global_defs``, the state, the priority, ...), and the ``effective_*``
helpers compute what keepalived would use.

Deliberate differences from keepalived, all on the strict side because this
model drives a conformance lab and must not silently disagree with the daemon:

* Anything keepalived reports as a configuration error and then "fixes" (e.g.
  priority 300 -> 100, fractional VRRPv2 ``advert_int`` -> rounded, ``nopreempt``
  with state MASTER -> cleared) is a :class:`ConfigError` here.
* ``advert_int`` must be a whole number of centiseconds (the VRRPv3 wire unit).
* ``interface`` is required (keepalived lets unicast instances omit it), and
  extra words after a keyword's value are an error (keepalived ignores them),
  except the keepalived-1.3 ``dev IFACE`` after ``unicast_src_ip`` and peers,
  which is recorded.  Note that keepalived 2.2.7 warns ``invalid number`` about
  a peer's ``dev`` (it reads the peer options as ``name value`` pairs) but runs.
* A missing ``include`` file is an error (keepalived only logs it).
* The ``{ }`` block of an unknown keyword is not interpreted (keepalived
  would try to interpret its contents at the current level); it is kept, as the
  unknown statement's ``block``, in ``Config.unused``.
* Only the ``include`` form of the include directives is supported, and neither
  ``$DEFINITIONS``, ``@conditionals`` nor ``~SEQ``.

The package, from the bottom up: :mod:`.errors`; :mod:`.values` (the field domains: each
range is declared and checked there once); :mod:`.lexer` (keepalived's tokeniser and
``include``); :mod:`.commands` (the scripts the daemon runs); :mod:`.bfd`, :mod:`.scripts` and
:mod:`.files` (the tracked blocks' dataclasses and their checks; :mod:`.tracked`, what every
entry naming one shares); :mod:`.sync_groups` (``vrrp_sync_group`` and its rules);
:mod:`.model` (the other dataclasses and all their checks); :mod:`.keywords` and
:mod:`.tracker_tables` (the keyword tables: spelling, converter, field, rendering);
:mod:`.parser` and :mod:`.render`, which walk those tables.
"""

from .bfd import BfdInstance, TrackBfd
from .errors import ConfigError, ConfigWarning
from .files import TrackedFile, TrackFile
from .model import (
    TOP,
    Authentication,
    Config,
    GlobalDefs,
    NotifyFifo,
    NotifyScript,
    Statement,
    TrackInterface,
    UnicastPeer,
    VirtualIP,
    VrrpInstance,
)
from .parser import load, parse
from .processes import TrackedProcess, TrackProcess
from .render import render
from .scripts import TrackScript, VrrpScript
from .sync_groups import SyncGroup
from .values import (
    VRRP_MAX_VIPS,
    VRRP_PRIO_DFL,
    VRRP_PRIO_OWNER,
    IPAddress,
    IPInterface,
    State,
)

__all__ = [
    "TOP",
    "VRRP_MAX_VIPS",
    "VRRP_PRIO_DFL",
    "VRRP_PRIO_OWNER",
    "Authentication",
    "BfdInstance",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "GlobalDefs",
    "IPAddress",
    "IPInterface",
    "NotifyFifo",
    "NotifyScript",
    "State",
    "Statement",
    "SyncGroup",
    "TrackBfd",
    "TrackFile",
    "TrackInterface",
    "TrackProcess",
    "TrackScript",
    "TrackedFile",
    "TrackedProcess",
    "UnicastPeer",
    "VirtualIP",
    "VrrpInstance",
    "VrrpScript",
    "load",
    "parse",
    "render",
]
