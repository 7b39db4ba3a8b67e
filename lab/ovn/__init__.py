"""``sdn: {engine: ovn}``: the real Open vSwitch and OVN as a network's fabric.

:mod:`lab.ovn.neutron` maps Neutron ports to OVN logical switch ports (pure);
:mod:`lab.ovn.engine` runs OVS and OVN inside a lab's fabric namespace, and
:mod:`lab.ovn.hypervisor` a further compute host's chassis in a namespace of its own (both
with :mod:`lab.ovn.daemons`' tools). This package imports nothing, so that importing the
pure mapping pulls in no process machinery.
"""
