"""The response cache in whole runs against a scripted server: a re-run after a filter change
sends no request, a changed decision misses, --no-cache, savings in the manifest."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.records import TeacherCall
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import read_run, rows

SECRET = "sk-planted-SECRET-cache-77a1"


def generate(server: ScriptedOpenAIServer, out: Path, cache: Path, *extra: str) -> None:
    args = [
        "generate", "--base-url", server.base_url, "--model", "X", "--api", "chat",
        "-n", "25", "--quiet", "--cache", str(cache), "--out", str(out), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def generation_requests(server: ScriptedOpenAIServer, since: int) -> Counter[str]:
    """Requests per stage after the first ``since``, the capability probe left out."""
    stages = (r.headers.get("x-selfinstruct-stage") for r in server.requests[since:])
    return Counter(stage for stage in stages if stage != "probe")


def cache_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def examples_by_instruction(out: Path) -> dict[str, set[tuple[str, str, str]]]:
    found: dict[str, set[tuple[str, str, str]]] = {}
    for row in read_run(out)["examples"]:
        found.setdefault(row.instruction, set()).add((row.input, row.output, row.id))
    return found


def test_a_rerun_with_another_rouge_threshold_sends_no_request(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cache = tmp_path / "responses.sqlite3"
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.005) as server:
        generate(server, tmp_path / "a", cache)
        first, stored = len(server.requests), cache_rows(cache)
        # only the filter changes; no decision does (no candidate scores in (0.7, 0.75])
        generate(server, tmp_path / "b", cache, "--set", "filters.rouge_threshold=0.75")
        sent = sum(generation_requests(server, first).values())
        probed = len(server.requests) - first - sent
        probed_first = sum(
            r.headers.get("x-selfinstruct-stage") == "probe" for r in server.requests[:first]
        )
    # what the server honours was probed once, and re-used from the cache by the re-run
    assert probed_first > 0 and probed == 0
    # jobs count towards the target in the order they started, so the re-run needs only
    # replies run 1 got: the server counts nothing, the cache grows by nothing
    assert sent == 0 and cache_rows(cache) == stored

    a, b = read_run(tmp_path / "a"), read_run(tmp_path / "b")
    assert b["manifest"].fingerprint["rouge_threshold"] == "0.75"
    # the same instructions, in the same order, with the same ids
    assert [(r.id, r.instruction) for r in b["instructions"]] == [
        (r.id, r.instruction) for r in a["instructions"]
    ]
    # the same examples, from the same instructions (timing does not choose which finish)
    old, new = examples_by_instruction(tmp_path / "a"), examples_by_instruction(tmp_path / "b")
    assert len(new) == 25 and new == old

    # every call of the re-run was a hit: recorded, marked, nothing spent
    calls = rows(tmp_path / "b" / "requests.jsonl", TeacherCall)
    hits = [call for call in calls if call.cached]
    assert len(hits) == len(calls) > 0
    assert all(call.usage.total_tokens == 0 and call.saved.total_tokens > 0 for call in hits)
    spent = sum(u.total_tokens for u in b["manifest"].usage.values())
    assert spent == sum(call.usage.total_tokens for call in calls if not call.cached)
    saved = sum(call.saved.total_tokens for call in hits)
    assert b["manifest"].cache["hits"] == len(hits)
    assert b["manifest"].cache["misses"] == 0
    assert b["manifest"].cache["saved_tokens"] == saved > 0
    first_calls = rows(tmp_path / "a" / "requests.jsonl", TeacherCall)
    assert a["manifest"].cache["misses"] == len(first_calls) > 0
    assert a["manifest"].cache["path"] == str(cache)
    # the key never reaches the cache file
    assert SECRET.encode() not in cache.read_bytes()


def test_a_changed_decision_misses_and_no_cache_sends_everything_again(tmp_path):
    cache = tmp_path / "responses.sqlite3"
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.005) as server:
        generate(server, tmp_path / "a", cache)
        first = len(server.requests)
        # a stricter threshold rejects instructions run 1 kept: what follows them changes
        generate(server, tmp_path / "b", cache, "--set", "filters.rouge_threshold=0.6")
        second = len(server.requests)
        misses = generation_requests(server, first)
        generate(server, tmp_path / "c", cache, "--no-cache")
        uncached = generation_requests(server, second)

    b = read_run(tmp_path / "b")
    assert b["manifest"].cache["hits"] > 0  # the rounds before the first changed decision
    # every recorded miss was sent (and a request cut off at the target was sent, not recorded)
    assert 0 < b["manifest"].cache["misses"] <= sum(misses.values())
    c = read_run(tmp_path / "c")
    assert c["manifest"].cache["path"] is None
    calls = rows(tmp_path / "c" / "requests.jsonl", TeacherCall)
    assert not any(call.cached for call in calls)
    assert sum(uncached.values()) >= len(calls) > 0


def test_a_budget_does_not_count_cached_replies_as_spent(tmp_path):
    cache = tmp_path / "responses.sqlite3"
    price = ["--set", "budget.prices.X={input: 1.0, output: 2.0}"]  # USD per 1M tokens
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        generate(server, tmp_path / "a", cache, *price)
        spent = sum(u.total_tokens for u in read_run(tmp_path / "a")["manifest"].usage.values())
        # a cap well under what run 1 spent: answered from the cache, the re-run completes
        generate(server, tmp_path / "b", cache, *price, "--max-tokens", str(spent // 4))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["status"] == "complete", manifest["stop_reason"]
    assert manifest["cache"]["saved_tokens"] > spent // 4
    saved = [call.saved for call in rows(tmp_path / "b" / "requests.jsonl", TeacherCall)
             if call.cached]  # fmt: skip
    usd = sum(u.prompt_tokens * 1.0 + u.completion_tokens * 2.0 for u in saved) / 1e6
    assert manifest["cache"]["saved_cost_usd"] == pytest.approx(usd) and usd > 0
