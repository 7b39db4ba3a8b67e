"""Drivers that run the stand-ins as lab routers, one per flaw: the scripted ones (``liar.py``
for VRRP, ``bfd_liar.py`` for BFD) and the bundled daemon with one tracker rule broken
(``mutant.py``, for the K rows).

``liar_iut("ttl254")`` registers a :class:`lab.routers.Router` subclass named ``liar-ttl254``
with :func:`lab.routers.register_driver` and returns the :class:`lab.conformance.Iut` column
that runs it, so the conformance checks drive it exactly as they drive keepalived: through
``make_router``, the rendered ``keepalived.conf`` and the notify FIFO. ``bfd_liar_iut`` does
the same for the BFD stand-in (``bfdliar-<flaw>``), ``mutant_iut`` for the mutants
(``mutant-<flaw>``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from lab.conformance import Iut, iut
from lab.routers import Router, register_driver
from lab.routers.bundled import BundledRouter

LIAR = Path(__file__).with_name("liar.py")


class LiarRouter(Router):
    """The stand-in, started like a daemon: ``python liar.py -f WRAPPER --flaw FLAW``."""

    impl: ClassVar[str] = "liar"
    program: ClassVar[str] = sys.executable
    install_hint: ClassVar[str] = "it is the Python interpreter running the tests"
    flaw: ClassVar[str] = "none"

    def command(self) -> list[str]:
        """The stand-in with the lab's wrapper config and this driver's flaw."""
        return [self.program, str(LIAR), "-f", self.wrapper_path, "--flaw", self.flaw]


def liar_iut(flaw: str) -> Iut:
    """The column of a stand-in that breaks ``flaw`` (``none``: an honest one)."""
    name = f"liar-{flaw}"
    register_driver(
        type(f"LiarRouter_{flaw.replace('-', '_')}", (LiarRouter,), {"impl": name, "flaw": flaw})
    )
    return iut(name)


BFD_LIAR = Path(__file__).with_name("bfd_liar.py")


class BfdLiarRouter(LiarRouter):
    """The BFD stand-in (``bfd_liar.py``), started the same way."""

    impl: ClassVar[str] = "bfdliar"

    def command(self) -> list[str]:
        """The BFD stand-in with the lab's wrapper config and this driver's flaw."""
        return [self.program, str(BFD_LIAR), "-f", self.wrapper_path, "--flaw", self.flaw]


def bfd_liar_iut(flaw: str) -> Iut:
    """The column of a BFD stand-in that breaks ``flaw`` (``none``: an honest one)."""
    name = f"bfdliar-{flaw}"
    register_driver(
        type(
            f"BfdLiarRouter_{flaw.replace('-', '_')}",
            (BfdLiarRouter,),
            {"impl": name, "flaw": flaw},
        )
    )
    return iut(name)


MUTANT = Path(__file__).with_name("mutant.py")


class MutantRouter(BundledRouter):
    """The bundled daemon with one tracker rule broken (``mutant.py``), driven as bundled."""

    impl: ClassVar[str] = "mutant"
    flaw: ClassVar[str] = "none"

    def command(self) -> list[str]:
        """``mutant.py --flaw FLAW`` followed by the bundled daemon's own arguments."""
        return [
            self.program,
            str(MUTANT),
            "--flaw",
            self.flaw,
            *self.standard_flags(),
            "--control",
            self.control_path,
        ]


def mutant_iut(flaw: str) -> Iut:
    """The column of the bundled daemon with ``flaw`` (``none``: the daemon as it is)."""
    name = f"mutant-{flaw}"
    register_driver(
        type(
            f"MutantRouter_{flaw.replace('-', '_')}", (MutantRouter,), {"impl": name, "flaw": flaw}
        )
    )
    return iut(name)
