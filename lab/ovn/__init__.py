"""``sdn: {engine: ovn}``: the real Open vSwitch and OVN as a network's fabric.

:mod:`lab.ovn.neutron` maps Neutron ports to OVN logical switch ports (pure);
:mod:`lab.ovn.engine` runs OVS and OVN inside a lab's fabric namespace. This package imports
nothing, so that importing the pure mapping pulls in no process machinery.
"""
