"""The OpenAI Batch API teacher's journal: append-only JSONL files in its ``batch_dir``.

``batches.jsonl`` holds every submitted batch (later lines update earlier ones) and
``results.jsonl`` every answer (``custom_id`` -> response body), each row flushed and fsynced,
so a killed run resumes without paying twice. A torn last line (a killed write) is skipped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

BATCHES_FILE = "batches.jsonl"
RESULTS_FILE = "results.jsonl"


@dataclass
class BatchRecord:
    """One submitted batch as journaled in ``batches.jsonl`` (later lines update earlier ones)."""

    batch_id: str
    input_file_id: str
    endpoint: str
    custom_ids: list[str]
    status: str = "submitted"
    output_file_id: str | None = None
    error_file_id: str | None = None
    submitted_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "input_file_id": self.input_file_id,
            "endpoint": self.endpoint,
            "custom_ids": self.custom_ids,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "submitted_at": self.submitted_at,
        }


class BatchJournal:
    """Append-only JSONL files in ``batch_dir`` (or nothing at all when it is ``None``)."""

    def __init__(self, batch_dir: Path | None) -> None:
        self.batch_dir = batch_dir
        self._files: dict[str, IO[str]] = {}

    def read(self, name: str) -> Iterable[dict[str, Any]]:
        """Every complete JSON object line; a torn last line (a killed write) is skipped."""
        if self.batch_dir is None:
            return
        path = self.batch_dir / name
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    log.warning("%s:%d: skipping an unreadable line", path, number)
                    continue
                if isinstance(row, dict):
                    yield row

    def append(self, name: str, row: dict[str, Any]) -> None:
        if self.batch_dir is None:
            return
        handle = self._files.get(name)
        if handle is None:
            self.batch_dir.mkdir(parents=True, exist_ok=True)
            path = self.batch_dir / name
            handle = path.open("a", encoding="utf-8")
            if path.stat().st_size and not _ends_with_newline(path):
                handle.write("\n")  # end a torn line so the next row is readable
            self._files[name] = handle
        handle.write(json.dumps(row, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
