"""Export a run's ``examples.jsonl`` in the layouts fine-tuning tools read.

Row layouts (``--format``), one object per example:

* ``alpaca``: ``{"instruction", "input", "output"}`` (Stanford Alpaca; Axolotl ``alpaca``,
  LLaMA-Factory's default format);
* ``messages``: ``{"messages": [{"role": "system", ...}?, {"role": "user", ...},
  {"role": "assistant", ...}]}`` (TRL's SFTTrainer, the OpenAI fine-tuning API);
* ``sharegpt``: ``{"conversations": [{"from": "system", ...}?, {"from": "human", ...},
  {"from": "gpt", ...}]}`` (Axolotl and LLaMA-Factory ``sharegpt``);
* ``prompt-completion``: ``{"prompt", "completion"}`` (the Self-Instruct paper's GPT-3
  fine-tuning layout, see :func:`prompt_completion`; TRL reads it too).

The user turn of ``messages``/``sharegpt`` is :func:`user_content`: the instruction, then a
blank line and the input when the input is not empty.

Containers: ``--out x.json`` a JSON list, ``--out x.jsonl`` one object a line, ``--format
parquet`` a Parquet file and ``--format hf`` a directory written by ``Dataset.save_to_disk``
(both with the ``--layout`` row layout, default ``alpaca``). Every file is written to a
temporary name and renamed into place.

``--split train=0.95,test=0.05`` assigns whole *instructions* to splits (fractions are of
instructions; every example of one instruction lands in the same split), deterministically
from ``--seed``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.datafiles import HF_HINT, atomic_path, import_pyarrow
from selfinstruct.errors import InputError
from selfinstruct.records import Example, Manifest
from selfinstruct.run.files import EXAMPLES, read_manifest, read_rows
from selfinstruct.seeds import load_seeds

LAYOUTS = ("alpaca", "messages", "sharegpt", "prompt-completion")
CONTAINERS = ("hf", "parquet")
FORMATS = (*LAYOUTS, *CONTAINERS)
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")

# The Self-Instruct fine-tuning templates (prepare_for_finetuning.py in the paper's
# repository): (prompt, completion) pairs, one chosen at random per example.
PAPER_TEMPLATES_WITH_INPUT = (
    ("{instruction}\nInput: {input}\nOutput:", " {output}"),
    ("{instruction}\n\nInput: {input}\n\nOutput:", " {output}"),
    ("Task: {instruction}\nInput: {input}\nOutput:", " {output}"),
    ("{instruction}\n\n{input}\n\nOutput:", " {output}"),
    ("{instruction}\n\n{input}\n\n", "{output}"),
    ("{instruction}\n{input}\n\n", "{output}"),
    ("Task: {instruction}\n\n{input}\n\n", "{output}"),
)
PAPER_TEMPLATES_NO_INPUT = (
    ("{instruction} Output:", " {output}"),
    ("{instruction}\nOutput:", " {output}"),
    ("{instruction}\n\nOutput:", " {output}"),
    ("{instruction}\n", "{output}"),
    ("{instruction}\n\n", "{output}"),
    ("Task: {instruction}\n\n", "{output}"),
)


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


@dataclass
class ExportOptions:
    """Everything ``selfinstruct export`` can be asked for (see the module docstring)."""

    format: str
    out: Path | None = None
    layout: str = "alpaca"
    system: str | None = None
    split: dict[str, float] | None = None
    seed: int = 42
    shuffle: bool = False
    max_per_instruction: int | None = None
    include_seeds: bool = False
    paper_templates: bool = False
    eos: str = ""

    @property
    def row_layout(self) -> str:
        return self.format if self.format in LAYOUTS else self.layout


@dataclass
class ExportResult:
    """The rendered rows per split (the name ``""`` when not split) and the paths written."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)
    instructions: int = 0
    skipped_tail: bool = False

    @property
    def rows(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}


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
        raise InputError("no manifest.json: cannot tell which seed file the run used", path=run_dir)
    seeds = manifest.config.get("seeds")
    if not seeds:
        raise InputError("the manifest names no seed file", path=run_dir / "manifest.json")
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
        Row(e.id, e.instruction_id, e.instruction, e.input, e.output, e.is_classification)
        for e in examples
    ]
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
    """Whole instructions to each split, by a seeded shuffle of the sorted instruction ids."""
    ids = sorted({row.instruction_id for row in rows})
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
        splits[assigned[row.instruction_id]].append(row)
    return splits


def shuffled(rows: Sequence[Row], seed: int, name: str) -> list[Row]:
    out = list(rows)
    random.Random(f"{seed}:{name}").shuffle(out)
    return out


# -- row layouts --------------------------------------------------------------------------


def user_content(instruction: str, input: str) -> str:
    """The user turn: the instruction, then a blank line and the input if it is not empty."""
    if input.strip():
        return f"{instruction.strip()}\n\n{input.strip()}"
    return instruction.strip()


def prompt_completion(
    instruction: str, input: str, output: str, *, template: tuple[str, str] | None = None,
    eos: str = "",
) -> dict[str, str]:  # fmt: skip
    """The Self-Instruct fine-tuning layout.

    Without ``template`` (the paper's fixed layout): prompt = instruction, blank line, input,
    blank line (``"{instruction}\\n\\n{input}\\n\\n"``; without an input
    ``"{instruction}\\n\\n"``), completion = output. ``template`` is one of the paper's
    (prompt, completion) pairs. ``eos`` is appended to the completion (the paper used
    ``<|endoftext|>``; most trainers add the tokenizer's own end-of-sequence token).
    """
    instruction, input, output = instruction.strip(), input.strip(), output.strip()
    if template is None:
        prompt = f"{instruction}\n\n{input}\n\n" if input else f"{instruction}\n\n"
        return {"prompt": prompt, "completion": output + eos}
    prompt_template, completion_template = template
    return {
        "prompt": prompt_template.format(instruction=instruction, input=input),
        "completion": completion_template.format(output=output) + eos,
    }


