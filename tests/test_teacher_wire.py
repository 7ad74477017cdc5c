"""The OpenAI wire format (selfinstruct.teachers.openai_wire): bodies, parsing, which errors are
retried and how they read, the retry policy, and the stage header on real HTTP requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.errors import TeacherUnavailable
from selfinstruct.teachers import Message, Request, json_codec
from selfinstruct.teachers import openai_wire as wire
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.openai import OpenAITeacher
from selfinstruct.teachers.openai_batch import OpenAIBatchTeacher
from tests.support.batch_server import BatchServer
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.scripted_teacher import GENERIC_REPLY, SelfInstructResponder

from .conftest import run_teacher

URL = "http://127.0.0.1:9/v1"
CHAT = Request(stage="judge", messages=(Message("user", "Is this good?"),), seed=3, stop=("\n",))


def real_error(
    *faults: Reply | str,
    timeout_s: float = 5.0,
    url: str | None = None,
    http_client: wire.HttpClient = "auto",
):
    """The exception the ``openai`` SDK raises for one chat request to a scripted server that
    answers with ``faults`` (or to ``url``), and the URL it went to."""

    async def ask(base_url: str) -> BaseException:
        client = wire.make_client(base_url, "", timeout_s, http_client)
        try:
            await client.chat.completions.create(**wire.request_body("chat", "m", CHAT))
        except openai.OpenAIError as exc:
            return exc
        finally:
            await client.close()
        raise AssertionError("the request did not fail")

    if url is not None:
        return asyncio.run(ask(url)), url
    with ScriptedOpenAIServer(faults=list(faults), timeout_delay_s=1.0, retry_after_s=2) as server:
        return asyncio.run(ask(server.base_url)), server.base_url


def closed_port_url() -> str:
    with ScriptedOpenAIServer() as server:
        return server.base_url


@pytest.mark.parametrize(
    ("fault", "retryable", "health", "described"),
    [
        (Reply(status=429, text="slow down"), True, "alive", "HTTP 429 from URL: slow down"),
        (Reply(status=408, text="too slow"), True, "down", "HTTP 408 from URL: too slow"),
        ("500", True, "down", "HTTP 500 from URL"),
        ("503", True, "down", "HTTP 503 from URL"),
        (Reply(status=400, text="bad seed"), False, "alive", "HTTP 400 from URL: bad seed"),
        (Reply(status=401, text="bad key"), False, "alive", "HTTP 401 from URL: bad key"),
        ("timeout", True, "down", "timed out after 0.3s waiting for URL"),
        (None, True, "down", "cannot reach URL: connection refused"),
        (Reply(drop_connection=True), True, "down", "cannot reach URL: "),
    ],
)
@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_error_classification_and_one_line_descriptions(
    fault, retryable, health, described, http_client
):
    """The same for the SDK's two HTTP clients (aiohttp's calls a refused connection a
    timeout; the description does not)."""
    if fault is None:
        exc, url = real_error(url=closed_port_url(), http_client=http_client)
    else:
        exc, url = real_error(fault, timeout_s=0.3, http_client=http_client)
    assert wire.is_retryable(exc) is retryable
    assert wire.endpoint_health(exc) == health
    text = wire.describe(exc, url, timeout_s=0.3)
    assert text.startswith(described.replace("URL", url)), text
    assert "\n" not in text


def test_malformed_answers_are_retryable_and_other_errors_are_not():
    malformed = wire.MalformedResponse("no choices")
    assert wire.is_retryable(malformed) and wire.endpoint_health(malformed) == "alive"
    assert wire.describe(malformed, URL, 1) == f"malformed response from {URL}: no choices"
    assert not wire.is_retryable(ValueError("odd"))
    assert wire.describe(ValueError("odd"), URL, 1) == f"ValueError from {URL}: odd"


def test_scrub_masks_the_key_and_keeps_one_short_line():
    text = wire.scrub("bad key sk-SECRET\n  for\tyou " + "x" * 900, "sk-SECRET")
    assert "SECRET" not in text and "***" in text
    assert "\n" not in text and len(text) == 500


def test_retry_policy_backs_off_exponentially_and_honours_retry_after():
    policy = wire.RetryPolicy(max_retries=2, base_s=0.1, max_s=0.35, max_retry_after_s=5)
    assert 0.1 <= policy.delay(1) <= 0.2
    assert 0.2 <= policy.delay(2) <= 0.3
    assert policy.delay(10) == 0.35
    rate_limited, _ = real_error("429")  # the scripted server asks for 2 s
    assert wire.retry_after(rate_limited) == 2
    assert policy.delay(1, rate_limited) == 2
    assert wire.RetryPolicy(max_retry_after_s=0.5).delay(1, rate_limited) == 0.5
    overloaded, _ = real_error("503")
    assert policy.should_retry(overloaded, 2)
    assert not policy.should_retry(overloaded, 3)  # the retries are used up
    refused, _ = real_error(Reply(status=400, text="no"))
    assert not policy.should_retry(refused, 1)


def test_request_body_and_parse_response():
    body = wire.request_body("chat", "m", CHAT)
    assert body == {
        "model": "m", "max_tokens": 512, "temperature": 0.7, "top_p": 1.0,
        "messages": [{"role": "user", "content": "Is this good?"}], "stop": ["\n"], "seed": 3,
    }  # fmt: skip
    with pytest.raises(ValueError, match="needs a prompt"):
        wire.request_body("completions", "m", CHAT)
    assert wire.request_headers(CHAT) == {"X-Selfinstruct-Stage": "judge"}
    answer = {
        "model": "served", "usage": {"prompt_tokens": 4, "completion_tokens": 2},
        "choices": [{"message": {"content": "Yes"}, "finish_reason": "stop"}],
    }  # fmt: skip
    completion = wire.parse_response("chat", answer, "m", latency_s=0.5)
    assert (completion.text, completion.finish_reason) == ("Yes", "stop")
    assert completion.model == "served"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)
    assert completion.latency_s == 0.5
    for bad in ("<html>", [], {"choices": []}, {"choices": [{"text": "x"}]}):
        with pytest.raises(wire.MalformedResponse):
            wire.parse_response("chat", bad, "m")


def test_model_discovery_says_why_for_each_endpoint():
    async def discover(urls: list[str]) -> tuple[str, str]:
        clients = [(url, wire.make_client(url, "", 5)) for url in urls]
        try:
            return await wire.discover_model(clients, 5, "")
        finally:
            for _, client in clients:
                await client.close()

    with ScriptedOpenAIServer(models=[]) as empty, ScriptedOpenAIServer(models=["m1"]) as full:
        assert asyncio.run(discover([empty.base_url, full.base_url])) == ("m1", full.base_url)
        with pytest.raises(TeacherUnavailable, match=r"no model served at .*; pass --model"):
            asyncio.run(discover([empty.base_url]))


# -- the stage on the wire, and the scripted responder answering by it ----------------------


def shout(kind: str, body: dict[str, Any]) -> Reply:
    return Reply(text="HEY")


def test_every_online_request_names_its_stage_and_the_responder_answers_by_it():
    responder = SelfInstructResponder(extra={"shout": shout})
    with ScriptedOpenAIServer(responder) as server:
        config = parse_teacher_config({"base_url": server.base_url, "model": "m"})

        async def work(teacher: OpenAITeacher) -> list[str]:
            stages = ("shout", "no-such-stage", "outputs", "classify")
            asked = (Message("user", "Task: x\nIs it?"),)
            requests = [Request(stage=stage, messages=asked) for stage in stages]
            return [(await teacher.complete(r)).text for r in requests]

        texts = run_teacher(OpenAITeacher(config), work)
        headers = [r.headers.get("x-selfinstruct-stage") for r in server.requests]
    assert headers == ["shout", "no-such-stage", "outputs", "classify"]
    assert texts[0] == "HEY"
    assert texts[1] == GENERIC_REPLY
    assert texts[2] not in ("HEY", GENERIC_REPLY)  # an answer made of words
    assert texts[3] == " No"


def test_a_batch_line_names_its_stage_in_its_custom_id(tmp_path):
    with BatchServer(SelfInstructResponder(extra={"shout": shout})) as server:
        config = parse_teacher_config(
            {"kind": "openai-batch", "base_url": server.base_url, "model": "m",
             "batch_flush_s": 0.01, "batch_poll_s": 0.01}
        )  # fmt: skip

        async def work(teacher: OpenAIBatchTeacher) -> list[str]:
            stages = ("shout", "x")
            requests = [Request(stage=s, messages=(Message("user", s),)) for s in stages]
            return [c.text for c in await asyncio.gather(*map(teacher.complete, requests))]

        texts = run_teacher(OpenAIBatchTeacher(config, batch_dir=tmp_path), work)
        ids = [
            line["custom_id"]
            for batch in server.batches.values()
            for line in server.file_lines(batch.input_file_id)
        ]
    assert texts == ["HEY", GENERIC_REPLY]
    assert sorted(i.rsplit("-", 1)[1] for i in ids) == ["shout", "x"]


def test_auto_picks_aiohttp_unless_a_proxy_variable_is_set(monkeypatch):
    for scheme in ("http", "https", "all"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # no_proxy alone names no proxy

    def transport(http_client: wire.HttpClient) -> str:
        client = wire.make_client(URL, "", 5.0, http_client)
        return "aiohttp" if isinstance(client._client, openai.DefaultAioHttpClient) else "httpx"

    assert transport("auto") == "aiohttp" and transport("httpx") == "httpx"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")  # aiohttp would ignore it
    assert transport("auto") == "httpx" and transport("aiohttp") == "aiohttp"


@pytest.mark.parametrize(
    ("value", "same_bytes"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "é \u2028 ✓ \"q\" \\ \n"}]}, True),
        ({"temperature": 0.7, "top_p": 0.05, "big": 1e16, "stop": None, "x": [True]}, True),
        ({"top_p": 1e-05}, False),  # orjson writes 1e-5: the same number
        ({"seed": 2**70}, True),  # past orjson's 64 bits: the standard library writes it
        ({"text": "lone \ud800 surrogate"}, False),  # not UTF-8: escaped, as json.dumps does
    ],
)
def test_json_codec_writes_what_the_standard_library_reads_back(value, same_bytes):
    raw = json_codec.dumps(value)
    assert json.loads(raw) == value
    if same_bytes:
        assert raw == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "raw", [b'{"a": NaN}', '{"a": "\\ud800"}', b'{"a": [1, 2.5, "\\u00e9"]}', b"[]"]
)
def test_json_codec_reads_what_the_standard_library_reads(raw):
    expected, got = json.loads(raw), json_codec.loads(raw)
    assert repr(got) == repr(expected)  # repr: nan != nan


@pytest.mark.parametrize("raw", [b'{"a":', b"\xff\xfe", b"", "nope"])
def test_json_codec_refuses_what_is_not_json_with_a_value_error(raw):
    with pytest.raises(ValueError):
        json_codec.loads(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
edge_floats = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 1e16, 9999999999999998.0, 0.7]


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_json_is_the_standard_librarys_byte_for_byte(value):
    """Cache keys hash it: any difference would miss every entry stored before."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json_codec.canonical(value) == expected.encode()


@pytest.mark.parametrize("number", edge_floats)
def test_canonical_json_writes_floats_at_the_exponent_edges_as_json_does(number):
    document = {"temperature": number, "messages": [["user", "é\u2028\x7f"]], "n": 2**64}
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json_codec.canonical(document) == expected.encode()
    assert json_codec.canonical([number]) == json.dumps([number], separators=(",", ":")).encode()
