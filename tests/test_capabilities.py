"""The capability probe against real HTTP servers on 127.0.0.1: one that honours n, list
prompts, seed and JSON schemas, the scripted teacher (n only, or nothing with ignore_n),
and no server."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from selfinstruct.config import build_config
from selfinstruct.pipeline import run_pipeline
from selfinstruct.teachers.capabilities import probe_server
from selfinstruct.teachers.openai_wire import make_client
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

ALL = {"n", "list_prompts", "seed", "json_schema", "json_object_schema"}


def honouring(kind, body):
    """A server like vLLM's: n choices, one per listed prompt, text set by the seed, JSON
    when a schema is asked for."""
    if "response_format" in body:
        return Reply(json.dumps({"ok": True}))
    prompt = body.get("prompt")
    choices = len(prompt) if isinstance(prompt, list) else body.get("n", 1)
    return Reply(f"word-{body.get('seed')}", choices=choices)


def probe(url: str, api: str) -> dict:
    async def main() -> dict:
        client = make_client(url, "not-needed", 5.0)
        try:
            return await probe_server(client, "m", api)
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_a_server_that_honours_everything(api):
    with ScriptedOpenAIServer(honouring) as server:
        assert probe(server.base_url, api) == dict.fromkeys(ALL, True)
        stages = {r.headers.get("x-selfinstruct-stage") for r in server.requests}
    assert stages == {"probe"}


SCRIPTED = dict.fromkeys(ALL, False) | {"n": True}


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_the_scripted_teacher_honours_n_only(api):
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        assert probe(server.base_url, api) == SCRIPTED
    with ScriptedOpenAIServer(SelfInstructResponder(), ignore_n=True) as server:
        assert probe(server.base_url, api) == dict.fromkeys(ALL, False)


def test_a_seed_that_changes_nothing_is_not_honoured():
    with ScriptedOpenAIServer(lambda kind, body: Reply("always the same")) as server:
        assert probe(server.base_url, "completions")["seed"] is False


def test_a_seed_that_repeats_only_while_the_prompt_is_warm_is_not_honoured():
    """Like llama-cpp-python's server: the seeded text depends on whether the prompt is the one
    evaluated last, so in a run, where prompts interleave, a seed does not repeat a reply."""
    last: list[object] = [None]

    def warm_only(kind, body):
        prompt = body.get("prompt") or body.get("messages")
        warm, last[0] = prompt == last[0], prompt
        return Reply(f"word-{body.get('seed')}-{'warm' if warm else 'cold'}")

    for api in ("chat", "completions"):
        with ScriptedOpenAIServer(warm_only) as server:
            assert probe(server.base_url, api)["seed"] is False


def test_an_unreachable_server_is_unknown_not_a_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        assert probe(f"http://127.0.0.1:{port}/v1", "chat") == dict.fromkeys(ALL, None)


def probes(server: ScriptedOpenAIServer) -> int:
    return sum(1 for r in server.requests if r.headers.get("x-selfinstruct-stage") == "probe")


def test_the_manifest_records_each_endpoints_capabilities(tmp_path):
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        overrides = {"teacher.base_url": server.base_url, "teacher.model": "X"}
        overrides["num_instructions"] = 2
        run_pipeline(build_config(overrides=overrides, environ={}), tmp_path / "run")
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["endpoints"][server.base_url]["capabilities"] == SCRIPTED
        assert probes(server) > 0

        before = probes(server)
        overrides["teacher.probe_capabilities"] = False
        run_pipeline(build_config(overrides=overrides, environ={}), tmp_path / "quiet")
        assert probes(server) == before
        manifest = json.loads((tmp_path / "quiet" / "manifest.json").read_text())
        assert "capabilities" not in manifest["endpoints"][server.base_url]
