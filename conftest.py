"""Top-level pytest configuration.

The vrrp-lab plugin itself (fixtures ``lab``, ``module_lab``, ``make_lab``, the ``lab`` marker and
``--keep-lab-on-failure``) is loaded through its ``pytest11`` entry point once the package is
installed (``make test`` does that). Test-directory conftests add what only this repo's tests need.
"""
