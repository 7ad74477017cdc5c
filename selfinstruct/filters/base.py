"""The filter shape shared by every rule: keep (``None``) or drop with a reason (:class:`Drop`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Drop:
    """Why a candidate was dropped: a short machine-readable ``reason`` plus free-form details."""

    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class TextFilter(Protocol):
    """One rule over a candidate instruction. ``filter`` returns ``None`` to keep it."""

    name: str

    def filter(self, text: str) -> Drop | None: ...


@runtime_checkable
class Remembers(Protocol):
    """A stateful filter that must be told about every text that was kept (seeds included)."""

    def add(self, text: str) -> object: ...
