"""The response cache: a teacher's raw replies kept in SQLite, content-addressed by request.

The key is the SHA-256 of a canonical JSON of what decides an answer: the backend kind, the
model, the API, and every field of the :class:`~selfinstruct.teachers.base.Request` (the
stage, the prompt or the full message list, and every sampling parameter: ``max_tokens``,
``temperature``, ``top_p``, ``stop``, ``seed``, ``n`` and any field added later). The base URL
is left out (one model served from two URLs answers alike) and so is the API key, which is
never stored in any form. A row holds the reply as the teacher returned it (texts, finish
reasons, token usage, model), never a parse of it: a changed parser or filter re-uses the
answers, a changed prompt misses.

One file serves many runs and processes at once: WAL journal, a busy timeout, ``INSERT OR
IGNORE`` (the first answer stored wins), one connection per process guarded by a lock, and the
calls from the event loop run in a thread (:meth:`ResponseCache.get` / :meth:`put`). SQLite's
journal keeps the file usable when a writer is killed at any instant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfinstruct.errors import InputError
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Completion, Request

#: bumped when the key's recipe or the stored reply's shape changes (old rows then miss)
KEY_VERSION = 1
#: the file under the user's cache directory that runs share by default
DEFAULT_FILE = Path("selfinstruct") / "responses.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    api TEXT NOT NULL,
    stage TEXT NOT NULL,
    reply TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


class CacheConfig(BaseModel):
    """``cache``: where teacher replies are kept for re-use (``--cache PATH``, ``--no-cache``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(
        default=True, description="Re-use stored teacher replies and store new ones."
    )
    path: Path | None = Field(
        default=None,
        description="SQLite file (unset: $XDG_CACHE_HOME/selfinstruct/responses.sqlite3, "
        "else ~/.cache/selfinstruct/responses.sqlite3).",
    )


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/selfinstruct/responses.sqlite3``, else under ``~/.cache``."""
    environ = os.environ if environ is None else environ
    root = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / DEFAULT_FILE


def cache_path(config: CacheConfig) -> Path | None:
    """The file a run uses, or None when the cache is off."""
    if not config.enabled:
        return None
    return config.path if config.path is not None else default_cache_path()


def open_cache(config: CacheConfig) -> ResponseCache | None:
    """The run's cache, opened (an :class:`InputError` when unusable), or None when off."""
    path = cache_path(config)
    return ResponseCache(path) if path is not None else None


def _plain(value: Any) -> Any:
    """``value`` as JSON data with a stable form (dataclasses, pydantic models and schemas)."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def request_key(backend: str, model: str, api: str, request: Request) -> str:
    """The cache key of ``request`` sent to ``model`` over ``backend``'s ``api``."""
    document = {
        "v": KEY_VERSION,
        "backend": backend,
        "model": model,
        "api": api,
        "request": _plain(request),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reply_json(completion: Completion) -> str:
    return json.dumps(
        {
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "more": [list(choice) for choice in completion.more],
            "model": completion.model,
            "usage": completion.usage.model_dump(),
        },
        ensure_ascii=False,
    )


def _completion(reply: str) -> Completion:
    data = json.loads(reply)
    return Completion(
        text=data["text"],
        finish_reason=data["finish_reason"],
        usage=Usage(**data["usage"]),
        model=data["model"],
        more=tuple((text, reason) for text, reason in data["more"]),
    )


@dataclass(frozen=True)
class CacheStats:
    """What a cache file holds: rows, file size, and per (backend, model) rows and tokens."""

    path: Path
    entries: int
    size_bytes: int
    by_model: list[tuple[str, str, int, int]]  # backend, model, entries, tokens stored


class ResponseCache:
    """One cache file, opened (and created) at once; a bad file is an :class:`InputError`."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"cannot use this response cache ({exc}); pass another --cache PATH, "
                "--no-cache, or remove the file",
                path=path,
                field="cache.path",
            ) from None

    # -- synchronous ----------------------------------------------------------------------

    def lookup(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT reply FROM responses WHERE key = ?", (key,)).fetchone()
        return _completion(row[0]) if row else None

    def store(
        self, key: str, backend: str, model: str, api: str, request: Request, reply: Completion
    ) -> None:
        usage = reply.usage
        row = (key, backend, model, api, str(request.stage), _reply_json(reply),
               usage.prompt_tokens, usage.completion_tokens, time.time())  # fmt: skip
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO responses VALUES (?,?,?,?,?,?,?,?,?)", row)

    def stats(self) -> CacheStats:
        with self._lock:
            (entries,) = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()
            by_model = self._db.execute(
                "SELECT backend, model, COUNT(*), SUM(prompt_tokens + completion_tokens) "
                "FROM responses GROUP BY backend, model ORDER BY backend, model"
            ).fetchall()
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return CacheStats(self.path, entries, size, [tuple(row) for row in by_model])

    def clear(self, model: str | None = None) -> int:
        """Delete every row (or ``model``'s) and give the space back; how many were deleted."""
        with self._lock:
            if model is None:
                cursor = self._db.execute("DELETE FROM responses")
            else:
                cursor = self._db.execute("DELETE FROM responses WHERE model = ?", (model,))
            deleted = cursor.rowcount
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
        return int(deleted)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- from the event loop --------------------------------------------------------------

    async def get(self, key: str) -> Completion | None:
        """The stored reply for ``key`` (read in a thread), or None."""
        return await asyncio.to_thread(self.lookup, key)

    async def put(
        self, key: str, backend: str, model: str, api: str, request: Request, reply: Completion
    ) -> None:
        """Store ``reply`` under ``key`` (in a thread); an existing row is kept."""
        await asyncio.to_thread(self.store, key, backend, model, api, request, reply)
