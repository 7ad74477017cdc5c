"""Progress display: a tqdm bar (kept / rejected / requests / tokens, ETA) or plain log lines."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("selfinstruct")


class Progress:
    """Shows how many instructions are finished out of the target, plus running totals."""

    def __init__(self, total: int, done: int, *, quiet: bool, note: str = "") -> None:
        self.quiet = quiet
        self.note = note
        self._last_log = 0.0
        self._last_update = 0.0
        self._bar: tqdm | None = None
        if not quiet:
            self._bar = tqdm(
                total=total,
                initial=done,
                desc="instructions",
                unit="task",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
                mininterval=0.2 if sys.stderr.isatty() else 5.0,
            )
        self.total = total
        self.done = done

    def due(self, done: int) -> bool:
        """Whether an update is worth making: ``done`` moved, or 0.25 s passed since the last
        (the pipeline asks after every request; the totals need not be summed each time)."""
        return done != self.done or time.monotonic() - self._last_update >= 0.25

    def update(
        self,
        done: int,
        examples: int,
        rejected: int,
        requests: int,
        tokens: int,
        cost: float | None = None,
        cached: int = 0,
    ) -> None:
        self._last_update = time.monotonic()
        fields = {
            "examples": examples,
            "rejected": rejected,
            "requests": requests,
            "tokens": _short(tokens),
        }
        if cached:
            fields["cached"] = cached
        if cost:
            fields["cost"] = f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"
        if self.note:
            fields["teacher"] = self.note
        if self._bar is not None:
            self._bar.set_postfix(fields, refresh=False)
            self._bar.update(done - self.done)
        elif time.monotonic() - self._last_log >= 10 or done >= self.total:
            self._last_log = time.monotonic()
            summary = " ".join(f"{key}={value}" for key, value in fields.items())
            log.info("instructions %d/%d %s", done, self.total, summary)
        self.done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _short(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count / 1000:.0f}k"
    return str(count)
