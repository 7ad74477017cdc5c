"""Budget caps and prices checked against a run's state, without a server."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from selfinstruct.config import build_config
from selfinstruct.errors import InputError, validation_problem
from selfinstruct.records import TeacherCall, Usage
from selfinstruct.run.budget import Budget, price_table
from selfinstruct.run.store import RunState


def state_with(model: str, prompt: int, completion: int) -> RunState:
    state = RunState()
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
    state.record_call(TeacherCall(stage="outputs", model=model, usage=usage, latency_s=0.1))
    return state


def budget(state: RunState, **caps: object) -> Budget:
    overrides = {"budget.prices.X": {"input": 100.0, "output": 400.0}}
    overrides.update({f"budget.{key}": value for key, value in caps.items()})
    config = build_config(overrides=overrides, environ={})
    return Budget(config, state, price_table(config))


def test_cost_uses_inline_prices_over_the_shipped_table():
    spent = budget(state_with("X", 1000, 500))
    assert spent.cost() == pytest.approx((1000 * 100 + 500 * 400) / 1e6)
    assert budget(state_with("gpt-4o-mini-2024-07-18", 1_000_000, 0)).cost() == 0.15
    assert budget(state_with("nobody-prices-this", 1, 1)).cost() is None


def test_caps_are_reached_at_the_limit_not_before():
    state = state_with("X", 1000, 500)  # 1,500 tokens, $0.30
    assert budget(state, max_tokens=1501).reached() is None
    assert "token budget reached: 1,500 of max 1,500" in budget(state, max_tokens=1500).reached()
    assert budget(state, max_cost_usd=0.31).reached() is None
    assert "cost budget reached: $0.3000" in budget(state, max_cost_usd=0.3).reached()


def test_a_cost_cap_needs_a_price_for_every_model_used_or_to_be_used():
    capped = budget(state_with("old-unpriced", 1, 1), max_cost_usd=1.0)
    with pytest.raises(InputError, match="needs a price for model 'old-unpriced'"):
        capped.check_prices(["X"])
    budget(state_with("old-unpriced", 1, 1)).check_prices(["new-unpriced"])  # no cap: no check


def test_a_validation_problem_never_echoes_a_secret():
    with pytest.raises(InputError) as error:
        build_config(overrides={"teacher.api_key": 12345678}, environ={})
    assert "12345678" not in str(error.value) and "teacher.api_key" in str(error.value)
    with pytest.raises(InputError) as error:
        build_config(overrides={"num_instructions": "many"}, environ={})
    assert "(got 'many')" in str(error.value)


def test_validation_problem_counts_the_problems_it_does_not_show():
    class Two(BaseModel):
        a: int
        b: int

    with pytest.raises(ValidationError) as error:
        Two.model_validate({})
    assert validation_problem(error.value) == ("a", "missing field (and 1 more problem)")
