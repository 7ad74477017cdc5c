"""What an OpenAI-compatible server honours, found with a few tiny requests when a run starts.

Servers differ behind the same API: vLLM honours ``n``, a list of prompts, ``seed`` and JSON
schemas; llama.cpp's server ignores ``n``, rejects list prompts and serves one request at a
time; OpenAI has no completions endpoint for chat models. Each probe is one to three requests
of a few tokens (stage ``probe`` on the wire), and answers True (honoured), False (ignored or
refused) or None (the probe itself could not run: a timeout or a connection error).
"""

from __future__ import annotations

import json
from typing import Any

import openai

from selfinstruct.teachers.openai_wire import STAGE_HEADER

HEADERS = {STAGE_HEADER: "probe"}
_PROMPT = "Write one random English word:"
_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "probe",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    },
}
_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError)


async def probe_server(client: openai.AsyncOpenAI, model: str, api: str) -> dict[str, bool | None]:
    """``{"n", "list_prompts", "seed", "json_schema": honoured?}`` for one endpoint."""
    ask = _Asker(client, model, api)
    result: dict[str, bool | None] = {}
    for name, probe in (
        ("n", _n),
        ("list_prompts", _list_prompts),
        ("seed", _seed),
        ("json_schema", _json_schema),
    ):
        try:
            result[name] = await probe(ask)
        except _UNREACHABLE:
            result[name] = None
        except (openai.OpenAIError, ValueError, TypeError, KeyError, IndexError):
            result[name] = False  # refused (4xx) or answered in a shape that is not honouring
    return result


class _Asker:
    def __init__(self, client: openai.AsyncOpenAI, model: str, api: str) -> None:
        self.client, self.model, self.api = client, model, api

    async def texts(self, api: str | None = None, **body: Any) -> list[str]:
        """The choices' texts of one request on ``api`` (default: the teacher's)."""
        body = {"model": self.model, "max_tokens": 8, "temperature": 1.0, **body}
        if (api or self.api) == "chat":
            body.setdefault("messages", [{"role": "user", "content": _PROMPT}])
            response = await self.client.chat.completions.create(**body, extra_headers=HEADERS)
            return [choice.message.content or "" for choice in response.choices]
        body.setdefault("prompt", _PROMPT)
        response = await self.client.completions.create(**body, extra_headers=HEADERS)
        return [choice.text or "" for choice in response.choices]


async def _n(ask: _Asker) -> bool:
    return len(await ask.texts(n=2)) == 2


async def _list_prompts(ask: _Asker) -> bool:
    """Several prompts in one completions request, one choice each (a completions feature)."""
    prompts = [_PROMPT, "Write one random colour:"]
    return len(await ask.texts("completions", prompt=prompts, max_tokens=4)) == 2


async def _seed(ask: _Asker) -> bool:
    """Honoured when the same seed repeats the text and another seed changes it (a server that
    always answers the same, whatever the seed, does not honour it)."""
    first, again = [(await ask.texts(seed=1234, max_tokens=12))[0] for _ in range(2)]
    others = [(await ask.texts(seed=seed, max_tokens=12))[0] for seed in (99, 2026)]
    return first == again and any(text != first for text in others)


async def _json_schema(ask: _Asker) -> bool:
    """A JSON schema in ``response_format`` constrains the reply (a body field for
    completions, as vLLM and llama.cpp accept it)."""
    if ask.api == "chat":
        texts = await ask.texts(response_format=_SCHEMA, max_tokens=24, temperature=0.0)
    else:
        extra = {"response_format": _SCHEMA}
        texts = await ask.texts(extra_body=extra, max_tokens=24, temperature=0.0)
    value = json.loads(texts[0])
    return isinstance(value, dict) and set(value) == {"ok"} and isinstance(value["ok"], bool)
