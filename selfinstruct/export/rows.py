"""The rows to export: a run's examples (plus its seed tasks), capped, split and shuffled.

``--split train=0.95,test=0.05`` assigns whole *instructions* to splits (fractions are of
instructions; every example of one instruction lands in the same split, and so do the
paraphrases and the inversion that share its instances: one ``group``), deterministically
from ``--seed``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.errors import InputError
from selfinstruct.records import Example, Manifest
from selfinstruct.run.files import EXAMPLES, MANIFEST, read_manifest, read_rows
from selfinstruct.seeds import load_seeds

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Row:
    """One training example, from the run (``source="machine"``) or a seed task (``"seed"``)."""

    id: str
    instruction_id: str
    instruction: str
    input: str
    output: str
    is_classification: bool = False
    source: str = "machine"
    #: rows that share instances (a task, its paraphrases, its inversion) share a group
    group: str = ""

    @property
    def split_key(self) -> str:
        return self.group or self.instruction_id
    #: the judge's score of ``output`` (None: not judged)
    judge_score: int | None = None
    #: sampled outputs and their scores, best first (``stages.outputs.samples`` > 1)
    candidates: tuple[tuple[str, int | None], ...] = ()


# -- reading a run --------------------------------------------------------------------------


def load_examples(run_dir: Path) -> tuple[list[Example], bool]:
    """The run's examples, validated; ``(rows, whether a torn last line was skipped)``."""
    if not run_dir.is_dir():
        raise InputError("no such run directory", path=run_dir)
    path = run_dir / EXAMPLES
    if not path.exists():
        raise InputError(f"no {EXAMPLES} here: not a run directory", path=run_dir)
    read = read_rows(path, Example)
    return read.rows, read.torn


def seed_rows(manifest: Manifest | None, run_dir: Path) -> list[Row]:
    """The run's seed tasks (from the manifest's ``config.seeds``), one row per instance."""
    if manifest is None:
        raise InputError(f"no {MANIFEST}: cannot tell which seed file the run used", path=run_dir)
    seeds = manifest.config.get("seeds")
    if not seeds:
        raise InputError("the manifest names no seed file", path=run_dir / MANIFEST)
    rows = []
    for task in load_seeds(Path(seeds)):
        for index, instance in enumerate(task.instances):
            rows.append(
                Row(
                    id=f"seed:{task.id}-{index}",
                    instruction_id=f"seed:{task.id}",
                    instruction=task.instruction,
                    input=instance.input,
                    output=instance.output,
                    is_classification=task.is_classification,
                    source="seed",
                )
            )
    return rows


def collect_rows(
    run_dir: Path, *, include_seeds: bool = False, max_per_instruction: int | None = None
) -> tuple[list[Row], bool]:
    """The rows to export: the run's examples (plus seeds), at most K per instruction."""
    examples, torn = load_examples(run_dir)
    rows = [
        Row(
            e.id,
            e.instruction_id,
            e.instruction,
            e.input,
            e.output,
            e.is_classification,
            group=e.group,
            judge_score=e.judge.score if e.judge else None,
            candidates=tuple((c.output, c.judge.score if c.judge else None) for c in e.candidates),
        )
        for e in examples
    ]  # fmt: skip
    if include_seeds:
        rows.extend(seed_rows(read_manifest(run_dir), run_dir))
    if max_per_instruction is not None:
        rows = cap_per_instruction(rows, max_per_instruction)
    return rows, torn


def cap_per_instruction(rows: Sequence[Row], k: int) -> list[Row]:
    """The first ``k`` rows of each instruction, in file order."""
    seen: Counter[str] = Counter()
    kept = []
    for row in rows:
        if seen[row.instruction_id] < k:
            seen[row.instruction_id] += 1
            kept.append(row)
    return kept


# -- splitting ----------------------------------------------------------------------------


def parse_split(text: str) -> dict[str, float]:
    """``"train=0.95,test=0.05"`` -> ``{"train": 0.95, "test": 0.05}``; fractions sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _SPLIT_NAME.match(name):
            raise InputError(f"expected NAME=FRACTION,..., got {part.strip()!r}", field="--split")
        if name in fractions:
            raise InputError(f"split {name!r} given twice", field="--split")
        try:
            fraction = float(value)
        except ValueError:
            raise InputError(f"{value.strip()!r} is not a number", field="--split") from None
        if not 0 < fraction <= 1:
            raise InputError(f"fraction of {name!r} must be in (0, 1]", field="--split")
        fractions[name] = fraction
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise InputError(
            f"fractions must add up to 1 (they add up to {sum(fractions.values()):g})",
            field="--split",
        )
    return fractions


def _allocate(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder counts adding up to ``total``, each split at least 1."""
    if total < len(fractions):
        raise InputError(
            f"{total} instruction(s) cannot fill {len(fractions)} splits", field="--split"
        )
    exact = {name: total * fraction for name, fraction in fractions.items()}
    counts = {name: max(1, int(value)) for name, value in exact.items()}
    order = sorted(fractions, key=lambda name: (-(exact[name] - int(exact[name])), name))
    index = 0
    while sum(counts.values()) < total:
        counts[order[index % len(order)]] += 1
        index += 1
    while sum(counts.values()) > total:
        largest = max(counts, key=lambda name: (counts[name], name))
        counts[largest] -= 1
    return counts


def split_rows(rows: Sequence[Row], fractions: dict[str, float], seed: int) -> dict[str, list[Row]]:
    """Whole instructions to each split, by a seeded shuffle of the sorted instruction ids
    (the group's, for rows that share instances with another instruction)."""
    ids = sorted({row.split_key for row in rows})
    random.Random(seed).shuffle(ids)
    counts = _allocate(len(ids), fractions)
    assigned: dict[str, str] = {}
    start = 0
    for name, count in counts.items():
        for instruction_id in ids[start : start + count]:
            assigned[instruction_id] = name
        start += count
    splits: dict[str, list[Row]] = {name: [] for name in fractions}
    for row in rows:
        splits[assigned[row.split_key]].append(row)
    return splits


def shuffled(rows: Sequence[Row], seed: int, name: str) -> list[Row]:
    """A seeded shuffle of one split's rows (the split name is part of the seed)."""
    out = list(rows)
    random.Random(f"{seed}:{name}").shuffle(out)
    return out
