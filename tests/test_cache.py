"""The response cache: keys, stored replies, a killed writer, ``selfinstruct cache``."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.errors import InputError
from selfinstruct.progress import Progress
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Completion, Message, Request, ResponseSchema
from selfinstruct.teachers.cache import (
    CAPABILITIES_MAX_AGE_S,
    CacheConfig,
    ResponseCache,
    cache_path,
    default_cache_path,
    request_key,
)
from selfinstruct.teachers.openai import OpenAIConfig
from selfinstruct.teachers.pool import TeacherPool
from tests.support.openai_server import Reply, ScriptedOpenAIServer

from .conftest import REPO

CHAT = Request(
    stage="outputs",
    messages=(Message("system", "Be brief."), Message("user", "Name a colour.")),
    max_tokens=32,
    temperature=0.7,
    top_p=0.9,
    stop=("\n\n",),
    seed=7,
    n=1,
)
REPLY = Completion(
    text="Blue.",
    finish_reason="stop",
    usage=Usage(prompt_tokens=12, completion_tokens=2),
    model="m-2024",
    latency_s=0.8,
    more=(("Red.", "stop"), ("Gre", "length")),
)


def key(request: Request = CHAT, backend: str = "openai", model: str = "m", api: str = "chat"):
    return request_key(backend, model, api, request)


def test_the_key_is_stable_and_changes_with_every_field_that_decides_the_answer():
    assert key() == key(dataclasses.replace(CHAT))
    changed = {
        "stage": "inputs",
        "messages": (Message("system", "Be brief."), Message("user", "Name a color.")),
        "max_tokens": 33,
        "temperature": 0.71,
        "top_p": 1.0,
        "stop": (),
        "seed": 8,
        "n": 2,
        "response_schema": ResponseSchema("tasks", '{"type": "object"}'),
    }
    # every Request field is covered: a field added later must be in the key too
    assert set(changed) == {f.name for f in dataclasses.fields(Request)} - {"prompt"}
    keys = {key(dataclasses.replace(CHAT, **{name: value})) for name, value in changed.items()}
    keys |= {key(backend="vllm"), key(model="m2"), key(api="completions"), key()}
    assert len(keys) == len(changed) + 4
    prompt = Request(stage="outputs", prompt="Task 1:")
    assert key(prompt) != key(dataclasses.replace(prompt, prompt="Task 1: "))
    # a role is part of a message
    other_role = (Message("user", "Be brief."), Message("user", "Name a colour."))
    assert key(dataclasses.replace(CHAT, messages=other_role)) != key()


def test_a_reply_comes_back_as_stored_and_the_first_stored_wins(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite3")
    assert cache.lookup(key()) is None
    cache.store(key(), "openai", "m", "chat", CHAT, REPLY)
    found = cache.lookup(key())
    assert found is not None
    assert (found.text, found.finish_reason, found.model, found.more) == (
        "Blue.", "stop", "m-2024", (("Red.", "stop"), ("Gre", "length")),
    )  # fmt: skip
    assert found.usage == Usage(prompt_tokens=12, completion_tokens=2)
    cache.store(key(), "openai", "m", "chat", CHAT, dataclasses.replace(REPLY, text="Green."))
    assert cache.lookup(key()).text == "Blue."
    assert cache.stats().entries == 1
    assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache.close()


def test_the_default_path_is_per_user_and_a_file_that_is_no_database_is_refused(tmp_path):
    assert default_cache_path({"XDG_CACHE_HOME": "/x"}) == Path(
        "/x/selfinstruct/responses.sqlite3"
    )
    assert default_cache_path({}) == Path.home() / ".cache/selfinstruct/responses.sqlite3"
    assert cache_path(CacheConfig(enabled=False, path=tmp_path / "a")) is None
    assert cache_path(CacheConfig(path=tmp_path / "a")) == tmp_path / "a"
    bad = tmp_path / "bad.sqlite3"
    bad.write_text("this is not a database, it is a note to self\n" * 100)
    with pytest.raises(InputError) as error:
        ResponseCache(bad)
    assert str(bad) in str(error.value) and "--no-cache" in str(error.value)


WRITER = """
import sys, itertools
from pathlib import Path
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Completion, Request
from selfinstruct.teachers.cache import ResponseCache, request_key
cache = ResponseCache(Path(sys.argv[1]))
for i in itertools.count():
    request = Request(stage="outputs", prompt=f"prompt {i} " + "x" * 3000)
    reply = Completion(text="y" * 3000, finish_reason="stop", usage=Usage(prompt_tokens=i))
    cache.store(request_key("openai", "m", "completions", request), "openai", "m",
                "completions", request, reply)
