"""LeanAsyncOpenAI puts on the wire, byte for byte, what the SDK's own client does, and
WholeReplyTransport hands the SDK the reply its own aiohttp client would.

A raw HTTP/1.1 server on 127.0.0.1 records each request's head and body as bytes; the same
requests go out through ``openai.AsyncOpenAI`` and through ``LeanAsyncOpenAI`` (on both HTTP
clients the teacher can use), and the recordings are compared.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest

from selfinstruct.teachers.aiohttp_transport import WholeReplyTransport, _tls_context
from selfinstruct.teachers.lean_client import LeanAsyncOpenAI, http_client
from selfinstruct.teachers.openai_wire import make_client

REPLY = json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()


@asynccontextmanager
async def recording_server(
    set_cookie: bool = False, gzipped: bool = False
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A keep-alive HTTP/1.1 server recording every request as its raw head + body; its
    reply is :data:`REPLY`, gzip-encoded if ``gzipped``."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                seen.append(head + await reader.readexactly(length))
                extra = b"Set-Cookie: session=abc; Path=/\r\n" if set_cookie else b""
                body = gzip.compress(REPLY) if gzipped else REPLY
                extra += b"Content-Encoding: gzip\r\n" if gzipped else b""
                writer.write(
                    b"HTTP/1.1 200 Fine\r\nContent-Type: application/json\r\n" + extra
                    + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/v1", seen


def clients(url: str, kind: str) -> list[openai.AsyncOpenAI]:
    made = []
    for cls in (openai.AsyncOpenAI, LeanAsyncOpenAI):
        transport: dict[str, Any] = {}
        if kind == "aiohttp":
            transport["http_client"] = openai.DefaultAioHttpClient()
        made.append(cls(base_url=url, api_key="sk-test", max_retries=0, timeout=30.0, **transport))
    return made


async def post(client: openai.AsyncOpenAI, body: bytes, stage: str, **extra: Any) -> None:
    """What the teacher sends (``OpenAITeacher.complete``: ``post_bytes`` on a lean client),
    plus ``extra`` options; the SDK's own ``post`` on the SDK's client."""
    options: Any = {"headers": {"X-Selfinstruct-Stage": stage}, "max_retries": 0, "timeout": 30.0}
    options.update(extra)
    if isinstance(client, LeanAsyncOpenAI):
        await client.post_bytes("/chat/completions", body, options)
    else:
        await client.post(
            "/chat/completions", cast_to=http_client.Response, content=body, options=options
        )


def record_both(
    kind: str, send: Callable[[openai.AsyncOpenAI], Awaitable[None]], **server: bool
) -> tuple[list[bytes], list[bytes], int]:
    """What the server records while ``send`` runs on the SDK's client, then on the lean one
    (both on the ``kind`` HTTP client), and how many of the lean one's requests reused a
    shape."""

    async def main() -> tuple[list[list[bytes]], int]:
        recordings, reused = [], 0
        async with recording_server(**server) as (url, seen):
            for client in clients(url, kind):
                seen.clear()
                await send(client)
                recordings.append(list(seen))
                reused = getattr(client, "reused", reused)
                await client.close()
        return recordings, reused

    (sdk, lean), reused = asyncio.run(main())
    return sdk, lean, reused


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
def test_requests_of_one_shape_go_out_as_the_sdk_sends_them(kind):
    bodies = [json.dumps({"model": "m", "messages": [{"role": "user", "content": "é" * i}]})
              for i in range(4)]  # fmt: skip
    stages = ["instructions", "classify", "instructions", "classify"]

    async def send(client: openai.AsyncOpenAI) -> None:
        for body, stage in zip(bodies, stages, strict=True):
            await post(client, body.encode(), stage)

    sdk, lean, reused = record_both(kind, send)
    assert reused == 2  # the first request of each stage builds it
    assert len(sdk) == 4
    assert lean == sdk
    assert [r.split(b"\r\n\r\n", 1)[1] for r in lean] == [b.encode() for b in bodies]


def test_other_shapes_and_cookies_take_the_sdks_own_path():
    async def send(client: openai.AsyncOpenAI) -> None:
        await post(client, b'{"a": 1}', "outputs", params={"api-version": "1"})
        await post(client, b'{"a": 2}', "outputs")  # the server's cookie is set now
        await post(client, b'{"a": 3}', "outputs")

    sdk, lean, reused = record_both("httpx", send, set_cookie=True)
    assert reused == 0
    assert lean == sdk
    assert b"?api-version=1 " in lean[0].split(b"\r\n", 1)[0]
    assert b"cookie: session=abc" in lean[2].lower()


def test_an_unhashable_option_takes_the_sdks_own_path():
    async def send(client: openai.AsyncOpenAI) -> None:
        for body in (b'{"a": 1}', b'{"a": 2}'):
            await post(client, body, "outputs", timeout=http_client.Timeout(9.0))

    sdk, lean, reused = record_both("aiohttp", send)
    assert reused == 0
    assert lean == sdk and len(lean) == 2


@pytest.mark.parametrize("gzipped", [False, True])
def test_the_whole_reply_transport_gives_the_sdk_what_its_aiohttp_client_does(gzipped):
    async def main() -> list[tuple[Any, ...]]:
        seen = []
        async with recording_server(gzipped=gzipped) as (url, _):
            for transport in (None, WholeReplyTransport()):
                http = openai.DefaultAioHttpClient(
                    **({"transport": transport} if transport else {})
                )
                client = openai.AsyncOpenAI(
                    base_url=url, api_key="k", max_retries=0, http_client=http
                )
                options: Any = {"headers": {"X-Selfinstruct-Stage": "outputs"}}
                response = await client.post(
                    "/chat/completions",
                    cast_to=http_client.Response,
                    content=b"{}",
                    options=options,
                )
                seen.append((response.status_code, response.reason_phrase, response.http_version,
                             response.headers.raw, response.content))  # fmt: skip
                await client.close()
        return seen

    sdk, ours = asyncio.run(main())
    assert ours == sdk
    assert ours[-1] == REPLY


def test_tls_verifies_the_server_and_trusts_what_ssl_cert_file_names(tmp_path, monkeypatch):
    """An https endpoint: a self-signed certificate is refused, then accepted once
    ``SSL_CERT_FILE`` names it (the context is httpx2's, made on the first https request)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def ask() -> bytes:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client = make_client(f"https://127.0.0.1:{port}/v1", "k", 5.0, "aiohttp")
            try:
                response = await client.post_bytes("/chat/completions", b"{}", {})
            finally:
                await client.close()
        return response.content

    _tls_context.cache_clear()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(openai.APIConnectionError) as refused:
        asyncio.run(ask())
    causes, cause = [], refused.value.__cause__
    while cause is not None:
        causes.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    assert "CERTIFICATE_VERIFY_FAILED" in " ".join(causes)
    _tls_context.cache_clear()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert asyncio.run(ask()) == b"{}"
    _tls_context.cache_clear()
