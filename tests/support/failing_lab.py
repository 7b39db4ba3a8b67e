"""Run by test_cli.py: a lab test that fails, to exercise --keep-lab-on-failure."""

import pytest


@pytest.mark.lab
def test_fails_with_a_lab(lab) -> None:
    assert lab.node("observer").run("hostname").stdout.strip() == "not-the-observer"
