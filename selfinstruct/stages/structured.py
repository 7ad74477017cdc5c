"""Structured outputs: the JSON schema a stage's request carries and the reading of its reply.

The schema is derived from the reply's pydantic model (:mod:`selfinstruct.records`) in the
strict form OpenAI requires (every property required, no extra properties, ``$ref`` inlined,
which llama.cpp's and vLLM's grammar builders take as well). A reply is read as JSON; one cut
short by ``max_tokens`` keeps the list elements that were complete; a reply that is not JSON
at all goes to the stage's free-text parser (a server that ignored the schema), and one
that is JSON but does not validate is reported with what failed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from selfinstruct.teachers.base import ResponseSchema

M = TypeVar("M", bound=BaseModel)

_FENCE_RE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*(?:```\s*)?$", re.DOTALL)
#: llama.cpp's grammars let a string hold raw control characters (a newline): accept them
_DECODER = json.JSONDecoder(strict=False)


@cache
def reply_schema(model: type[BaseModel]) -> ResponseSchema:
    """``model``'s JSON schema as a request carries it, named after the model."""
    raw = model.model_json_schema()
    definitions = raw.pop("$defs", {})
    schema = _strict(raw, definitions)
    return ResponseSchema(model.__name__, json.dumps(schema))


def _strict(node: Any, definitions: dict[str, Any]) -> Any:
    """Inline ``$ref``, drop titles and defaults, make objects closed with all fields required."""
    if isinstance(node, list):
        return [_strict(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _strict(definitions[name], definitions)
    result = {
        key: _strict(value, definitions)
        for key, value in node.items()
        if key not in ("title", "default", "description")
    }
    if result.get("type") == "object" and "properties" in result:
        result["properties"] = {
            name: _strict(value, definitions) for name, value in node["properties"].items()
        }
        result["required"] = list(result["properties"])
        result["additionalProperties"] = False
    return result


def json_text(text: str) -> str:
    """The reply without a markdown code fence around it (some servers add one)."""
    match = _FENCE_RE.match(text)
    return match.group(1).strip() if match else text.strip()


def looks_like_json(text: str) -> bool:
    """Whether a reply is (the start of) a JSON object: not free text for the text parsers."""
    return json_text(text).startswith("{")


def read_reply(model: type[M], text: str) -> tuple[M | None, str]:
    """``(reply, "")`` when ``text`` is JSON that validates against ``model``, else
    ``(None, what failed)``."""
    body = json_text(text)
    try:
        value = _DECODER.decode(body)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    try:
        return model.model_validate(value), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "reply"
        return None, f"JSON does not follow the schema: {where}: {first['msg']}"


def complete_items(text: str, key: str) -> list[Any]:
    """The complete elements of the list under ``key`` in a JSON object that may be cut
    short: ``{"tasks": ["a", "b", "c`` gives ``["a", "b"]``. ``[]`` when there is no such
    list."""
    body = json_text(text)
    match = re.match(r'\{\s*"' + re.escape(key) + r'"\s*:\s*\[', body)
    if match is None:
        return []
    items: list[Any] = []
    position = match.end()
    while True:
        position = _skip(body, position)
        if position >= len(body) or body[position] == "]":
            return items
        try:
            item, position = _DECODER.raw_decode(body, position)
        except ValueError:
            return items  # the element the reply was cut in
        items.append(item)
        position = _skip(body, position)
        if position < len(body) and body[position] == ",":
            position += 1


def _skip(body: str, position: int) -> int:
    while position < len(body) and body[position].isspace():
        position += 1
    return position


def valid_items(model: type[M], items: list[Any]) -> list[M]:
    """The elements that validate against ``model`` (others are dropped)."""
    result = []
    for item in items:
        try:
            result.append(model.model_validate(item))
        except ValidationError:
            continue
    return result
