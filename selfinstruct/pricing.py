"""Token usage per stage and teacher model, and what it cost, from a user-editable price table.

The table maps a model name to USD per 1 million input (prompt) and output (completion)
tokens. The shipped one is ``selfinstruct/prices.yaml``; ``load_prices(path)`` lays a user's
table (YAML or TOML, same layout) over it. A model found in neither has an unknown cost:
``None``, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfinstruct.config import read_config_file
from selfinstruct.errors import InputError
from selfinstruct.records import STAGES, TeacherCall

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
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        problem = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
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
