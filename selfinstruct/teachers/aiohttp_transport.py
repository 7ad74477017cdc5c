"""aiohttp under the SDK's HTTP client, each reply read whole in one call.

The SDK's aiohttp client (``openai.DefaultAioHttpClient``) hands httpx2 a response whose body
is an async iterator over aiohttp's chunks; httpx2 then reads it through four nested async
generators (~0.04 ms a reply, each registering with the event loop). The teacher's replies
are small JSON documents and nothing here streams, so :class:`WholeReplyTransport` reads each
body with one ``await response.read()`` and returns an ``httpx2.Response`` that already holds
it (httpx2 still decodes any ``Content-Encoding``). It is passed to the SDK's aiohttp client
as its ``transport`` (public httpx2 API); requests to a proxy still go through the SDK's own
proxy transports. TLS uses httpx2's verifying context, made once a process and only when an
``https`` URL is asked for (a local server over plain HTTP never loads the CA bundle).
aiohttp's errors become httpx2's (timeouts stay timeouts, a refused
connection a ``ConnectError``), with the aiohttp error as their cause.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

import aiohttp

from selfinstruct.teachers.lean_client import http_client  # the SDK's: httpx2, or httpx

__all__ = ["WholeReplyTransport"]


class WholeReplyTransport(http_client.AsyncBaseTransport):
    """An httpx2 transport over one ``aiohttp.ClientSession`` (opened on first use, in the
    running loop), at most ``max_connections`` connections, idle ones kept ``keepalive_s``."""

    def __init__(self, *, max_connections: int | None = 1000, keepalive_s: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        #: (connect, read, pool) seconds -> aiohttp's timeout, made once a distinct value
        self._timeouts: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections or 0, keepalive_timeout=self._keepalive_s
        )
        self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _timeout(self, request: Any) -> aiohttp.ClientTimeout:
        limits = request.extensions.get("timeout", {})
        key = (limits.get("connect"), limits.get("read"), limits.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:  # aiohttp's names: sock_connect, sock_read, and connect (pool)
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: Any) -> Any:
        session = self._session or self._open()
        headers = request.headers
        try:
            data: Any = request.content or None
        except http_client.RequestNotRead:  # a streamed upload (e.g. multipart files)
            data = request.stream
            headers = http_client.Headers(headers)
            headers.pop("transfer-encoding", None)  # aiohttp frames it itself
        try:
            async with session.request(
                request.method, str(request.url), headers=headers.multi_items(), data=data,
                allow_redirects=False, auto_decompress=False, compress=False,
                timeout=self._timeout(request),
                ssl=_tls_context() if request.url.scheme == "https" else True,
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:  # fmt: skip
                body = await response.read()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise _as_httpx_error(exc, request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return http_client.Response(
            response.status, headers=response.raw_headers, content=body, request=request,
            extensions=extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx2's verifying context (its CA bundle, ``SSL_CERT_FILE``...), made once a process
    and only for an ``https`` URL: loading the CA bundle costs ~30-60 ms of start-up."""
    return http_client.create_ssl_context()


def _as_httpx_error(exc: BaseException, request: Any) -> Exception:
    """The httpx2 error the SDK expects for an aiohttp one (the SDK maps httpx2's timeouts to
    ``APITimeoutError`` and its other transport errors to ``APIConnectionError``)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        return http_client.ConnectError(message, request=request)
    if isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())):  # aiohttp >= 3.10
        return http_client.ConnectTimeout(message, request=request)
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's read timeouts are TimeoutErrors
        return http_client.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return http_client.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return http_client.RemoteProtocolError(message, request=request)
    return http_client.ReadError(message, request=request)
