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
IGNORE`` (the first answer stored wins). From the event loop, :meth:`ResponseCache.get` reads
on a connection of its own (an indexed read of a WAL file: microseconds, never blocked by a
writer) and :meth:`ResponseCache.put` only queues the row; the queue is stored in one
transaction once it holds :data:`WRITE_BATCH` rows or is :data:`WRITE_EVERY_S` old, and at
close. So a request costs no thread hop and no commit of its own (a writer thread was tried:
its contention for the GIL slowed the event loop's own socket calls more than it saved).
SQLite's journal keeps the file usable when a process is killed at any instant; rows still
queued then are lost, which costs a repeated request, never a wrong answer.
"""

from __future__ import annotations

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
from selfinstruct.teachers import json_codec
from selfinstruct.teachers.base import Completion, Request

#: bumped when the key's recipe or the stored reply's shape changes (old rows then miss)
KEY_VERSION = 2
#: queued rows are stored together once there are this many, or the oldest is this old
WRITE_BATCH = 256
WRITE_EVERY_S = 1.0
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


_CAPABILITIES_SCHEMA = """
CREATE TABLE IF NOT EXISTS capabilities (
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    api TEXT NOT NULL,
    found TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (url, model, api)
)
"""
#: how long what a server was found to honour (the capability probe) is re-used
CAPABILITIES_MAX_AGE_S = 24 * 3600.0


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
        "request": _request_fields(request),
    }
    return hashlib.sha256(json_codec.canonical(document)).hexdigest()


def _request_fields(request: Request) -> dict[str, Any]:
    """Every field of ``request`` as JSON data: the common shapes directly (this runs once a
    request), anything else through :func:`_plain`."""
    fields: dict[str, Any] = {}
    for name in _REQUEST_FIELDS:
        value = getattr(request, name)
        if name == "messages" and value is not None:
            value = [[message.role, message.content] for message in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif not (value is None or isinstance(value, (str, int, float, bool))):
            value = _plain(value)
        fields[name] = value
    return fields


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(Request))


def _reply_json(completion: Completion) -> str:
    return json_codec.dumps(
        {
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "more": [list(choice) for choice in completion.more],
            "model": completion.model,
            "usage": completion.usage.model_dump(),
        }
    ).decode()


def _completion(reply: str) -> Completion:
    data = json_codec.loads(reply)
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
        self._lock = threading.Lock()  # the writing connection (``cache clear`` may run aside)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect(busy_timeout_s)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(_SCHEMA)
            self._db.execute(_CAPABILITIES_SCHEMA)
            self._reader = self._connect(busy_timeout_s)  # the event loop's lookups
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"cannot use this response cache ({exc}); pass another --cache PATH, "
                "--no-cache, or remove the file",
                path=path,
                field="cache.path",
            ) from None
        self._queued: list[tuple[Any, ...]] = []
        self._queued_since = 0.0

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    # -- synchronous ----------------------------------------------------------------------

    def holds(self, backend: str, model: str) -> bool:
        """Whether any reply of ``model`` over ``backend`` is stored (one scan at most)."""
        found = self._reader.execute(
            "SELECT 1 FROM responses WHERE backend = ? AND model = ? LIMIT 1", (backend, model)
        ).fetchone()
        return found is not None

    def lookup(self, key: str) -> Completion | None:
        row = self._reader.execute("SELECT reply FROM responses WHERE key = ?", (key,)).fetchone()
        return _completion(row[0]) if row else None

    def store(
        self, key: str, backend: str, model: str, api: str, request: Request, reply: Completion
    ) -> None:
        """Store one reply now (:meth:`put` queues rows and stores many at once)."""
        with self._lock:
            self._insert([_row(key, backend, model, api, request, reply)])

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?,?,?,?,?,?,?,?,?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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

    def capabilities(self, url: str, model: str, api: str) -> dict[str, bool | None] | None:
        """What the capability probe found ``url`` honours for ``model`` on ``api``, if it ran
        less than :data:`CAPABILITIES_MAX_AGE_S` ago (None: probe again)."""
        row = self._reader.execute(
            "SELECT found, created_at FROM capabilities WHERE url = ? AND model = ? AND api = ?",
            (url, model, api),
        ).fetchone()
        if row is None or time.time() - row[1] > CAPABILITIES_MAX_AGE_S:
            return None
        found: dict[str, bool | None] = json.loads(row[0])
        return found

    def remember_capabilities(
        self, url: str, model: str, api: str, found: Mapping[str, bool | None]
    ) -> None:
        """Keep a probe's findings; one that could not run everywhere (a None) is not kept."""
        if any(value is None for value in found.values()):
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO capabilities VALUES (?,?,?,?,?)",
                (url, model, api, json.dumps(dict(found), sort_keys=True), time.time()),
            )

    def clear(self, model: str | None = None) -> int:
        """Delete every reply (or ``model``'s) and what probes found, and give the space back;
        how many replies were deleted."""
        with self._lock:
            if model is None:
                cursor = self._db.execute("DELETE FROM responses")
                self._db.execute("DELETE FROM capabilities")
            else:
                cursor = self._db.execute("DELETE FROM responses WHERE model = ?", (model,))
                self._db.execute("DELETE FROM capabilities WHERE model = ?", (model,))
            deleted = cursor.rowcount
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
        return int(deleted)

    def close(self) -> None:
        """Store what is queued, then close."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._db.close()
            self._reader.close()

    def flush(self) -> None:
        """Store the queued rows now, in one transaction."""
        rows, self._queued = self._queued, []
        if rows:
            with self._lock:
                self._insert(rows)

    # -- from the event loop --------------------------------------------------------------

    async def get(self, key: str) -> Completion | None:
        """The stored reply for ``key``, or None (read at once, on the reader connection)."""
        return self.lookup(key)

    async def put(
        self, key: str, backend: str, model: str, api: str, request: Request, reply: Completion
    ) -> None:
        """Queue ``reply`` under ``key`` (an existing row is kept); store the queue once it is
        full or old enough."""
        if not self._queued:
            self._queued_since = time.monotonic()
        self._queued.append(_row(key, backend, model, api, request, reply))
        old = time.monotonic() - self._queued_since > WRITE_EVERY_S
        if len(self._queued) >= WRITE_BATCH or old:
            self.flush()


def _row(
    key: str, backend: str, model: str, api: str, request: Request, reply: Completion
) -> tuple[Any, ...]:
    usage = reply.usage
    return (key, backend, model, api, str(request.stage), _reply_json(reply),
            usage.prompt_tokens, usage.completion_tokens, time.time())  # fmt: skip