def paper_template(row: Row, seed: int) -> tuple[str, str]:
    """The paper's template for this row: a seeded choice, stable for a given row id."""
    options = PAPER_TEMPLATES_WITH_INPUT if row.input.strip() else PAPER_TEMPLATES_NO_INPUT
    return random.Random(f"{seed}:{row.id}").choice(options)


def render(row: Row, options: ExportOptions) -> dict[str, Any]:
    """One row in the chosen layout."""
    layout = options.row_layout
    if layout == "alpaca":
        return {"instruction": row.instruction, "input": row.input, "output": row.output}
    if layout == "prompt-completion":
        template = paper_template(row, options.seed) if options.paper_templates else None
        return prompt_completion(
            row.instruction, row.input, row.output, template=template, eos=options.eos
        )
    user = user_content(row.instruction, row.input)
    if layout == "messages":
        turns = [{"role": "user", "content": user}, {"role": "assistant", "content": row.output}]
        if options.system:
            turns.insert(0, {"role": "system", "content": options.system})
        return {"messages": turns}
    if layout == "sharegpt":
        turns = [{"from": "human", "value": user}, {"from": "gpt", "value": row.output}]
        if options.system:
            turns.insert(0, {"from": "system", "value": options.system})
        return {"conversations": turns}
    raise InputError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")


# -- writing ------------------------------------------------------------------------------


def split_path(out: Path, name: str) -> Path:
    """``data.jsonl`` -> ``data-train.jsonl``."""
    return out.with_name(f"{out.stem}-{name}{out.suffix}")


def write_json_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A JSON list for ``.json``, one object a line for ``.jsonl``; atomically."""
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(path, text)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A Parquet file (pyarrow), written to a temporary name and renamed into place."""
    pa, pq = import_pyarrow()
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(list(rows)), tmp)


def import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise InputError(f"this needs the 'datasets' package: {HF_HINT}") from None
    return datasets


def build_dataset(tables: dict[str, list[dict[str, Any]]]) -> Any:
    """A ``datasets.Dataset`` (one table named ``""``) or a ``DatasetDict`` (named splits)."""
    datasets = import_datasets()
    if list(tables) == [""]:
        return datasets.Dataset.from_list(tables[""])
    return datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in tables.items()}
    )


def save_hf(out: Path, dataset: Any) -> None:
    """``save_to_disk`` into a temporary directory, then swap it into place."""
    if out.exists():
        if not out.is_dir():
            raise InputError("exists and is not a directory", path=out, field="--out")
        if any(out.iterdir()) and not _is_saved_dataset(out):
            raise InputError(
                "directory exists and is not a saved dataset; choose an empty or new one",
                path=out,
                field="--out",
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    logging = import_datasets().utils.logging
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        dataset.save_to_disk(str(staging / "data"))
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
            os.replace(out, old / "data")
        os.replace(staging / "data", out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if bars:
            logging.enable_progress_bar()


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def check_out(options: ExportOptions) -> None:
    """Refuse an ``--out`` that does not fit the format, before anything is read or written."""
    out, fmt = options.out, options.format
    if out is None:
        return
    if fmt in LAYOUTS and out.suffix not in (".json", ".jsonl"):
        raise InputError(
            "must end in .json (a JSON list) or .jsonl (one object a line)", path=out, field="--out"
        )
    if fmt in LAYOUTS or fmt == "parquet":
        targets = [split_path(out, name) for name in options.split] if options.split else [out]
        for target in targets:
            if target.is_dir():
                raise InputError("is a directory, expected a file name", path=target, field="--out")


def _tables(rows: list[Row], options: ExportOptions) -> dict[str, list[Row]]:
    parts = split_rows(rows, options.split, options.seed) if options.split else {"": rows}
    if options.shuffle:
        parts = {name: shuffled(part, options.seed, name) for name, part in parts.items()}
    return parts


def export_rows(rows: list[Row], options: ExportOptions) -> ExportResult:
    """Split, render and write ``rows`` (nothing is written when ``options.out`` is None)."""
    if not rows:
        raise InputError("no examples to export")
    check_out(options)
    parts = _tables(rows, options)
    result = ExportResult(
        tables={name: [render(row, options) for row in part] for name, part in parts.items()},
        instructions=len({row.instruction_id for row in rows}),
    )
    out = options.out
    if out is None:
        return result
    if options.format == "hf":
        save_hf(out, build_dataset(result.tables))
        result.paths.append(out)
        return result
    for name, table in result.tables.items():
        path = split_path(out, name) if name else out
        if options.format == "parquet":
            write_parquet(path, table)
        else:
            write_json_rows(path, table)
        result.paths.append(path)
    return result


def export_run(run_dir: Path, options: ExportOptions) -> ExportResult:
    """Read, validate, select, split, render and write a run's examples."""
    if options.format not in FORMATS:
        raise InputError(f"unknown format {options.format!r} (one of {', '.join(FORMATS)})")
    if options.format in CONTAINERS and options.layout not in LAYOUTS:
        raise InputError(f"unknown layout {options.layout!r} (one of {', '.join(LAYOUTS)})")
    check_out(options)
    rows, torn = collect_rows(
        run_dir,
        include_seeds=options.include_seeds,
        max_per_instruction=options.max_per_instruction,
    )
    result = export_rows(rows, options)
    result.skipped_tail = torn
    return result
