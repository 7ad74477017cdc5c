"""Stage-1 rounds under concurrency, made deterministic: what a round shows and when it decides.

Rounds run concurrently, so "the kept instructions so far" depends on timing. Two rules make
every round's prompt and every decision depend only on round numbers:

* **demonstrations**: round ``k`` draws its machine demonstrations from the instructions kept
  by rounds ``< k - lag`` (:data:`DEMO_LAG_ROUNDS`), waiting (without holding a teacher slot)
  until those are decided, which happens only when a round that old is still in flight;
* **decisions**: a round's candidates are judged (heuristics, then ROUGE-L against every kept
  instruction) only once every earlier round is decided: a small reorder buffer, so the kept
  instructions, their ids and the ROUGE-L pool grow in round order.

The same config and seeds then send the same requests whatever the timing (and a re-run is
answered from the response cache). A round whose request fails for good is given up: later
rounds go on without it; that, and a run stopped by a budget, are the cases where two runs
can differ. Fruitless rounds are counted in round order too.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from selfinstruct.records import Instruction
from selfinstruct.run.store import RunState

#: round k shows machine instructions kept by rounds < k - DEMO_LAG_ROUNDS
DEMO_LAG_ROUNDS = 16
#: stop after this many stage-1 requests in a row that keep no instruction
MAX_FRUITLESS_REQUESTS = 50


class Prefix(Sequence[str]):
    """The first ``size`` items of a list that only grows, without copying them."""

    def __init__(self, items: list[str], size: int) -> None:
        self._items, self._size = items, size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:  # an int (what random.sample uses) or a slice
        if isinstance(index, slice):
            return self._items[: self._size][index]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return self._items[index % self._size]


class RoundOrder:
    """Numbers stage-1 rounds from the run's state, holds each round's demonstrations and its
    decisions back until the rounds they depend on are decided, and counts fruitless rounds."""

    def __init__(self, state: RunState, lag: int = DEMO_LAG_ROUNDS) -> None:
        self.state = state
        self.lag = lag
        #: every round below this number is decided (or given up)
        self.decided = state.next_request
        self._finished_early: set[int] = set()
        self._changed = asyncio.Event()
        self.fruitless = 0
        self._texts: list[str] = []  # kept instructions' texts, in order, as far as shown yet

    @asynccontextmanager
    async def numbered(self) -> AsyncIterator[int]:
        """The next round's number; leaving the block finishes the round, decided or not."""
        number = self.state.next_request
        self.state.next_request += 1
        try:
            yield number
        finally:
            self.finish(number)

    async def machine_pool(
        self, number: int, instructions: Sequence[Instruction]
    ) -> Sequence[str]:
        """The texts round ``number`` may show: those kept by rounds < ``number - lag``; a
        view of one growing list (copying the pool for every round cost O(pool) a round, ~1.5
        ms CPU an instruction at 20,000)."""
        cutoff = number - self.lag
        await self._until(lambda: self.decided >= cutoff)
        size = bisect.bisect_left(instructions, cutoff, key=lambda row: row.request)
        known = len(self._texts)
        if size > known:
            self._texts.extend(row.instruction for row in instructions[known:size])
        return Prefix(self._texts, size)

    async def turn(self, number: int) -> None:
        """Wait until every round before ``number`` is decided."""
        await self._until(lambda: self.decided >= number)

    def finish(self, number: int) -> None:
        """Round ``number`` is decided (at its turn) or given up (at any time)."""
        if number != self.decided:
            self._finished_early.add(number)
            return
        self.decided += 1
        while self.decided in self._finished_early:
            self._finished_early.discard(self.decided)
            self.decided += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def count(self, kept: int) -> str | None:
        """Count a decided round that kept ``kept``; why the run should stop, or None."""
        self.fruitless = 0 if kept else self.fruitless + 1
        if self.fruitless < MAX_FRUITLESS_REQUESTS:
            return None
        return (
            f"{MAX_FRUITLESS_REQUESTS} stage-1 requests in a row kept no instruction; "
            "see rejected.jsonl for why (a weak teacher or too strict filters)"
        )

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()
