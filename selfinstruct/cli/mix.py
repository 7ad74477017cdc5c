"""``selfinstruct mix``: the click command over :func:`selfinstruct.mix.mix`."""

from __future__ import annotations

from pathlib import Path

import click

from selfinstruct.errors import InputError
from selfinstruct.export import CONTAINERS, LAYOUTS, ExportOptions, parse_split
from selfinstruct.export.layouts import CHAT_LAYOUTS
from selfinstruct.filters.rouge import DEFAULT_THRESHOLD
from selfinstruct.mix import GROUPINGS, MixOptions, MixResult, mix, parse_source


def parse_pairs(items: tuple[str, ...], option: str) -> dict[str, float]:
    """``("a=2", "b=0.5")`` -> ``{"a": 2.0, "b": 0.5}``."""
    pairs: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise InputError(f"expected NAME=NUMBER, got {item!r}", field=option)
        try:
            pairs[name] = float(value)
        except ValueError:
            raise InputError(f"{value!r} is not a number", field=option) from None
    return pairs


@click.command("mix")
@click.argument("sources", nargs=-1, required=True, metavar="[NAME=]SOURCE...")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="File (.json, .jsonl, .parquet) or, with --to hf, a directory.")
@click.option("--layout", type=click.Choice(list(LAYOUTS)), default="alpaca",
              show_default=True, help="Row layout of the mixture.")
@click.option("--to", type=click.Choice(list(CONTAINERS)),
              help="Container.  [default: from the --out suffix]")
@click.option("--system", help="System prompt as the first turn (messages, sharegpt).")
@click.option("--split", "split_spec", metavar="NAME=FRACTION,...",
              help="Split by instruction, e.g. train=0.95,test=0.05.")
@click.option("--cap", type=click.IntRange(min=1), metavar="N",
              help="At most N distinct rows from any one source.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), metavar="T",
              help="Shares ∝ capped size^(1/T): 1 is proportional, larger flattens.")
@click.option("--total", type=click.IntRange(min=1), metavar="N",
              help="Rows in the mixture.  [default: the capped sizes' sum]")
@click.option("--weight", "weights", multiple=True, metavar="NAME=W",
              help="Multiply a source's share by W (repeatable).")
@click.option("--no-repeat", is_flag=True,
              help="Never repeat a row: a quota above a source's rows is an error.")
@click.option("--group-by", type=click.Choice(GROUPINGS),
              help="Task-type groups for --quota: kind (classification/generation), the root "
                   "verb, or verb and object noun.")
@click.option("--quota", "quotas", multiple=True, metavar="GROUP=SHARE",
              help="Largest share of each source's rows one group may have; GROUP * is every "
                   "group not named (repeatable).")
@click.option("--dedup", is_flag=True,
              help="Drop rows whose instruction is a near-duplicate of an earlier source's.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=DEFAULT_THRESHOLD,
              show_default=True, help="--dedup: ROUGE-L F above this is a duplicate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds every choice.")
@click.option("--no-shuffle", is_flag=True, help="Keep the sources' order (default: shuffled).")
@click.option("--manifest", type=click.Path(path_type=Path),
              help="Where the proportions go.  [default: OUT with .manifest.json]")
def mix_command(
    sources: tuple[str, ...], out: Path, layout: str, to: str | None, system: str | None,
    split_spec: str | None, cap: int | None, temperature: float | None, total: int | None,
    weights: tuple[str, ...], no_repeat: bool, group_by: str | None, quotas: tuple[str, ...],
    dedup: bool, threshold: float, seed: int, no_shuffle: bool, manifest: Path | None,
) -> None:
    """Mix runs and datasets (JSONL, JSON, Parquet, save_to_disk directories; any export
    layout) into one seeded training mixture, with a manifest of the shares achieved.

    \b
    selfinstruct mix runs/a runs/b alpaca=alpaca_data.json --cap 5000 --out data/mix.jsonl
    selfinstruct mix runs/a web=web.parquet --temperature 2 --total 20000 --out mix.parquet
    selfinstruct mix runs/a runs/b --dedup --group-by kind --quota classification=0.3 \\
        --layout messages --out data/mix.jsonl
    """  # fmt: skip
    if system is not None and layout not in CHAT_LAYOUTS:
        raise InputError(f"--system needs the messages or sharegpt layout, not {layout}")
    export = ExportOptions(
        layout=layout, to=to, out=out, system=system,
        split=parse_split(split_spec) if split_spec else None,
    )  # fmt: skip
    options = MixOptions(
        export=export, cap=cap, temperature=temperature, total=total,
        weights=parse_pairs(weights, "--weight"), repeat=not no_repeat, group_by=group_by,
        quotas=parse_pairs(quotas, "--quota"), dedup_threshold=threshold if dedup else None,
        seed=seed, shuffle=not no_shuffle, manifest=manifest,
    )  # fmt: skip
    click.echo(summary(mix([parse_source(text) for text in sources], options)))


def summary(result: MixResult) -> str:
    """A table of the sources (read, available, taken, share) and where the files went."""
    lines = [f"{'source':<16} {'rows':>8} {'dups':>6} {'avail':>8} {'quota':>8} "
             f"{'taken':>8} {'repeat':>7} {'share':>7} {'target':>7}"]  # fmt: skip
    for s in result.sources:
        lines.append(
            f"{s.name:<16} {s.rows:>8,} {s.duplicates:>6,} {s.available:>8,} {s.quota:>8,} "
            f"{s.taken:>8,} {s.repeated:>7,} {s.share:>7.1%} {s.target_share:>7.1%}"
        )
    lines.append(f"{len(result.rows):,} rows -> {', '.join(map(str, result.export.paths))}")
    if result.groups:
        shown = ", ".join(f"{g} {n}" for g, n in list(result.groups.items())[:12])
        lines.append(f"groups: {shown}")
    lines.append(f"manifest: {result.manifest_path}")
    return "\n".join(lines)
