"""vrrp-lab: a network-namespace lab for VRRP, with an emulated cloud SDN and an observer.

The entry point is :class:`Lab`::

    from lab import Lab

    with Lab.from_scenario("scenarios/seed.yaml") as lab:
        print(lab.node("observer").run("ping -c1 10.200.51.32").stdout)
"""

from lab.lab import Lab

__all__ = ["Lab"]
