"""The ``selfinstruct`` command: thin click commands over the library, one module a group.

Every user-facing error becomes one line on stderr and an exit code (2 bad input, 3 teacher
failed, 130 interrupted); tracebacks are kept for real bugs.

* ``run.py``: generate, estimate, status (a run directory's life)
* ``data.py``: export, stats, report (what a run produced)
* ``dedup.py``: dedup (ROUGE-L novelty over any file)
* ``init.py``: init (a starter config and editable copies of the seeds and prompts)
* ``preview.py``: preview (validate a config, show every stage's request; ``--live``)
* ``mix.py``: mix (several runs and datasets into one capped, seeded mixture)
* ``cache.py``: cache stats|clear (the response cache runs share)
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

import click

from selfinstruct import __version__
from selfinstruct.errors import SelfInstructError

#: command name -> (module, attribute): a command's module is imported only when it runs (or
#: for ``--help``), so ``generate`` does not pay for dedup's, export's or mix's imports
COMMANDS = {
    "init": ("selfinstruct.cli.init", "init"),
    "preview": ("selfinstruct.cli.preview", "preview"),
    "generate": ("selfinstruct.cli.run", "generate"),
    "estimate": ("selfinstruct.cli.run", "estimate"),
    "status": ("selfinstruct.cli.run", "status"),
    "export": ("selfinstruct.cli.data", "export"),
    "report": ("selfinstruct.cli.data", "report"),
    "stats": ("selfinstruct.cli.data", "stats"),
    "dedup": ("selfinstruct.cli.dedup", "dedup_command"),
    "mix": ("selfinstruct.cli.mix", "mix_command"),
    "cache": ("selfinstruct.cli.cache", "cache_group"),
}


class SelfInstructGroup(click.Group):
    """Turns SelfInstructError into ``error: ...`` and its exit code, without a traceback;
    loads each command's module when the command is asked for (:data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SelfInstructError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=SelfInstructGroup)
@click.version_option(__version__, prog_name="selfinstruct")
def cli() -> None:
    """Grow a small set of seed tasks into a clean instruction-tuning dataset (Self-Instruct)."""


def main() -> None:
    """The console script. Once the command is done (``cli`` ends in ``SystemExit``), the objects
    left are frozen out of the collector: the interpreter's exit then skips the collector's
    passes over everything imported (~0.4 s on 2 cores, mostly the openai SDK's types). Exit
    handlers (``atexit``, ``weakref.finalize``) still run; the OS frees the memory."""
    try:
        cli(prog_name="selfinstruct")
    finally:
        gc.freeze()
