"""What ``selfinstruct export`` is asked for, and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ExportOptions:
    """A row layout (``layout``) written to a container (``to``), plus the row selection.

    ``to`` is ``json``, ``jsonl``, ``parquet`` or ``hf``; None means "from the ``out``
    suffix" (see :func:`selfinstruct.export.containers.resolve_container`), or nothing
    written when ``out`` is None too (a Hub push only).
    """

    layout: str = "alpaca"
    to: str | None = None
    out: Path | None = None
    system: str | None = None
    split: dict[str, float] | None = None
    seed: int = 42
    shuffle: bool = False
    max_per_instruction: int | None = None
    include_seeds: bool = False
    paper_templates: bool = False
    eos: str = ""


@dataclass
class ExportResult:
    """The rendered rows per split (the name ``""`` when not split) and the paths written."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)
    instructions: int = 0
    skipped_tail: bool = False
    #: examples a layout could not render (preference, ranked), by reason
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}
