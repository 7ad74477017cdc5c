"""How many rows each source gives a mixture: caps, temperature-scaled shares, apportionment.

With sizes ``n_i`` (rows available after dedup), a cap ``K`` and a temperature ``T``:

* capped sizes ``m_i = min(n_i, K)``;
* shares ``p_i ∝ w_i * m_i ** (1/T)`` (weights ``w_i`` default 1; ``T = 1`` is
  examples-proportional mixing, a larger ``T`` flattens towards equal shares);
* quotas: ``total * p_i`` rounded by largest remainder, so they add up to ``total`` exactly.

``total`` defaults to the sum of the capped sizes; so with neither ``T`` nor weights every
source gives exactly ``m_i`` rows (examples-proportional mixing with a cap, as in T5: the cap
bounds a source's *rate*). A quota above ``m_i`` takes more distinct rows while the source
has them (``n_i``) and repeats rows only beyond that (upsampling, as temperature sampling
does), unless repeats are off; then the default total is the largest one whose quotas all
fit in the ``n_i``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from selfinstruct.errors import InputError

_EPSILON = 1e-9


@dataclass(frozen=True)
class Plan:
    """Per source (in order): capped size, share and quota; and the mixture's total."""

    capped: tuple[int, ...]
    shares: tuple[float, ...]
    quotas: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.quotas)


def capped_sizes(sizes: Sequence[int], cap: int | None) -> list[int]:
    return [size if cap is None else min(size, cap) for size in sizes]


def shares(
    capped: Sequence[int], weights: Sequence[float], temperature: float | None
) -> list[float]:
    """``p_i ∝ w_i * m_i ** (1/T)``, summing to 1 (all 0 when every source is empty)."""
    exponent = 1.0 if temperature is None else 1.0 / temperature
    raw = [w * m**exponent if m > 0 else 0.0 for m, w in zip(capped, weights, strict=True)]
    whole = sum(raw)
    return [value / whole if whole > 0 else 0.0 for value in raw]


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` by largest remainder (ties: the first)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(value + _EPSILON) for value in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_mixture(
    sizes: Sequence[int],
    *,
    cap: int | None = None,
    temperature: float | None = None,
    weights: Sequence[float] | None = None,
    total: int | None = None,
    repeat: bool = True,
) -> Plan:
    """The quotas of a mixture of sources with ``sizes`` rows (see the module docstring)."""
    if cap is not None and cap < 1:
        raise InputError("must be at least 1", field="--cap")
    if temperature is not None and temperature <= 0:
        raise InputError("must be above 0", field="--temperature")
    if total is not None and total < 1:
        raise InputError("must be at least 1", field="--total")
    weights = list(weights) if weights is not None else [1.0] * len(sizes)
    capped = capped_sizes(sizes, cap)
    p = shares(capped, weights, temperature)
    proportional = temperature in (None, 1.0) and len(set(weights)) <= 1
    if total is None and proportional:
        return Plan(tuple(capped), tuple(p), tuple(capped))
    if total is None:
        total = sum(capped) if repeat else _largest_fitting_total(sizes, p)
    quotas = apportion(total, p)
    if not repeat and any(q > n for q, n in zip(quotas, sizes, strict=True)):
        most = _largest_fitting_total(sizes, p)
        raise InputError(
            f"{total} rows need repeated rows at these shares; without repeats at most {most} "
            "fit (lower --total, or allow repeats)",
            field="--total",
        )
    return Plan(tuple(capped), tuple(p), tuple(quotas))


def _largest_fitting_total(sizes: Sequence[int], p: Sequence[float]) -> int:
    """The largest total whose quotas are all within the sources' sizes."""
    fits = [n / share for n, share in zip(sizes, p, strict=True) if share > 0]
    total = math.floor(min(fits) + _EPSILON) if fits else 0
    while total < sum(sizes) and all(
        q <= n for q, n in zip(apportion(total + 1, p), sizes, strict=True)
    ):
        total += 1
    while total > 0 and any(q > n for q, n in zip(apportion(total, p), sizes, strict=True)):
        total -= 1
    return total
