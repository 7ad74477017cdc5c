"""The numbers behind the report: read a run (:func:`load_run`), count and sample it
(:func:`build_report`). Charts and HTML are drawn from the :class:`Report` elsewhere."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import InputError
from selfinstruct.filters.rouge import RougeIndex
from selfinstruct.records import STAGES, Example, Instruction, Manifest, Rejection, TeacherCall
from selfinstruct.report.judge import JudgeNumbers, judge_numbers
from selfinstruct.report.stats import words
from selfinstruct.report.verbs import VerbNounTable, verb_noun_table
from selfinstruct.run.budget import UsageLine, load_prices, usage_lines
from selfinstruct.run.files import (
    EXAMPLES,
    INSTRUCTIONS,
    REJECTED,
    REQUESTS,
    read_manifest,
    read_rows,
)
from selfinstruct.seeds import load_seeds


@dataclass
class RunData:
    """Everything read from a run directory (every row validated)."""

    run_dir: Path
    manifest: Manifest | None
    examples: list[Example]
    instructions: list[Instruction]
    rejections: list[Rejection]
    calls: list[TeacherCall]
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: Path) -> RunData:
    """Every row of a run directory; a torn last line is skipped with a note."""
    if not run_dir.is_dir():
        raise InputError("no such run directory", path=run_dir)
    if not (run_dir / EXAMPLES).exists():
        raise InputError(f"no {EXAMPLES} here: not a run directory", path=run_dir)
    read = read_rows(run_dir / EXAMPLES, Example)
    examples = read.rows
    notes = [f"{EXAMPLES}: skipped an incomplete last line"] if read.torn else []
    rows: dict[str, list[Any]] = {}
    for name, model in (
        (INSTRUCTIONS, Instruction),
        (REJECTED, Rejection),
        (REQUESTS, TeacherCall),
    ):
        path = run_dir / name
        if not path.exists():
            rows[name] = []
            notes.append(f"{name}: missing")
            continue
        read = read_rows(path, model)
        rows[name] = read.rows
        if read.torn:
            notes.append(f"{name}: skipped an incomplete last line")
    return RunData(
        run_dir,
        read_manifest(run_dir),
        examples,
        rows[INSTRUCTIONS],
        rows[REJECTED],
        rows[REQUESTS],
        notes,
    )


# -- the numbers --------------------------------------------------------------------------


@dataclass
class StageRow:
    """One bar of the counts chart: ``kind`` is ``kept`` or ``rejected``."""

    stage: str
    label: str
    count: int
    kind: str


@dataclass
class Report:
    """The numbers behind the report; charts and HTML are made from this."""

    run_dir: Path
    manifest: Manifest | None
    stage_rows: list[StageRow]
    dataset_instructions: list[str]
    examples: list[Example]
    seed_scores: list[float] | None
    rouge_threshold: float
    lengths: dict[str, list[int]]
    empty_inputs: int
    verbs: VerbNounTable
    usage: list[UsageLine]
    kept_sample: list[Example]
    rejected_sample: list[Rejection]
    rejected_total: int
    notes: list[str] = field(default_factory=list)
    #: the judge's score counts (None: the run has no judge scores)
    judge: JudgeNumbers | None = None

    @property
    def total_tokens(self) -> int:
        return sum(line.total_tokens for line in self.usage)

    @property
    def tokens_per_example(self) -> float | None:
        return self.total_tokens / len(self.examples) if self.examples else None


def stage_rows(data: RunData) -> list[StageRow]:
    """Kept instructions and examples, and rejections by (stage, reason), in stage order."""
    by_stage: dict[str, Counter[str]] = {}
    for row in data.rejections:
        by_stage.setdefault(row.stage, Counter())[row.reason] += 1
    rows: list[StageRow] = []
    origins = Counter(row.origin for row in data.instructions)  # derived ones: their stage's
    origins["paraphrase"] = sum(example.origin == "paraphrase" for example in data.examples)
    for stage in STAGES:
        if stage == "instructions":
            rows.append(StageRow(stage, "kept", origins["self-instruct"], "kept"))
        if stage == "outputs":
            rows.append(StageRow(stage, "examples kept", len(data.examples), "kept"))
        if stage in ("evolve", "paraphrase", "invert") and origins[stage]:
            label = "examples kept" if stage == "paraphrase" else "kept"
            rows.append(StageRow(stage, label, origins[stage], "kept"))
        for reason, count in by_stage.get(stage, Counter()).most_common():
            rows.append(StageRow(stage, reason, count, "rejected"))
    return rows


def seed_similarity(
    instructions: Sequence[str], manifest: Manifest | None
) -> tuple[list[float] | None, str | None]:
    """Each instruction's highest ROUGE-L F against the run's seed instructions, or a note
    saying why it cannot be computed."""
    seeds = manifest.config.get("seeds") if manifest else None
    if not seeds:
        return None, "no seed file recorded in manifest.json: the ROUGE-L histogram is skipped"
    path = Path(seeds)
    if not path.exists():
        return None, f"seed file {path} is gone: the ROUGE-L histogram is skipped"
    try:
        tasks = load_seeds(path)
    except InputError as exc:
        return None, f"seed file unreadable ({exc}): the ROUGE-L histogram is skipped"
    index = RougeIndex()
    for task in tasks:
        index.add(task.instruction)
    return [index.most_similar(text)[0] for text in instructions], None


def _samples(data: RunData, count: int, seed: int) -> tuple[list[Example], list[Rejection]]:
    """A seeded sample of examples, and rejections taken round-robin over the reasons."""
    rng = random.Random(seed)
    kept = rng.sample(data.examples, min(count, len(data.examples)))
    by_reason: dict[str, list[Rejection]] = {}
    for row in data.rejections:
        by_reason.setdefault(f"{row.stage}/{row.reason}", []).append(row)
    pools = [rng.sample(rows, len(rows)) for _, rows in sorted(by_reason.items())]
    rejected: list[Rejection] = []
    while len(rejected) < count and any(pools):
        for pool in pools:
            if pool and len(rejected) < count:
                rejected.append(pool.pop())
    return kept, rejected


def build_report(
    run_dir: Path, *, prices: Path | None = None, samples: int = 10, seed: int = 0
) -> Report:
    """Read a run and compute every number the report shows."""
    data = load_run(run_dir)
    table = load_prices(prices)
    first: dict[str, str] = {}
    for example in data.examples:
        first.setdefault(example.instruction_id, example.instruction)
    instructions = list(first.values())
    scores, note = seed_similarity(instructions, data.manifest)
    filters = data.manifest.config.get("filters", {}) if data.manifest else {}
    kept, rejected = _samples(data, samples, seed)
    inputs = [example.input for example in data.examples]
    return Report(
        run_dir=run_dir,
        manifest=data.manifest,
        stage_rows=stage_rows(data),
        dataset_instructions=instructions,
        examples=data.examples,
        seed_scores=scores,
        rouge_threshold=float(filters.get("rouge_threshold", 0.7)),
        lengths={
            "instructions": [words(text) for text in instructions],
            "inputs (non-empty)": [words(text) for text in inputs if text.strip()],
            "outputs": [words(example.output) for example in data.examples],
        },
        empty_inputs=sum(not text.strip() for text in inputs),
        verbs=verb_noun_table(instructions),
        usage=usage_lines(data.calls, table),
        kept_sample=kept,
        rejected_sample=rejected,
        rejected_total=len(data.rejections),
        notes=[*data.notes, *([note] if note else [])],
        judge=judge_numbers(data.examples, data.rejections, data.manifest),
    )
