"""Prices, what a run cost, and its cost and token caps.

The price table maps a model name to USD per 1 million input (prompt) and output (completion)
tokens. The shipped one is ``selfinstruct/run/prices.yaml``; ``load_prices(path)`` lays a user's
table (YAML or TOML, same layout) over it. A model found in neither has an unknown cost:
``None``, never a guess. :class:`Budget` checks a run's ``budget`` caps against its state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfinstruct.config import RunConfig, read_config_file
from selfinstruct.errors import InputError, validation_problem
from selfinstruct.records import STAGES, TeacherCall, Usage
from selfinstruct.run.store import RunState, load_state

SHIPPED_PRICES = Path(__file__).with_name("prices.yaml")
PER_TOKENS = 1_000_000
# A dated snapshot suffix: gpt-4o-mini-2024-07-18, gpt-4-0613, gpt-3.5-turbo-0125.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


class Price(BaseModel):
    """USD per 1M tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, Price] = Field(default_factory=dict)


class PriceTable:
    """Model name -> :class:`Price`; names match case-insensitively, snapshots fall back."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}

    def __len__(self) -> int:
        return len(self._prices)

    def lookup(self, model: str) -> Price | None:
        key = model.strip().lower()
        if key in self._prices:
            return self._prices[key]
        base = _SNAPSHOT.sub("", key)
        return self._prices.get(base)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for these tokens, or None when the model has no price."""
        price = self.lookup(model)
        if price is None:
            return None
        return (prompt_tokens * price.input + completion_tokens * price.output) / PER_TOKENS


def read_price_file(path: Path) -> dict[str, Price]:
    """One price file, validated; problems name the file and the field."""
    data = read_config_file(path)
    try:
        return _PriceFile.model_validate(data).models
    except ValidationError as exc:
        where, problem = validation_problem(exc)
        raise InputError(
            f"{problem} (expected models: {{NAME: {{input: USD, output: USD}}}})",
            path=path,
            field=where,
        ) from None


def load_prices(path: Path | None = None, overrides: dict[str, Price] | None = None) -> PriceTable:
    """The shipped table, with ``path``'s entries and then ``overrides`` laid over it."""
    prices = read_price_file(SHIPPED_PRICES)
    if path is not None:
        prices.update(read_price_file(path))
    prices.update(overrides or {})
    return PriceTable(prices)


def price_table(config: RunConfig) -> PriceTable:
    """A run's prices: shipped table < ``budget.prices_file`` < inline ``budget.prices``."""
    inline = {model: Price(**price.model_dump()) for model, price in config.budget.prices.items()}
    return load_prices(config.budget.prices_file, inline)


def usage_cost(usage_by_model: dict[str, Usage], prices: PriceTable) -> float | None:
    """USD for each model's tokens, summed; None if some model used has no price."""
    total = 0.0
    for model, usage in usage_by_model.items():
        cost = prices.cost(model, usage.prompt_tokens, usage.completion_tokens)
        if cost is None:
            return None
        total += cost
    return total


def run_cost(out: Path, prices: PriceTable) -> float | None:
    """USD a run directory's requests cost, or None if a model used has no price."""
    return usage_cost(load_state(out, repair=False).usage_by_model, prices)


class Budget:
    """A run's cost and token caps (``config.budget``) checked against its live state."""

    def __init__(self, config: RunConfig, state: RunState, prices: PriceTable) -> None:
        self.caps = config.budget
        self.state = state
        self.prices = prices

    def cost(self) -> float | None:
        """USD spent so far over all sessions, or None if some model used has no price."""
        return usage_cost(self.state.usage_by_model, self.prices)

    def check_prices(self, models: Iterable[str]) -> None:
        """A cost cap needs a price for every teacher model (and for models used earlier)."""
        if self.caps.max_cost_usd is None:
            return
        used = set(models) | set(self.state.usage_by_model)
        unpriced = sorted(model for model in used if self.prices.lookup(model) is None)
        if unpriced:
            raise InputError(
                f"--max-cost needs a price for model {unpriced[0]!r}: add it to budget.prices "
                "in the config (input/output USD per 1M tokens) or to budget.prices_file",
                field="budget.max_cost_usd",
            )

    def reached(self) -> str | None:
        """Why no new request may start (a cap is reached), or None."""
        tokens = self.state.total_tokens
        if self.caps.max_tokens is not None and tokens >= self.caps.max_tokens:
            return f"token budget reached: {tokens:,} of max {self.caps.max_tokens:,}"
        if self.caps.max_cost_usd is not None:
            cost = self.cost() or 0.0  # every model has a price: check_prices made sure
            if cost >= self.caps.max_cost_usd:
                return f"cost budget reached: ${cost:.4f} of max ${self.caps.max_cost_usd:.4f}"
        return None


@dataclass
class UsageLine:
    """Requests and tokens of one (stage, model), and their cost (None: model not priced)."""

    stage: str
    model: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_lines(calls: Iterable[TeacherCall], prices: PriceTable) -> list[UsageLine]:
    """Teacher calls grouped by (stage, model), in stage order, each with its cost."""
    lines: dict[tuple[str, str], UsageLine] = {}
    for call in calls:
        line = lines.setdefault((call.stage, call.model), UsageLine(call.stage, call.model))
        line.requests += 1
        line.errors += call.error is not None
        line.prompt_tokens += call.usage.prompt_tokens
        line.completion_tokens += call.usage.completion_tokens
    order = {stage: index for index, stage in enumerate(STAGES)}
    result = sorted(lines.values(), key=lambda line: (order.get(line.stage, 99), line.model))
    for line in result:
        line.cost = prices.cost(line.model, line.prompt_tokens, line.completion_tokens)
    return result


def total_cost(lines: Iterable[UsageLine]) -> tuple[float, bool]:
    """``(sum of the known costs, whether every line with tokens had a price)``."""
    known, complete = 0.0, True
    for line in lines:
        if line.cost is None:
            complete = complete and line.total_tokens == 0
        else:
            known += line.cost
    return known, complete


def format_usd(value: float | None) -> str:
    """``$0.0123``-style with sensible precision; ``unknown`` for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"
