"""The report page, rendered from ``templates/report.html.j2``, and the printed summary.

The template is read with :mod:`importlib.resources` (it ships in the wheel). Autoescaping
is on and every value is escaped with :func:`html.escape` (quotes too); only the base64
chart images are marked safe.
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from selfinstruct.records import Counts
from selfinstruct.report.numbers import Report
from selfinstruct.report.stats import percentile
from selfinstruct.run.budget import format_usd, total_cost

TEMPLATE = "report.html.j2"
REPORT_DIR = "report"
_CLIP = 400  # characters of a sample cell shown


def esc(value: object) -> Markup:
    """HTML-escape anything (quotes too): every text from a run goes through here."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def template() -> jinja2.Template:
    source = resources.files("selfinstruct.report").joinpath("templates", TEMPLATE)
    env = jinja2.Environment(
        autoescape=True, finalize=esc, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return env.from_string(source.read_text(encoding="utf-8"))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[:_CLIP] + " …"


def headline(report: Report) -> list[tuple[str, str]]:
    """The headline numbers: the page's first table and the printed summary."""
    counts = report.manifest.counts if report.manifest else None
    cost, complete = total_cost(report.usage)
    per_example = report.tokens_per_example
    return [
        ("instructions kept by stage 1", f"{_stage_one(counts):,}" if counts else "?"),
        ("instructions in the dataset", f"{len(report.dataset_instructions):,}"),
        ("examples", f"{len(report.examples):,}"),
        ("rejected (all stages)", f"{report.rejected_total:,}"),
        ("teacher tokens", f"{report.total_tokens:,}"),
        ("tokens per example", f"{per_example:,.0f}" if per_example is not None else "—"),
        ("cost", format_usd(cost) + ("" if complete else " + unknown (unpriced models)")),
        *_origins(report),
    ]


def _stage_one(counts: Counts) -> int:
    return counts.instructions_by_origin.get("self-instruct", counts.instructions_kept)


def _origins(report: Report) -> list[tuple[str, str]]:
    """Examples by origin, when augmentation (evolve, paraphrase, invert) made any."""
    origins = Counter(example.origin for example in report.examples)
    if set(origins) <= {"self-instruct"}:
        return []
    return [("examples by origin", ", ".join(f"{k} {n:,}" for k, n in origins.most_common()))]


def _rouge(report: Report) -> dict[str, str] | None:
    if report.seed_scores is None:
        return None
    scores = sorted(report.seed_scores)
    summary = "—"
    if scores:
        summary = (
            f"median {statistics.median(scores):.2f}, p90 {percentile(scores, 90):.2f}, "
            f"max {scores[-1]:.2f}"
        )
    return {"threshold": f"{report.rouge_threshold:g}", "summary": summary}


def _lengths(report: Report) -> dict[str, Any]:
    rows = []
    for name, values in report.lengths.items():
        ordered = sorted(values)
        rows.append(
            (name, f"{len(ordered):,}", *(percentile(ordered, p) for p in (50, 90, 99)),
             ordered[-1] if ordered else 0)
        )  # fmt: skip
    share = report.empty_inputs / len(report.examples) if report.examples else 0.0
    return {
        "rows": rows,
        "empty": f"{report.empty_inputs:,}",
        "examples": f"{len(report.examples):,}",
        "share": f"{share:.0%}",
    }


def _verbs(report: Report) -> dict[str, Any]:
    table = report.verbs
    return {
        "total": f"{table.total:,}",
        "parsed": f"{sum(table.verbs.values()):,}",
        "distinct": f"{len(table.verbs):,}",
        "with_noun": f"{sum(sum(nouns.values()) for nouns in table.nouns.values()):,}",
        "questions": f"{sum(table.questions.values()):,}",
        "question_words": table.questions.most_common(6),
        "unparsed": f"{table.unparsed:,}",
    }


def _usage(report: Report) -> dict[str, Any]:
    cost, complete = total_cost(report.usage)
    examples = len(report.examples)
    per_example = report.tokens_per_example
    return {
        "rows": [
            (
                u.stage,
                u.model,
                f"{u.requests:,}",
                f"{u.errors:,}",
                f"{u.prompt_tokens:,}",
                f"{u.completion_tokens:,}",
                format_usd(u.cost),
            )
            for u in report.usage
        ],
        "total_tokens": f"{report.total_tokens:,}",
        "per_example": f"{per_example:,.0f}" if per_example is not None else None,
        "cost": format_usd(cost),
        "complete": complete,
        "per_thousand": format_usd(cost / examples * 1000) if examples and complete else "unknown",
    }


def _samples(report: Report) -> dict[str, Any]:
    return {
        "kept": [
            (e.instruction_id, _clip(e.instruction), _clip(e.input), _clip(e.output))
            for e in report.kept_sample
        ],
        "rejected": [
            (r.stage, r.reason, _clip(r.candidate), _clip(_json(r.details)))
            for r in report.rejected_sample
        ],
        "examples": f"{len(report.examples):,}",
        "rejected_total": f"{report.rejected_total:,}",
    }


def render_html(report: Report, charts: dict[str, Path]) -> str:
    """The self-contained page: ``charts`` (name -> PNG) are embedded as base64."""
    models: dict[str, list[str]] = {}
    for line in report.usage:
        models.setdefault(line.model, []).append(line.stage)
    teachers = "; ".join(f"{model} ({', '.join(stages)})" for model, stages in models.items())
    images = {
        name: Markup(base64.b64encode(path.read_bytes()).decode("ascii"))
        for name, path in charts.items()
    }
    return template().render(
        title=f"selfinstruct report: {report.run_dir.name}",
        run_dir=report.run_dir,
        manifest=report.manifest,
        teachers=teachers,
        headline=headline(report),
        images=images,
        counts=[(r.stage, r.label, r.kind, f"{r.count:,}") for r in report.stage_rows],
        rouge=_rouge(report),
        lengths=_lengths(report),
        verbs=_verbs(report),
        usage=_usage(report),
        samples=_samples(report),
        judge=report.judge.summary() if report.judge else None,
        notes=report.notes,
    )


def summary_text(report: Report, html_path: Path) -> str:
    """The few lines ``selfinstruct report`` prints."""
    lines = [f"Report: {html_path}"]
    for label, value in headline(report):
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
    if report.judge is not None:
        lines.append(f"  {'judge scores':<30} {report.judge.summary()}")
    verbs = report.verbs.verbs.most_common(5)
    if verbs:
        lines.append(f"  {'top verbs':<30} " + ", ".join(f"{v} {n}" for v, n in verbs))
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
