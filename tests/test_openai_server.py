"""The scripted OpenAI-compatible server, exercised over plain HTTP (stdlib client)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import FAULT_KINDS, Reply, ScriptedOpenAIServer

CHAT = {"model": "m", "messages": [{"role": "user", "content": "say something nice"}]}
COMPLETION = {"model": "m", "prompt": "Task 1: write a poem\nTask 2:"}


def call(
    server: ScriptedOpenAIServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, raw body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, "/v1" + path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post(server: ScriptedOpenAIServer, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
    status, _, raw = call(server, "POST", path, body, **kw)
    return status, json.loads(raw)


def test_base_url_and_models() -> None:
    with ScriptedOpenAIServer(models=["a-model", "b-model"]) as server:
        assert urlsplit(server.base_url).hostname == "127.0.0.1"
        assert server.base_url.endswith(f":{server.port}/v1")
        status, _, raw = call(server, "GET", "/models")
        assert status == 200
        listing = json.loads(raw)
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == ["a-model", "b-model"]
        assert all(m["object"] == "model" for m in listing["data"])


def test_chat_shape_and_usage() -> None:
    with ScriptedOpenAIServer(lambda kind, body: Reply(text="one two three")) as server:
        status, data = post(server, "/chat/completions", CHAT)
    assert status == 200
    assert set(data) >= {"id", "object", "created", "model", "choices", "usage"}
    assert data["object"] == "chat.completion"
    assert data["model"] == "m"
    assert isinstance(data["created"], int)
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "one two three"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_completions_shape_and_explicit_usage() -> None:
    def responder(kind: str, body: dict[str, Any]) -> Reply:
        assert kind == "completions"
        return Reply(text=" write a limerick", prompt_tokens=11, completion_tokens=4)

    with ScriptedOpenAIServer(responder) as server:
        status, data = post(server, "/completions", COMPLETION)
    assert status == 200
    assert data["object"] == "text_completion"
    assert data["choices"] == [
        {"index": 0, "text": " write a limerick", "logprobs": None, "finish_reason": "stop"}
    ]
    assert data["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


def test_default_responder_echoes_and_str_replies_work() -> None:
    with ScriptedOpenAIServer() as server:
        _, data = post(server, "/chat/completions", CHAT)
        assert data["choices"][0]["message"]["content"] == "echo: say something nice"
    with ScriptedOpenAIServer(lambda kind, body: "plain") as server:
        _, data = post(server, "/completions", COMPLETION)
        assert data["choices"][0]["text"] == "plain"


def test_requests_are_recorded_with_headers() -> None:
    with ScriptedOpenAIServer() as server:
        post(server, "/chat/completions", CHAT, headers={"Authorization": "Bearer sk-abc"})
        call(server, "GET", "/models")
        post(server, "/completions", COMPLETION)
    assert server.paths() == ["/v1/chat/completions", "/v1/models", "/v1/completions"]
    first = server.requests[0]
    assert first.body == CHAT
    assert first.headers["authorization"] == "Bearer sk-abc"
    path, body, _headers = server.requests[2]  # a plain tuple too
    assert (path, body) == ("/v1/completions", COMPLETION)


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("\n", "first line"),
        (["Task 3", "second"], "first line\n"),
        ([], "first line\nsecond Task 3"),
        (None, "first line\nsecond Task 3"),
    ],
)
def test_stop_sequences_cut_the_text(stop: Any, expected: str) -> None:
    with ScriptedOpenAIServer(lambda kind, body: "first line\nsecond Task 3") as server:
        body = dict(COMPLETION, stop=stop) if stop is not None else COMPLETION
        _, data = post(server, "/completions", body)
    assert data["choices"][0]["text"] == expected
    assert data["choices"][0]["finish_reason"] == "stop"


def test_scripted_error_reply_has_openai_error_shape() -> None:
    reply = Reply(text="context too long", status=400, headers={"X-Extra": "1"})
    with ScriptedOpenAIServer(lambda kind, body: reply) as server:
        status, headers, raw = call(server, "POST", "/chat/completions", CHAT)
    assert status == 400
    assert headers["x-extra"] == "1"
    error = json.loads(raw)["error"]
    assert error["message"] == "context too long"
    assert error["type"] == "invalid_request_error"


def test_unknown_path_and_bad_body() -> None:
    with ScriptedOpenAIServer() as server:
        assert call(server, "POST", "/embeddings", {"input": "x"})[0] == 404
        assert call(server, "GET", "/nothing")[0] == 404
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", "/v1/completions", body=b"{nope")
        assert conn.getresponse().status == 400
        conn.close()


def fault_server(kind: str) -> ScriptedOpenAIServer:
    return ScriptedOpenAIServer(
        lambda k, body: "alpha beta gamma delta",
        faults=[kind],
        retry_after_s=0.25,
        timeout_delay_s=0.3,
    )


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "504"])
def test_http_error_faults_then_normal(kind: str) -> None:
    with fault_server(kind) as server:
        status, headers, raw = call(server, "POST", "/chat/completions", CHAT)
        assert status == int(kind)
        assert "message" in json.loads(raw)["error"]
        if kind == "429":
            assert headers["retry-after"] == "0.25"
        status, data = post(server, "/chat/completions", CHAT)  # the queue is used up
        assert status == 200
        assert data["choices"][0]["message"]["content"] == "alpha beta gamma delta"
    assert server.faults_served == [kind]


def test_timeout_fault_delays_the_answer() -> None:
    with fault_server("timeout") as server:
        started = time.perf_counter()
        status, data = post(server, "/chat/completions", CHAT)
        assert time.perf_counter() - started >= 0.3
        assert status == 200
        assert data["choices"][0]["message"]["content"] == "alpha beta gamma delta"
        with pytest.raises(TimeoutError):
            server.add_faults("timeout")
            call(server, "POST", "/chat/completions", CHAT, timeout=0.1)


def test_drop_fault_closes_without_answering() -> None:
    with fault_server("drop") as server, pytest.raises(http.client.RemoteDisconnected):
        call(server, "POST", "/chat/completions", CHAT)


def test_malformed_fault_is_not_json() -> None:
    with fault_server("malformed") as server:
        status, headers, raw = call(server, "POST", "/completions", COMPLETION)
    assert status == 200
    assert headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


@pytest.mark.parametrize(
    ("kind", "text", "finish_reason", "n_choices"),
    [
        ("no_choices", None, None, 0),
        ("empty", "", "stop", 1),
        ("length", "alpha beta ", "length", 1),
        ("content_filter", "", "content_filter", 1),
    ],
)
def test_content_faults(kind: str, text: str | None, finish_reason: str | None, n_choices: int):
    with fault_server(kind) as server:
        status, data = post(server, "/chat/completions", CHAT)
    assert status == 200
    assert len(data["choices"]) == n_choices
    if n_choices:
        choice = data["choices"][0]
        assert choice["message"]["content"] == text
        assert choice["finish_reason"] == finish_reason


def test_queued_reply_faults_and_add_faults() -> None:
    with ScriptedOpenAIServer(faults=[Reply(status=418, text="teapot")]) as server:
        server.add_faults("503")
        assert post(server, "/completions", COMPLETION)[0] == 418
        assert post(server, "/completions", COMPLETION)[0] == 503
        assert post(server, "/completions", COMPLETION)[0] == 200
    assert server.faults_served == ["reply:418", "503"]


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        ScriptedOpenAIServer(faults=["418"])


def test_fault_rate_is_seeded_and_covers_the_kinds() -> None:
    def run(seed: int) -> list[str]:
        kinds = [k for k in FAULT_KINDS if k not in ("timeout", "drop")]
        with ScriptedOpenAIServer(fault_rate=0.5, fault_kinds=kinds, seed=seed) as server:
            for _ in range(60):
                call(server, "POST", "/completions", COMPLETION)
        return server.faults_served

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert 15 <= len(first) <= 45
    assert len(set(first)) >= 6


def test_llama_cpp_quirks() -> None:
    list_prompt = dict(COMPLETION, prompt=["a", "b"])
    with ScriptedOpenAIServer() as server:
        status, data = post(server, "/completions", dict(list_prompt, n=3))
        assert status == 200
        assert len(data["choices"]) == 3  # a server that honours n
    with ScriptedOpenAIServer(reject_list_prompts=True, ignore_n=True) as server:
        assert post(server, "/completions", list_prompt)[0] == 500
        status, data = post(server, "/completions", dict(COMPLETION, n=3))
        assert status == 200
        assert len(data["choices"]) == 1


def test_explicit_choices() -> None:
    with ScriptedOpenAIServer(lambda kind, body: Reply(text="x y", choices=2)) as server:
        _, data = post(server, "/chat/completions", CHAT)
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert data["usage"]["completion_tokens"] == 4


def test_latency_and_many_concurrent_requests() -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        status, _ = post(server, "/chat/completions", CHAT)
        with lock:
            results.append(status)

    with ScriptedOpenAIServer(latency_s=0.3) as server:
        threads = [threading.Thread(target=worker) for _ in range(60)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    assert results == [200] * 60
    assert 0.3 <= elapsed < 9  # served concurrently (one after another would take 18 s)
    assert server.max_in_flight > 10
    assert server.in_flight == 0


def test_stop_wakes_delayed_answers() -> None:
    server = ScriptedOpenAIServer(latency_s=30).start()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            call(server, "POST", "/chat/completions", CHAT, timeout=10)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.perf_counter() - started < 3
    assert errors  # the client saw the connection close instead of waiting 30 s
