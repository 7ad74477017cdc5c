"""The official SDK's async client, building each request of a shape it has built before from
what the SDK built the first time.

The teacher sends thousands of requests of one shape: ``POST`` to the same URL, a JSON body
already encoded as bytes, the same handful of headers. For each, the SDK's
``_build_request`` merges the auth, default and custom headers into a new ``Headers``,
validates them, parses the URL, and has the HTTP client merge its own URL, headers, cookies,
query and timeout into a new request (~0.1 ms, a tenth of the client's CPU at L=0). Here the
SDK builds the first request of each shape itself; later ones reuse its URL, header list and
extensions with the new body, so what goes on the wire is what the SDK would send (a test
compares the two on a loopback server).

Only the shape the teacher sends takes the short path, and only while nothing the SDK would
read per request can differ: any query, files, JSON body, extra body or redirect option, an
idempotency header (it varies per request), cookies the server set on the HTTP client, or a
change of API key (a key provider refreshes it) builds the request the SDK's way. Everything
after the build (``_prepare_request``, auth, retries on 401, sending, the response) is the
SDK's own. The SDK marks ``_build_request`` private but overrides it in its own clients
(Azure); an SDK that no longer calls it simply builds every request itself.

:meth:`LeanAsyncOpenAI.post_bytes` is ``post(url, cast_to=Response, content=body,
options=...)`` whose request options are a copy of ones the SDK's ``post`` would make,
made once: ``post`` builds them with pydantic's ``construct``, which deep-copies every
default (~0.03 ms a request). It falls back to ``post`` where the SDK has no such options
class or transforms options per request (a key provider, a provider runtime).
"""

from __future__ import annotations

from typing import Any

import openai
from openai import RequestOptions

try:  # the openai SDK's HTTP client: httpx2 in recent versions, httpx before
    import httpx2 as http_client
except ImportError:  # pragma: no cover - older openai
    import httpx as http_client  # type: ignore[no-redef]

try:  # what the SDK's post() makes of its arguments
    from openai._models import FinalRequestOptions
except ImportError:  # pragma: no cover - an SDK that moved it: post() is used
    FinalRequestOptions = None  # type: ignore[assignment,misc]

__all__ = ["LeanAsyncOpenAI", "http_client"]

#: request shapes kept per client (stages x endpoints is a handful; a caller varying its
#: headers per request gets the SDK's path once this many are held)
MAX_SHAPES = 64

#: headers the HTTP client derives from the body (appended again, last, for each new body)
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


class LeanAsyncOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that reuses the SDK's own build of a request's URL, headers and
    extensions for later requests of the same shape (see the module docstring).
    :attr:`reused` counts the requests built that way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shapes: dict[tuple[Any, ...], tuple[Any, Any, dict[str, Any]]]
        self._shapes = {}
        self.reused = 0
        self._post_options: Any = None
        if FinalRequestOptions is not None and not (
            getattr(self, "_api_key_provider", None) or getattr(self, "_provider_runtime", None)
        ):  # what post() makes for (url, content=..., files=None), but the url and content
            self._post_options = FinalRequestOptions.construct(
                method="post", url="", json_data=None, content=b"", files=None
            )

    async def post_bytes(self, url: str, content: bytes, options: RequestOptions) -> Any:
        """``post(url, cast_to=Response, content=content, options=options)``: the raw reply
        to a body already encoded (see the module docstring)."""
        if self._post_options is None:
            return await self.post(
                url, cast_to=http_client.Response, content=content, options=options
            )
        update = {"url": url, "content": content, **options}
        final = self._post_options.model_copy(update=update)
        return await self.request(http_client.Response, final)

    @property
    def user_agent(self) -> str:
        """The SDK's, which names the client's class: the same as ``AsyncOpenAI``'s."""
        return super().user_agent.replace(type(self).__name__, "AsyncOpenAI", 1)

    def _build_request(self, options: Any, *, retries_taken: int = 0) -> Any:
        key = self._shape_key(options, retries_taken)
        try:
            shape = None if key is None else self._shapes.get(key)
        except TypeError:  # an unhashable option (an httpx2.Timeout, a list header value)
            key = None
        if key is None:
            return super()._build_request(options, retries_taken=retries_taken)
        if shape is None:
            request = super()._build_request(options, retries_taken=retries_taken)
            if len(self._shapes) < MAX_SHAPES:  # Host first, Content-Length last: kept so
                raw = request.headers.raw
                headers = http_client.Headers(
                    [(k, v) for k, v in raw if k.lower() not in _BODY_HEADERS]
                )
                self._shapes[key] = (request.url, headers, dict(request.extensions))
            return request
        url, headers, extensions = shape
        self.reused += 1
        # what Request(content=...) makes, without normalising every header again: the
        # shape's headers (copied as they are), then Content-Length, and the body read
        headers = http_client.Headers(headers)
        headers["Content-Length"] = str(len(options.content))
        stream = http_client.ByteStream(options.content)
        request = http_client.Request(
            "POST", url, headers=headers, stream=stream, extensions=extensions
        )
        request.read()
        return request

    def _shape_key(self, options: Any, retries_taken: int) -> tuple[Any, ...] | None:
        """What the SDK's build reads besides the body, or None where the request is not of
        the one shape reused (see the module docstring)."""
        if (
            options.method != "post"
            or type(options.content) is not bytes
            or options.json_data is not None
            or options.files is not None
            or options.params
            or options.extra_json is not None
            or options.follow_redirects is not None
            or getattr(self, "_idempotency_header", None)
            or not isinstance(self.api_key, str)
            or self._client.cookies
        ):
            return None
        headers = options.headers
        security = getattr(options, "security", None)
        return (
            options.url,
            tuple(headers.items()) if isinstance(headers, dict) else headers,
            options.timeout,
            retries_taken,
            tuple(security.items()) if isinstance(security, dict) else security,
            self.api_key,
        )