"""


def _rows(path: Path) -> int:
    with sqlite3.connect(path, timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def test_a_writer_killed_with_sigkill_leaves_a_usable_cache(tmp_path):
    path = tmp_path / "c.sqlite3"
    ResponseCache(path).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while _rows(path) < 200:  # read while it writes (WAL: readers do not block it)
            assert writer.poll() is None, "the writer died on its own"
            assert time.monotonic() < deadline, "the writer wrote too slowly"
            time.sleep(0.02)
        os.kill(writer.pid, signal.SIGKILL)  # mid-write, most likely
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    cache = ResponseCache(path)  # opens, recovers the journal
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    written = cache.stats().entries
    assert written >= 200
    first = Request(stage="outputs", prompt="prompt 0 " + "x" * 3000)
    found = cache.lookup(request_key("openai", "m", "completions", first))
    assert found is not None and found.text == "y" * 3000
    cache.store(key(), "openai", "m", "chat", CHAT, REPLY)  # and takes new rows
    assert cache.stats().entries == written + 1
    assert cache.lookup(key()).text == "Blue."
    cache.close()


def test_cache_stats_and_clear_on_the_command_line(tmp_path):
    path = tmp_path / "c.sqlite3"
    cache = ResponseCache(path)
    cache.store(key(), "openai", "m", "chat", CHAT, REPLY)
    cache.store(key(model="other"), "vllm", "other", "chat", CHAT, REPLY)
    cache.close()
    runner = CliRunner()
    shown = runner.invoke(cli, ["cache", "stats", "--cache", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "2 replies" in shown.output
    assert "openai" in shown.output and "vllm" in shown.output and "14 tokens" in shown.output

    cleared = runner.invoke(cli, ["cache", "clear", "--cache", str(path), "--model", "other"],
                            input="y\n")  # fmt: skip
    assert cleared.exit_code == 0 and "deleted 1 replies" in cleared.output
    cleared = runner.invoke(cli, ["cache", "clear", "--cache", str(path), "--yes"])
    assert "deleted 1 replies" in cleared.output
    assert _rows(path) == 0

    missing = runner.invoke(cli, ["cache", "stats", "--cache", str(tmp_path / "none.sqlite3")])
    assert missing.exit_code == 2 and "no response cache here" in missing.output


def test_cache_stats_reads_the_default_path_from_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = ResponseCache(default_cache_path())
    cache.store(key(), "openai", "m", "chat", CHAT, REPLY)
    cache.close()
    shown = CliRunner().invoke(cli, ["cache", "stats"])
    assert shown.exit_code == 0 and "1 replies" in shown.output
    assert str(tmp_path / "selfinstruct" / "responses.sqlite3") in shown.output


def test_the_progress_line_shows_cached_replies(caplog):
    progress = Progress(2, 0, quiet=True)
    with caplog.at_level("INFO", logger="selfinstruct"):
        progress.update(done=2, examples=3, rejected=1, requests=9, tokens=900, cached=7)
        progress.update(done=2, examples=3, rejected=1, requests=9, tokens=900)
    first, second = (record.getMessage() for record in caplog.records)
    assert "requests=9" in first and "cached=7" in first
    assert "cached" not in second


FINITE_WRITER = """
import sys
from pathlib import Path
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Completion, Request
from selfinstruct.teachers.cache import ResponseCache, request_key
cache = ResponseCache(Path(sys.argv[1]))
start = int(sys.argv[2])
for i in range(start, start + 300):  # half of each writer's keys are the other's too
    request = Request(stage="outputs", prompt=f"prompt {i}")
    key = request_key("openai", "m", "completions", request)
    if cache.lookup(key) is None:
        reply = Completion(text=f"reply {i} from {start}", finish_reason="stop")
        cache.store(key, "openai", "m", "completions", request, reply)
