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

from typing import Any

import click

from selfinstruct import __version__
from selfinstruct.errors import SelfInstructError


class SelfInstructGroup(click.Group):
    """Turns SelfInstructError into ``error: ...`` and its exit code, without a traceback."""

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
    cli(prog_name="selfinstruct")


def _register() -> None:
    from selfinstruct.cli.cache import cache_group
    from selfinstruct.cli.data import export, report, stats
    from selfinstruct.cli.dedup import dedup_command
    from selfinstruct.cli.init import init
    from selfinstruct.cli.run import estimate, generate, status

    for command in (init, generate, estimate, status, export, report, stats):
        cli.add_command(command)
    cli.add_command(dedup_command, name="dedup")
    from selfinstruct.cli.mix import mix_command
    from selfinstruct.cli.preview import preview

    cli.add_command(preview)
    cli.add_command(mix_command, name="mix")
    cli.add_command(cache_group, name="cache")


_register()
