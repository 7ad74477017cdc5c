"""The Hugging Face Hub: a dataset card for an exported run, and the push itself.

The card (``README.md``) has YAML metadata the Hub reads (license, task_categories,
size_categories, configs naming each split's Parquet files as ``push_to_hub`` writes them)
and says how the data was made: the Self-Instruct stages, teacher models and tokens,
counts and rejections, filter settings and the run's configuration (API keys are never in
the manifest; local paths and URL credentials are taken out here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from selfinstruct.export.options import ExportOptions, ExportResult
from selfinstruct.records import Manifest, TeacherCall
from selfinstruct.run.budget import UsageLine, load_prices, usage_lines
from selfinstruct.run.files import REQUESTS, read_manifest, read_rows

_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_LAYOUT_FIELDS = {
    "alpaca": "`instruction`, `input` (may be empty) and `output` strings",
    "messages": "`messages`: a list of `{role, content}` turns (`system`?, `user`, `assistant`); "
    "the user turn is the instruction, then a blank line and the input when there is one",
    "sharegpt": "`conversations`: a list of `{from, value}` turns (`system`?, `human`, `gpt`); "
    "the human turn is the instruction, then a blank line and the input when there is one",
    "prompt-completion": "`prompt` (the instruction, a blank line, the input and a blank line, "
    "as in the Self-Instruct paper's fine-tuning data) and `completion` (the output)",
    "preference": "`prompt` (the instruction, a blank line and the input), `chosen` and "
    "`rejected` (the best- and the lowest-rated of several sampled outputs, as rated by an LLM "
    "judge 1-10; never equal) and their `score_chosen` and `score_rejected`: TRL's DPO format",
    "ranked": "`prompt` (the instruction, a blank line and the input), `completions` (several "
    "sampled outputs, best first, as rated by an LLM judge) and their `scores` (1-10)",
}


def size_category(rows: int) -> str:
    for bound, name in _SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "n>10M"


def card_config(config: dict[str, Any]) -> dict[str, Any]:
    """The manifest's config (API keys already removed) with local paths cut to file names
    and any ``user:password@`` taken out of URLs, fit for a public page."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            value = _URL_USERINFO.sub("", value)
            if "://" not in value and (
                value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:\\", value)
            ):
                return Path(value).name
        return value

    return clean(config)


def dataset_card(
    run_dir: Path,
    result: ExportResult,
    options: ExportOptions,
    *,
    repo_id: str | None = None,
    license: str = "other",
) -> str:
    """A Hugging Face dataset card (README.md): YAML metadata, then how the data was made."""
    manifest = read_manifest(run_dir)
    calls = read_rows(run_dir / REQUESTS, TeacherCall).rows
    usage = usage_lines(calls, load_prices())
    rows = result.rows
    total = sum(rows.values())
    names = [name or "train" for name in rows]
    metadata = {
        "license": license,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["self-instruct", "synthetic", "instruction-tuning", "selfinstruct"],
        "size_categories": [size_category(total)],
        "pretty_name": (repo_id or run_dir.name).split("/")[-1],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*"} for name in names],
            }
        ],
    }
    lines = ["---", yaml.safe_dump(metadata, sort_keys=False).rstrip(), "---", ""]
    lines += [f"# {metadata['pretty_name']}", ""]
    lines += _card_summary(manifest, result, options, total)
    lines += _card_teachers(usage)
    lines += _card_counts(manifest, result)
    if manifest is not None:
        lines += _card_filters(manifest.config.get("filters", {}))
        config = json.dumps(card_config(manifest.config), indent=2, ensure_ascii=False)
        lines += [
            "## Configuration",
            "",
            "The run's configuration as recorded in its `manifest.json` (API keys are never "
            "recorded; local paths are cut to file names):",
            "",
            "```json",
            config,
            "```",
            "",
        ]
    lines += _card_limits()
    return "\n".join(lines)


