"""``selfinstruct report RUN_DIR``: what a run made, what it dropped and what it cost.

Writes ``RUN_DIR/report/report.html`` (self-contained: the charts are embedded as base64
PNGs) and the PNGs next to it:

* ``counts.png``   kept and rejected rows by stage and reason;
* ``rouge.png``    each dataset instruction's highest ROUGE-L F against the seed
                   instructions (the Self-Instruct paper's Figure 3);
* ``lengths.png``  words in instructions, non-empty inputs and outputs;
* ``verbs.png``    the 20 most common root verbs and their 4 most common direct-object
                   nouns (the paper's Figure 2), by the heuristic in :mod:`selfinstruct.verbs`;
* ``tokens.png``   prompt and completion tokens per stage.

This module computes the numbers (:func:`build_report`) and the HTML; the charts are drawn
by :mod:`selfinstruct.charts`. Costs come from :mod:`selfinstruct.run.budget`. Every text taken
from the run is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import InputError
from selfinstruct.export import load_examples, write_text_atomic
from selfinstruct.filters.rouge import RougeIndex
from selfinstruct.records import STAGES, Example, Instruction, Manifest, Rejection, TeacherCall
from selfinstruct.run.budget import (
    UsageLine,
    format_usd,
    load_prices,
    total_cost,
    usage_lines,
)
from selfinstruct.run.files import INSTRUCTIONS, REJECTED, REQUESTS, read_manifest, read_rows
from selfinstruct.seeds import load_seeds
from selfinstruct.stats import percentile, words
from selfinstruct.verbs import VerbNounTable, verb_noun_table

REPORT_DIR = "report"
_CLIP = 400  # characters of a sample cell shown


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
    examples, torn = load_examples(run_dir)
    notes = ["examples.jsonl: skipped an incomplete last line"] if torn else []
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
    for stage in STAGES:
        if stage == "instructions":
            rows.append(StageRow(stage, "kept", len(data.instructions), "kept"))
        if stage == "outputs":
            rows.append(StageRow(stage, "examples kept", len(data.examples), "kept"))
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
    )


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.samples td { max-width: 420px; white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #8a5300; } .muted { color: #666; font-size: 0.92em; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def esc(value: object) -> str:
    """HTML-escape anything (quotes too): every text from a run goes through here."""
    return html.escape(str(value), quote=True)


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[:_CLIP] + " …"


def _table(head: Sequence[str] | None, rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    def cell(tag: str, index: int, value: object) -> str:
        cls = ' class="n"' if index in numeric else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    out = ["<table>"]
    if head is not None:
        out += ["<tr>", *(cell("th", i, h) for i, h in enumerate(head)), "</tr>"]
    for row in rows:
        out += ["<tr>", *(cell("td", i, v) for i, v in enumerate(row)), "</tr>"]
    out.append("</table>")
    return "".join(out)


def _image(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></p>'


def _headline(report: Report) -> list[tuple[str, str]]:
    counts = report.manifest.counts if report.manifest else None
    cost, complete = total_cost(report.usage)
    per_example = report.tokens_per_example
    rows = [
        ("instructions kept by stage 1", f"{counts.instructions_kept:,}" if counts else "?"),
        ("instructions in the dataset", f"{len(report.dataset_instructions):,}"),
        ("examples", f"{len(report.examples):,}"),
        ("rejected (all stages)", f"{report.rejected_total:,}"),
        ("teacher tokens", f"{report.total_tokens:,}"),
        ("tokens per example", f"{per_example:,.0f}" if per_example is not None else "—"),
        ("cost", format_usd(cost) + ("" if complete else " + unknown (unpriced models)")),
    ]
    return rows


def _section_counts(report: Report, charts: dict[str, Path]) -> str:
    rows = [(r.stage, r.label, r.kind, f"{r.count:,}") for r in report.stage_rows]
    return (
        "<h2>Kept and rejected</h2>"
        + _image(charts.get("counts"), "kept and rejected by stage and reason")
        + '<p class="muted"><code>no_valid_instances</code> counts instructions dropped '
        "because none of their instances survived; other stage 2/3 reasons count instances."
        "</p>" + _table(("stage", "reason", "", "rows"), rows, {3})
    )


def _section_rouge(report: Report, charts: dict[str, Path]) -> str:
    head = "<h2>Similarity to the seed tasks</h2>"
    if report.seed_scores is None:
        return head + '<p class="note">Skipped: see the notes below.</p>'
    scores = sorted(report.seed_scores)
    summary = "—"
    if scores:
        summary = (
            f"median {statistics.median(scores):.2f}, p90 {percentile(scores, 90):.2f}, "
            f"max {scores[-1]:.2f}"
        )
    return (
        head + "<p>For each instruction in the dataset, its highest ROUGE-L F (the project's "
        "exact implementation, equal to <code>rouge-score</code> without stemming) against "
        "the seed instructions, as in Figure 3 of the Self-Instruct paper. The novelty filter "
        "compares with the seeds <em>and</em> every instruction kept before, so a score here "
        f"never exceeds the threshold ({report.rouge_threshold:g}). {esc(summary)}.</p>"
        + _image(charts.get("rouge"), "ROUGE-L against the seeds")
    )


def _section_lengths(report: Report, charts: dict[str, Path]) -> str:
    rows = []
    for name, values in report.lengths.items():
        ordered = sorted(values)
        rows.append(
            (name, f"{len(ordered):,}", *(percentile(ordered, p) for p in (50, 90, 99)),
             ordered[-1] if ordered else 0)
        )  # fmt: skip
    share = report.empty_inputs / len(report.examples) if report.examples else 0.0
    return (
        "<h2>Lengths</h2>"
        + _image(charts.get("lengths"), "length distributions")
        + f"<p>Words are whitespace-separated tokens. Empty inputs: {report.empty_inputs:,} "
        f"of {len(report.examples):,} examples ({share:.0%}).</p>"
        + _table(("field", "n", "p50", "p90", "p99", "max"), rows, {1, 2, 3, 4, 5})
    )


_VERB_METHOD = """
<p>How this was computed — an offline heuristic, not a parser (the paper used the Berkeley
Neural Parser, which cannot be downloaded here):</p>
<ol>
<li>The instruction is split into sentences; the first sentence that yields a verb is used.</li>
<li>Polite and framing openers (<code>please</code>, <code>can you</code>, <code>I want you
to</code>, <code>your task is to</code>…) and a leading clause up to its first comma
(<code>Given a list of numbers, …</code>) are skipped.</li>
<li>The <b>verb</b> is the first remaining word if it is in a built-in list of about 280 common
imperative verbs (a few phrasal verbs like <code>come up with</code> count as one).
Sentences opening with a question word or auxiliary (<code>what</code>, <code>how</code>,
<code>is</code>…) are counted as questions; anything else as unparsed.</li>
<li>The <b>noun</b> is the head (last word) of the first noun phrase after the verb, skipping
determiners, pronouns, numbers and adjectives (a word list and the suffixes
<code>-ous -ful -ive -able -ible -ical -est -less</code>) and stopping at a preposition,
conjunction, question word, <code>-ing</code>/<code>-ly</code> word or punctuation.
Plurals are reduced by suffix rules.</li>
</ol>
<p class="muted">Limits: verbs missing from the list, and imperatives after a long preamble,
give no verb; a sentence that starts with a noun that is also a verb (<code>List of …</code>)
is read as that verb; compound nouns can yield the wrong head; plural reduction is a few
suffix rules, not a lemmatizer. Treat the chart as a rough picture of diversity.</p>
"""


def _question_words(table: VerbNounTable) -> str:
    if not table.questions:
        return ""
    return " (" + ", ".join(f"{esc(w)} {n}" for w, n in table.questions.most_common(6)) + ")"


def _section_verbs(report: Report, charts: dict[str, Path]) -> str:
    table = report.verbs
    parsed = sum(table.verbs.values())
    with_noun = sum(sum(nouns.values()) for nouns in table.nouns.values())
    return (
        "<h2>Diversity: verbs and their objects</h2>"
        + _image(charts.get("verbs"), "root verbs and direct-object nouns")
        + f"<p>{table.total:,} instructions: {parsed:,} start with a known verb "
        f"({len(table.verbs):,} distinct verbs, {with_noun:,} with a noun found), "
        f"{sum(table.questions.values()):,} are questions{_question_words(table)}, "
        f"{table.unparsed:,} unparsed.</p>" + _VERB_METHOD
    )


def _section_usage(report: Report, charts: dict[str, Path]) -> str:
    rows = [
        (u.stage, u.model, f"{u.requests:,}", f"{u.errors:,}", f"{u.prompt_tokens:,}",
         f"{u.completion_tokens:,}", format_usd(u.cost))
        for u in report.usage
    ]  # fmt: skip
    cost, complete = total_cost(report.usage)
    examples = len(report.examples)
    per_k = format_usd(cost / examples * 1000) if examples and complete else "unknown"
    per_example = report.tokens_per_example
    return (
        "<h2>Tokens and cost</h2>"
        + _image(charts.get("tokens"), "tokens per stage")
        + _table(
            ("stage", "model", "requests", "failed", "prompt tokens", "completion tokens", "cost"),
            rows,
            {2, 3, 4, 5, 6},
        )
        + f"<p>Total {report.total_tokens:,} tokens, "
        + (f"{per_example:,.0f} per kept example; " if per_example is not None else "")
        + f"cost {esc(format_usd(cost))}"
        + ("" if complete else " plus the unpriced models")
        + f", {esc(per_k)} per 1,000 examples.</p>"
        + '<p class="muted">Token counts are what the teacher reported. Prices (USD per 1M '
        "tokens) come from <code>selfinstruct/prices.yaml</code> and the file given with "
        "<code>--prices</code>; a model in neither has an unknown cost.</p>"
    )


def _section_samples(report: Report) -> str:
    kept = [
        (e.instruction_id, _clip(e.instruction), _clip(e.input), _clip(e.output))
        for e in report.kept_sample
    ]
    rejected = [
        (r.stage, r.reason, _clip(r.candidate), _clip(json.dumps(r.details, ensure_ascii=False)))
        for r in report.rejected_sample
    ]
    return (
        "<h2>Samples</h2>"
        + f"<h3>Kept ({len(kept)} of {len(report.examples):,}, at random)</h3>"
        + _table(("instruction id", "instruction", "input", "output"), kept, set()).replace(
            "<table>", '<table class="samples">', 1
        )
        + f"<h3>Rejected ({len(rejected)} of {report.rejected_total:,}, across reasons)</h3>"
        + _table(("stage", "reason", "candidate", "details"), rejected, set()).replace(
            "<table>", '<table class="samples">', 1
        )
    )


def render_html(report: Report, charts: dict[str, Path]) -> str:
    manifest = report.manifest
    title = f"selfinstruct report: {report.run_dir.name}"
    meta = []
    if manifest is not None:
        meta.append(
            f"status <b>{esc(manifest.status)}</b>, selfinstruct {esc(manifest.tool_version)}, "
            f"created {esc(manifest.created_at)}, updated {esc(manifest.updated_at)}"
        )
    models: dict[str, list[str]] = {}
    for line in report.usage:
        models.setdefault(line.model, []).append(line.stage)
    if models:
        teachers = "; ".join(f"{model} ({', '.join(stages)})" for model, stages in models.items())
        meta.append("teachers: " + esc(teachers))
    notes = "".join(f'<li class="note">{esc(note)}</li>' for note in report.notes)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{esc(title)}</h1>",
            f'<p class="muted">{esc(report.run_dir)}<br>{"<br>".join(meta)}</p>',
            _table(None, _headline(report), {1}),
            _section_counts(report, charts),
            _section_rouge(report, charts),
            _section_lengths(report, charts),
            _section_verbs(report, charts),
            _section_usage(report, charts),
            _section_samples(report),
            f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "",
            "</body></html>",
        ]
    )


def summary_text(report: Report, html_path: Path) -> str:
    """The few lines ``selfinstruct report`` prints."""
    lines = [f"Report: {html_path}"]
    for label, value in _headline(report):
        lines.append(f"  {label:<30} {value}")
    reasons = [r for r in report.stage_rows if r.kind == "rejected"]
    reasons.sort(key=lambda r: -r.count)
    if reasons:
        top = ", ".join(f"{r.stage}/{r.label} {r.count:,}" for r in reasons[:3])
        lines.append(f"  {'top rejections':<30} {top}")
    if report.seed_scores:
        scores = sorted(report.seed_scores)
        lines.append(
            f"  {'ROUGE-L vs seeds':<30} median {statistics.median(scores):.2f}, "
            f"max {scores[-1]:.2f}"
        )
    verbs = report.verbs.verbs.most_common(5)
    if verbs:
        lines.append(f"  {'top verbs':<30} " + ", ".join(f"{v} {n}" for v, n in verbs))
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)


def write_report(
    run_dir: Path, *, prices: Path | None = None, samples: int = 10, seed: int = 0
) -> tuple[Report, Path]:
    """Build the report of ``run_dir`` and write ``RUN_DIR/report/`` (HTML and PNGs)."""
    from selfinstruct.charts import pyplot, write_charts

    pyplot()  # fail early, before reading anything, if matplotlib is missing
    report = build_report(run_dir, prices=prices, samples=samples, seed=seed)
    out_dir = run_dir / REPORT_DIR
    out_dir.mkdir(exist_ok=True)
    charts = write_charts(report, out_dir)
    html_path = out_dir / "report.html"
    write_text_atomic(html_path, render_html(report, charts))
    return report, html_path
