"""Ctrl-C and SIGTERM as a clean stop: the callback runs on the event loop, nothing is killed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(callback: Callable[[str], None]) -> Iterator[None]:
    """Call ``callback(signal_name)`` on SIGINT/SIGTERM while inside; restore on exit.

    Must be entered inside a running event loop; where the loop cannot handle signals (not
    the main thread, Windows) it does nothing and the default behaviour stays.
    """
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, callback, signal.Signals(signum).name)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