def _card_summary(
    manifest: Manifest | None, result: ExportResult, options: ExportOptions, total: int
) -> list[str]:
    version = manifest.tool_version if manifest else "unknown"
    fields = _LAYOUT_FIELDS[options.layout]
    if options.layout == "prompt-completion" and options.paper_templates:
        fields = "`prompt` and `completion` (the output)"
    seeds = ", with the seed tasks themselves included" if options.include_seeds else ""
    lines = [
        f"{total:,} instruction-following examples for {result.instructions:,} distinct "
        f"instructions, machine-generated with `selfinstruct` {version}, an implementation of "
        f"Self-Instruct ([Wang et al., 2023](https://arxiv.org/abs/2212.10560)){seeds}.",
        "",
        "## How it was made",
        "",
        "1. **Instructions**: a teacher model was shown seed tasks (human-written) and earlier "
        "machine-written tasks as demonstrations and asked for new tasks. Each candidate "
        "passed heuristic filters and the ROUGE-L novelty rule: it is dropped when its "
        "ROUGE-L F against any seed or kept instruction exceeds the threshold.",
        "2. **Classification or not**: the teacher decided whether each task is a "
        "classification task.",
        "3. **Inputs**: for classification tasks output-first (a label, then an input for it), "
        "otherwise input-first.",
        "4. **Outputs**: the teacher answered each (instruction, input); instances with "
        "empty, placeholder, truncated or input-copying outputs were dropped.",
        "",
        "## Layout",
        "",
        f"Each row has {fields}.",
    ]
    if options.system:
        lines += ["", f"Every conversation starts with the system turn: {options.system!r}."]
    if options.paper_templates:
        lines += [
            "",
            "Prompts use one of the paper's 13 fine-tuning templates per row (seeded choice), "
            "e.g. `Task: {instruction}\\nInput: {input}\\nOutput:`.",
        ]
    if options.eos:
        lines += ["", f"Every completion ends with {options.eos!r}."]
    if options.split:
        lines += [
            "",
            "Splits are by instruction: all examples of one instruction are in the same split.",
        ]
    return [*lines, ""]


def _card_teachers(usage: list[UsageLine]) -> list[str]:
    if not usage:
        return []
    lines = [
        "## Teacher models",
        "",
        "| stage | model | requests | prompt tokens | completion tokens |",
        "|---|---|---:|---:|---:|",
    ]
    for line in usage:
        lines.append(
            f"| {line.stage} | `{line.model}` | {line.requests:,} | {line.prompt_tokens:,} "
            f"| {line.completion_tokens:,} |"
        )
    return [*lines, ""]


def _card_counts(manifest: Manifest | None, result: ExportResult) -> list[str]:
    lines = ["## Counts", "", "| | |", "|---|---:|"]
    for name, count in result.rows.items():
        lines.append(f"| rows in `{name or 'train'}` | {count:,} |")
    if manifest is not None:
        counts = manifest.counts
        lines.append(f"| instructions kept by stage 1 | {counts.instructions_kept:,} |")
        lines.append(f"| instructions with examples | {counts.instructions_done:,} |")
        lines.append(f"| examples in the run | {counts.examples:,} |")
        for reason, count in sorted(counts.rejected_by_reason.items(), key=lambda kv: -kv[1]):
            lines.append(f"| rejected: {reason} | {count:,} |")
    return [*lines, ""]


def _card_filters(filters: dict[str, Any]) -> list[str]:
    if not filters:
        return []
    lines = ["## Filters", ""]
    described = {
        "rouge_threshold": "ROUGE-L novelty threshold (drop if max F > this)",
        "min_words": "fewest words in an instruction",
        "max_words": "most words in an instruction",
        "blacklist": "instructions with these words are dropped",
        "banned_prefixes": "instructions starting with these are dropped",
        "placeholder_outputs": "outputs treated as empty",
    }
    for key, value in filters.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"- {described.get(key, key)} (`{key}`): {shown}")
    return [*lines, ""]


def _card_limits() -> list[str]:
    return [
        "## Limitations",
        "",
        "Every instruction, input and output was written by a language model and was not "
        "checked by people: expect wrong answers, odd tasks and the teacher's biases. Check "
        "the teacher model's terms of use before training on or publishing this data, and "
        "set the card's license accordingly.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{wang2023selfinstruct,",
        "  title = {Self-Instruct: Aligning Language Models with Self-Generated Instructions},",
        "  author = {Wang, Yizhong and Kordi, Yeganeh and Mishra, Swaroop and Liu, Alisa and "
        "Smith, Noah A. and Khashabi, Daniel and Hajishirzi, Hannaneh},",
        "  booktitle = {Proceedings of ACL},",
        "  year = {2023}",
        "}",
        "```",
        "",
    ]


def push_to_hub(dataset: Any, card: str, repo_id: str, *, private: bool, token: str) -> str:
    """Create the dataset repo, upload the card, then ``push_to_hub`` the data (which adds
    its ``dataset_info`` to the card's metadata). Returns the repo's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_file(
        path_or_fileobj=card.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        commit_message="Dataset card from selfinstruct",
    )
    dataset.push_to_hub(repo_id, private=private, token=token)
    return str(url)
