"""``selfinstruct cache stats|clear``: what the response cache holds, and emptying it."""

from __future__ import annotations

from pathlib import Path

import click

from selfinstruct.errors import InputError
from selfinstruct.teachers.cache import ResponseCache, default_cache_path

_PATH = click.option(
    "--cache",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Cache file (default: $XDG_CACHE_HOME or ~/.cache, /selfinstruct/responses.sqlite3).",
)


def _open(path: Path | None) -> ResponseCache:
    path = path or default_cache_path()
    if not path.exists():
        raise InputError("no response cache here (a run creates it)", path=path, field="--cache")
    return ResponseCache(path)


@click.group("cache")
def cache_group() -> None:
    """Inspect or empty the response cache that runs share."""


@cache_group.command("stats")
@_PATH
def stats(path: Path | None) -> None:
    """Rows, file size, and rows and tokens per (backend, model).

    \b
    selfinstruct cache stats
    selfinstruct cache stats --cache runs/responses.sqlite3
    """
    cache = _open(path)
    try:
        found = cache.stats()
    finally:
        cache.close()
    click.echo(f"{found.path}: {found.entries} replies, {found.size_bytes / 1e6:.1f} MB")
    for backend, model, entries, tokens in found.by_model:
        click.echo(f"  {backend:<12} {model:<40} {entries:>8} replies {tokens or 0:>12,} tokens")


@cache_group.command("clear")
@_PATH
@click.option("--model", help="Only this model's replies.")
@click.option("--yes", is_flag=True, help="Do not ask first.")
def clear(path: Path | None, model: str | None, yes: bool) -> None:
    """Delete stored replies (all, or one model's) and give the space back.

    \b
    selfinstruct cache clear --yes
    selfinstruct cache clear --model gpt-4o-mini --yes
    """
    cache = _open(path)
    try:
        what = f"{model}'s replies" if model else "every reply"
        if not yes:
            click.confirm(f"delete {what} in {cache.path}?", abort=True)
        deleted = cache.clear(model)
    finally:
        cache.close()
    click.echo(f"deleted {deleted} replies from {cache.path}")
