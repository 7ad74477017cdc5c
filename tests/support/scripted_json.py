"""Structured (JSON schema) answers for :class:`SelfInstructResponder`.

A request asks for JSON when its body has a ``response_format`` in a form the responder was
told to honour (``schema_forms``: ``json_schema`` as OpenAI and vLLM take it, ``json_object``
with a ``schema`` as llama-cpp-python takes it). What to answer is read from the schema the
request carries (its top-level property names), never from the prompt's wording; the content
comes from the same generators as the free-text answers.
"""

from __future__ import annotations

import json
from typing import Any


def requested_schema(body: dict[str, Any], forms: tuple[str, ...]) -> dict[str, Any] | None:
    """The JSON schema a request asks its reply to follow, in one of ``forms``; else None."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind not in forms:
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    else:
        schema = response_format.get("schema")
    return schema if isinstance(schema, dict) else None


def item_fields(schema: dict[str, Any], key: str) -> set[str]:
    """The property names of the objects in the list under ``key`` (``{"label", "input"}``)."""
    items = schema.get("properties", {}).get(key, {}).get("items", {})
    return set(items.get("properties", {}))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
