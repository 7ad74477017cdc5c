"""Prompt templates: files in ``prompts/`` (or the user's), rendered with Jinja2.

A template file is optional YAML front matter (default sampling for the stage, chosen to fit
the layout: stop sequences, max_tokens, temperature) followed by a Jinja2 body::

    ---
    stop: ["\\n\\n"]
    max_tokens: 512
    ---
    Come up with a series of tasks:
    {% for demo in demos %}
    Task {{ loop.index }}: {{ demo }}
    {% endfor %}
    Task {{ demos | length + 1 }}:

Lines that are exactly ``<|system|>``, ``<|user|>`` or ``<|assistant|>`` split the body into
chat messages; a body without them is one user message. On a completions API the messages'
contents are joined with blank lines. Placeholders are checked when the file is loaded: a
name the stage does not provide is an error naming the file and the placeholder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from selfinstruct.assets import prompts_dir
from selfinstruct.config_sections import SamplingConfig
from selfinstruct.errors import InputError
from selfinstruct.records import Stage
from selfinstruct.teachers.base import Api, Message, Request

#: the shipped prompt templates (package data: ``prompts/`` at the top of the repository)
PROMPTS_DIR = prompts_dir()

_ROLE_LINE = re.compile(r"^<\|(system|user|assistant)\|>[ \t]*$", re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_SAMPLING_KEYS = {"stop", "max_tokens", "temperature", "top_p"}
#: what ``getattr`` finds on a dict: jinja's ``x.name`` tries those first, then ``x["name"]``
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    """jinja's, but ``demo.instruction`` on a dict looks the key up at once: jinja's own
    ``getattr`` first raises (and catches) an AttributeError for every key of every demo
    rendered. The same result: a name a dict has as an attribute still goes jinja's way."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _Environment(
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    autoescape=False,
)


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded, checked template. ``sha256`` identifies the exact file text (provenance)."""

    path: Path
    sha256: str
    defaults: dict[str, Any]
    variables: frozenset[str]
    template: jinja2.Template = field(repr=False, compare=False)

    def render(self, **values: Any) -> str:
        return self.template.render(**values)

    def messages(self, **values: Any) -> tuple[Message, ...]:
        return split_messages(self.render(**values))

    def request(
        self,
        stage: Stage,
        api: Api,
        sampling: SamplingConfig,
        seed: int | None = None,
        **values: Any,
    ) -> Request:
        """Render into a Request for ``api``: template defaults, then the config's sampling."""
        settings = {"max_tokens": 512, "temperature": 0.7, "top_p": 1.0, "stop": []}
        settings.update(self.defaults)
        settings.update(sampling.model_dump(exclude_none=True))
        messages = self.messages(**values)
        common = {
            "stage": stage,
            "max_tokens": int(settings["max_tokens"]),
            "temperature": float(settings["temperature"]),
            "top_p": float(settings["top_p"]),
            "stop": tuple(settings["stop"]),
            "seed": seed,
        }
        if api == "chat":
            return Request(messages=messages, **common)
        return Request(prompt="\n\n".join(message.content for message in messages), **common)


def split_messages(text: str) -> tuple[Message, ...]:
    """Split rendered text on role lines; text without role lines is one user message."""
    parts = _ROLE_LINE.split(text)
    if len(parts) == 1:
        return (Message("user", text.strip("\n")),)
    messages = []
    if parts[0].strip():
        messages.append(Message("user", parts[0].strip("\n")))
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append(Message(role, content.strip("\n")))  # type: ignore[arg-type]
    return tuple(messages)


def load_template(path: str | Path, allowed: set[str]) -> PromptTemplate:
    """Load ``path``, parse its front matter and check every placeholder is in ``allowed``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such prompt file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a prompt template file", path=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not valid UTF-8", path=path, line=line) from None
    defaults, body, body_line = _front_matter(text, path)
    try:
        parsed = _ENV.parse(body)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno + body_line - 1 if exc.lineno else None
        raise InputError(f"template syntax error: {exc.message}", path=path, line=line) from None
    variables = frozenset(jinja2.meta.find_undeclared_variables(parsed))
    unknown = sorted(variables - allowed)
    if unknown:
        raise InputError(
            f"unknown placeholder {{{{ {unknown[0]} }}}}; this stage provides: "
            + ", ".join(sorted(allowed)),
            path=path,
        )
    return PromptTemplate(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        defaults=defaults,
        variables=variables,
        template=_ENV.from_string(body),
    )


def _front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text, 1
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML front matter: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise InputError("front matter must be a mapping", path=path)
    unknown = sorted(set(data) - _SAMPLING_KEYS)
    if unknown:
        raise InputError(
            f"unknown front matter key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(_SAMPLING_KEYS))})",
            path=path,
        )
    try:
        SamplingConfig.model_validate(data)
    except Exception as exc:  # pydantic's message names the key and the problem
        raise InputError(f"invalid front matter: {exc}".splitlines()[0], path=path) from None
    body_line = text[: match.end()].count("\n") + 1
    return data, text[match.end() :], body_line


def default_prompt_path(name: str, api: Api) -> Path:
    """The shipped ``prompts/NAME.API.txt`` if it exists, else ``prompts/NAME.txt``."""
    specific = PROMPTS_DIR / f"{name}.{api}.txt"
    return specific if specific.exists() else PROMPTS_DIR / f"{name}.txt"
