"""Scenario steps: one action each, the fault names of docs/architecture.md#faults, clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab.steps import Bound, Expect, Step


def test_fault_keys_accept_design_spellings() -> None:
    assert Step.model_validate({"host-down": "ha_first"}).action == "host_down"
    assert Step.model_validate({"advert-loss": {"percent": 30}}).action == "advert_loss"
    step = Step.model_validate({"link-flap": {"node": "ha_first", "down_for": 0.2}})
    assert step.is_fault and step.title() == "link-flap node=ha_first, down_for=0.2"
    assert not Step.model_validate({"thaw": "ha_first"}).is_fault


def test_a_step_takes_exactly_one_action() -> None:
    with pytest.raises(ValidationError, match="exactly one action"):
        Step.model_validate({"stop": "a", "crash": "b"})
    with pytest.raises(ValidationError, match="exactly one action"):
        Step.model_validate({"name": "nothing"})


def test_expectations_take_exactly_one_condition() -> None:
    step = Step.model_validate({"expect": {"master": "ha_first", "within": 5}})
    assert step.expect is not None and step.expect.kind == "master"
    with pytest.raises(ValidationError, match="exactly one of"):
        Step.model_validate({"expect": {"master": "a", "backup": "b"}})
    with pytest.raises(ValidationError):
        Step.model_validate({"expect": {"master": "a", "within": 0}})


def test_bounds() -> None:
    assert Bound(max=700).check(609.0) and not Bound(max=700).check(None)
    assert not Bound(min=580, max=640).check(700) and str(Bound(min=1, max=2)) == "in [1, 2]"


def test_an_expectation_names_the_instance_it_judges_only_for_a_state() -> None:
    assert Expect(master="ha_first", instance="VI_2").instance == "VI_2"
    assert Expect(masters=["ha_first"], instance="VI_1").kind == "masters"
    with pytest.raises(ValueError, match="instance: judges a router's state, not served_by"):
        Expect(served_by="ha_first", instance="VI_1")