"""


def test_two_processes_write_one_cache_at_once(tmp_path):
    path = tmp_path / "c.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", FINITE_WRITER, str(path), str(start)], env=env,
                         stderr=subprocess.PIPE, text=True)
        for start in (0, 150)
    ]  # fmt: skip
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    assert _rows(path) == 450  # every key once, none lost, no "database is locked"


def test_a_cancelled_call_on_the_wire_is_stored_and_one_still_queued_is_never_sent(tmp_path):
    cache_file = tmp_path / "c.sqlite3"
    with ScriptedOpenAIServer(lambda kind, body: Reply(text="late", delay_s=0.3)) as server:
        config = OpenAIConfig(
            base_url=server.base_url, model="m", max_concurrency=1,
            adaptive_concurrency=False, probe_capabilities=False,
        )  # fmt: skip
        pool = TeacherPool({"outputs": config}, tmp_path, cache=CacheConfig(path=cache_file))
        on_wire = dataclasses.replace(CHAT, seed=1)
        queued = dataclasses.replace(CHAT, seed=2)  # waits: one request at a time

        async def main() -> None:
            await pool.start()
            calls = [
                asyncio.create_task(pool.call("outputs", request, f"c{k}", (), lambda row: None))
                for k, request in enumerate((on_wire, queued))
            ]
            await asyncio.sleep(0.1)  # the first is on the wire, the second in the queue
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            await pool.aclose()  # waits for the one on the wire

        asyncio.run(main())
        sent = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert [r.body["seed"] for r in sent] == [1]
    cache = ResponseCache(cache_file)
    found = cache.lookup(request_key("openai", "m", "chat", on_wire))
    assert found is not None and found.text == "late"
    assert cache.lookup(request_key("openai", "m", "chat", queued)) is None
    cache.close()


def test_what_a_probe_found_is_kept_for_a_day_and_only_when_it_ran(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite3")
    found = {"n": True, "seed": False}
    cache.remember_capabilities("http://h/v1", "m", "chat", found)
    cache.remember_capabilities("http://h/v1", "m2", "chat", {"n": None, "seed": True})
    assert cache.capabilities("http://h/v1", "m", "chat") == found
    assert cache.capabilities("http://h/v1", "m", "completions") is None
    assert cache.capabilities("http://h/v1", "m2", "chat") is None  # a probe that could not run
    later = time.time() + CAPABILITIES_MAX_AGE_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert cache.capabilities("http://h/v1", "m", "chat") is None  # too old: probe again
    cache.clear()
    cache.close()



def test_a_cold_run_skips_lookups_and_a_warm_one_finds_what_was_stored(tmp_path):
    """A session that starts with no reply of its backend and model in the cache does not
    look up its requests (it still stores their replies); the next session does."""
    cache_file = tmp_path / "c.sqlite3"
    first, second = dataclasses.replace(CHAT, seed=1), dataclasses.replace(CHAT, seed=2)

    def store_elsewhere() -> None:  # another process fills the cache meanwhile
        other = ResponseCache(cache_file)
        other.store(key(second), "openai", "m", "chat", second, REPLY)
        other.close()

    async def session(config: OpenAIConfig, *steps: Request | None) -> list[str]:
        pool = TeacherPool({"outputs": config}, tmp_path, cache=CacheConfig(path=cache_file))
        await pool.start()
        replies = []
        for k, step in enumerate(steps):
            if step is None:
                store_elsewhere()
            else:
                replies.append((await pool.call("outputs", step, f"c{k}", (), print)).text)
        await pool.aclose()
        return replies

    with ScriptedOpenAIServer(lambda kind, body: Reply(text="served")) as server:
        config = OpenAIConfig(base_url=server.base_url, model="m", probe_capabilities=False)
        # cold: the reply stored by the other process after the first request is not seen
        assert asyncio.run(session(config, first, None, second)) == ["served", "served"]
        assert len(server.requests) == 2
        # warm: the first run's reply and the other process's are both found
        assert asyncio.run(session(config, first, second)) == ["served", REPLY.text]
        assert len(server.requests) == 2
