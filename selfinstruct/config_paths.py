"""Relative paths in a config file mean: relative to that file's folder.

A config file and the prompts and seeds it names travel together (``selfinstruct init DIR``
writes them side by side), so ``seeds: seeds/seed_tasks.jsonl`` must not depend on the
directory a command is started from. Paths given on the command line (``--seeds``, ``--set``)
keep meaning: relative to the current directory.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def resolve_file_paths(data: dict[str, Any], model: type[BaseModel], base: Path) -> dict[str, Any]:
    """A copy of ``data`` (one file's settings for ``model``) with every relative value of a
    ``Path`` field joined to ``base``. Unknown keys and values of the wrong type are left for
    validation to report."""
    return _resolve(data, [model], base)


def _resolve(data: dict[str, Any], models: list[type[BaseModel]], base: Path) -> dict[str, Any]:
    resolved = dict(data)
    for key, value in data.items():
        annotations = [m.model_fields[key].annotation for m in models if key in m.model_fields]
        if not annotations:
            continue
        if isinstance(value, str) and any(Path in _leaves(a) for a in annotations):
            resolved[key] = _joined(value, base)
        elif isinstance(value, dict):
            nested = [leaf for a in annotations for leaf in _leaves(a) if _is_model(leaf)]
            mapped = [v for a in annotations for v in _mapping_values(a) if _is_model(v)]
            if nested:
                resolved[key] = _resolve(value, nested, base)
            elif mapped:
                resolved[key] = {
                    k: _resolve(v, mapped, base) if isinstance(v, dict) else v
                    for k, v in value.items()
                }
    return resolved


def _joined(value: str, base: Path) -> str:
    if not value or value.startswith("~") or Path(value).is_absolute():
        return value
    return str(base / value)


def _leaves(annotation: Any) -> list[Any]:
    """The types a field may hold, through ``X | None``, ``Union`` and ``Annotated``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            args = args[:1]
        return [leaf for arg in args for leaf in _leaves(arg)]
    return [annotation]


def _mapping_values(annotation: Any) -> list[Any]:
    """For ``dict[str, X]`` fields: the types X may be."""
    leaves = []
    for leaf in _leaves(annotation):
        if typing.get_origin(leaf) is dict:
            leaves.extend(_leaves(typing.get_args(leaf)[1]))
    return leaves


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
