"""The report's charts, drawn with matplotlib (Agg backend) from a :class:`Report`.

Each function writes one PNG at 100 dpi and returns its path; :func:`write_charts` writes
them all. Sizes grow with the number of bars, so labels never overlap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfinstruct.errors import InputError
from selfinstruct.records import STAGES
from selfinstruct.report.stats import percentile

if TYPE_CHECKING:
    from selfinstruct.report.numbers import Report

REPORT_HINT = "pip install 'selfinstruct[report]'"
DPI = 100
TOP_VERBS = 20
TOP_NOUNS = 4


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError(f"the report needs matplotlib: {REPORT_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "text.parse_math": False,  # a "$" in a label is text, not TeX
        }
    )
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, pil_kwargs={"optimize": True})
    plt.close(fig)
    return path


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def chart_counts(report: Report, path: Path) -> Path:
    plt = pyplot()
    rows = report.stage_rows
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.4))
    labels = [f"{row.stage} · {row.label}" for row in rows]
    colors = ["#3a9d5d" if row.kind == "kept" else "#d9823b" for row in rows]
    positions = list(range(len(rows)))[::-1]
    ax.barh(positions, [row.count for row in rows], color=colors, height=0.7)
    ax.set_yticks(positions, labels)
    top = max((row.count for row in rows), default=0) or 1
    for y, row in zip(positions, rows, strict=True):
        ax.text(row.count + top * 0.01, y, f"{row.count:,}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.12)
    _integer_axis(ax.xaxis)
    ax.xaxis.set_major_formatter(_thousands())
    ax.set_xlabel("rows")
    ax.set_title("Kept (green) and rejected (orange) by stage and reason")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(plt, fig, path)


def chart_rouge(report: Report, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    scores = report.seed_scores or []
    ax.hist(scores, bins=[i / 20 for i in range(21)], color="#4c72b0", edgecolor="white")
    ax.axvline(report.rouge_threshold, color="#c44e52", linestyle="--", linewidth=1.5)
    ax.text(
        report.rouge_threshold,
        0.97,
        f" threshold {report.rouge_threshold:g}",
        color="#c44e52",
        transform=ax.get_xaxis_transform(),
        va="top",
        fontsize=9,
    )
    ax.set_xlim(0, 1)
    _integer_axis(ax.yaxis)
    ax.set_xlabel("ROUGE-L F with the most similar seed instruction")
    ax.set_ylabel("instructions")
    ax.set_title(f"Overlap with the seed instructions ({len(scores):,} instructions)")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(plt, fig, path)


def chart_lengths(report: Report, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    colors = ("#4c72b0", "#55a868", "#8172b2")
    for ax, (name, values), color in zip(axes, report.lengths.items(), colors, strict=True):
        ax.spines[["top", "right"]].set_visible(False)
        if not values:
            ax.set_title(name)
            _empty(ax, "none")
            continue
        ordered = sorted(values)
        p50, p90 = percentile(ordered, 50), percentile(ordered, 90)
        top = ordered[-1]
        step = max(1, -(-top // 30))
        ax.hist(values, bins=range(0, top + step + 1, step), color=color, edgecolor="white")
        ax.set_title(f"{name}\nn={len(values):,}  median={p50}  p90={p90}", fontsize=11)
        _integer_axis(ax.yaxis)
        ax.set_xlabel("words")
        ax.set_ylabel("count")
    return _save(plt, fig, path)


def chart_verbs(report: Report, path: Path) -> Path:
    plt = pyplot()
    top = report.verbs.top(TOP_VERBS, TOP_NOUNS)
    fig, ax = plt.subplots(figsize=(10, 0.4 * max(len(top), 3) + 1.6))
    ax.spines[["top", "right"]].set_visible(False)
    if not top:
        _empty(ax, "no instruction starts with a known verb")
        ax.set_title("Root verbs and their direct objects")
        return _save(plt, fig, path)
    shades = ("#2f5d8a", "#4c86b8", "#79a9d6", "#a9cbea")
    positions = list(range(len(top)))[::-1]
    widest = max(count for _, count, _ in top)
    for y, (_verb, count, nouns) in zip(positions, top, strict=True):
        left = 0
        for rank, (_noun, n) in enumerate(nouns):
            ax.barh(y, n, left=left, color=shades[rank], height=0.7, edgecolor="white")
            left += n
        ax.barh(y, count - left, left=left, color="#d0d0d0", height=0.7, edgecolor="white")
        label = "  ".join(f"{noun[:16]} {n}" for noun, n in nouns) or "(no noun found)"
        ax.text(count + widest * 0.015, y, label, va="center", fontsize=9, color="#333")
    ax.set_yticks(positions, [f"{verb} ({count})" for verb, count, _ in top])
    ax.set_xlim(0, widest * 1.9)
    _integer_axis(ax.xaxis)
    table = report.verbs
    ax.set_xlabel("instructions (blue: the 4 most common objects, darkest first; grey: others)")
    ax.set_title(
        f"Top {len(top)} root verbs and their top {TOP_NOUNS} direct-object nouns\n"
        f"{sum(table.verbs.values()):,} of {table.total:,} instructions start with a known verb; "
        f"{sum(table.questions.values()):,} questions, {table.unparsed:,} unparsed",
        fontsize=11,
    )
    return _save(plt, fig, path)


def chart_tokens(report: Report, path: Path) -> Path:
    plt = pyplot()
    stages = [stage for stage in STAGES if any(line.stage == stage for line in report.usage)]
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(len(stages), 2) + 1.4))
    ax.spines[["top", "right"]].set_visible(False)
    if not stages:
        _empty(ax, "no teacher requests recorded")
        ax.set_title("Tokens per stage")
        return _save(plt, fig, path)
    prompt = [sum(u.prompt_tokens for u in report.usage if u.stage == s) for s in stages]
    completion = [sum(u.completion_tokens for u in report.usage if u.stage == s) for s in stages]
    positions = list(range(len(stages)))[::-1]
    ax.barh(positions, prompt, color="#4c72b0", height=0.6, label="prompt (input)")
    ax.barh(positions, completion, left=prompt, color="#dd8452", height=0.6, label="completion")
    widest = max(p + c for p, c in zip(prompt, completion, strict=True)) or 1
    for y, p, c in zip(positions, prompt, completion, strict=True):
        ax.text(p + c + widest * 0.01, y, f"{p + c:,}", va="center", fontsize=9)
    ax.set_yticks(positions, stages)
    ax.set_xlim(0, widest * 1.15)
    ax.xaxis.set_major_formatter(_thousands())
    ax.set_xlabel("tokens")
    ax.set_title("Teacher tokens per stage")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    return _save(plt, fig, path)


def chart_judge(report: Report, path: Path) -> Path:
    """Examples per judge score, kept and dropped (below ``min_score``), stacked."""
    plt = pyplot()
    numbers = report.judge
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.spines[["top", "right"]].set_visible(False)
    scores = list(range(1, 11))
    kept = [numbers.kept[s] if numbers else 0 for s in scores]
    dropped = [numbers.dropped[s] if numbers else 0 for s in scores]
    ax.bar(scores, kept, color="#4c72b0", label="kept")
    ax.bar(scores, dropped, bottom=kept, color="#c44e52", label="dropped (judge_low_score)")
    if numbers and numbers.min_score:
        ax.axvline(numbers.min_score - 0.5, color="#c44e52", linestyle="--", linewidth=1.5)
    ax.set_xticks(scores)
    _integer_axis(ax.yaxis)
    ax.set_xlabel("judge score (1-10)")
    ax.set_ylabel("examples")
    ax.set_title(f"Judge scores ({numbers.rated if numbers else 0:,} rated outputs)")
    ax.legend(frameon=False)
    return _save(plt, fig, path)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: f"{value:,.0f}")


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def write_charts(report: Report, out_dir: Path) -> dict[str, Path]:
    charts = {
        "counts": chart_counts,
        "lengths": chart_lengths,
        "verbs": chart_verbs,
        "tokens": chart_tokens,
    }
    if report.seed_scores is not None:
        charts["rouge"] = chart_rouge
    if report.judge is not None:
        charts["judge"] = chart_judge
    return {name: make(report, out_dir / f"{name}.png") for name, make in charts.items()}
