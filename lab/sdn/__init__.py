"""The emulated cloud SDN: port security, broadcast policy and an ARP controller on the fabric.

Modules, each small and replaceable:

- :mod:`lab.sdn.profiles` — the knobs, the named profiles and the scenario's ``sdn:`` block
  (pure pydantic; imported by the topology model, so it imports nothing else of the lab);
- :mod:`lab.sdn.ruleset` — the nftables ``bridge`` table as text, and set-element diffs (pure);
- :mod:`lab.sdn.ports` — allowed address pairs changed at run time, shared by the runner and the
  ``vrrp-lab port-set`` command;
- :mod:`lab.sdn.controller` — the controller process (``python -m lab.sdn.controller``);
- :mod:`lab.sdn.client` — the runner's handle on that process (events, cache, liveness);
- :mod:`lab.sdn.fabric_sdn` — applies all of it to a lab's fabric;
- :mod:`lab.sdn.probe` — frame and neighbour helpers shared by tests and benchmarks;
- :mod:`lab.sdn.cli` — the ``port-set`` / ``port-unset`` subcommands.

This package's ``__init__`` imports nothing, so that the topology model can import the profiles
without pulling in the controller.
"""
