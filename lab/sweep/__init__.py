"""Convergence sweeps: ``vrrp-lab bench``.

A sweep file (:mod:`lab.sweep.spec`) names a base scenario and the axes to vary; it expands into
cells (:class:`lab.sweep.record.Cell`), each run for a number of trials (:mod:`lab.sweep.trial`)
by the executor (:mod:`lab.sweep.executor`), which appends every trial to ``results.jsonl``
(:mod:`lab.sweep.results`) as it ends. The summary (:mod:`lab.sweep.summary`), the plots
(:mod:`lab.sweep.plots`) and ``bench compare`` (:mod:`lab.sweep.compare`) read them back.
"""
