"""``mix``: several sources into one seeded training mixture, plus a manifest of what it took.

1. read every source (:mod:`.sources`);
2. optionally drop rows whose instruction is a near-duplicate (ROUGE-L F > threshold, the
   :class:`~selfinstruct.filters.rouge.RougeIndex` of ``selfinstruct dedup``) of an
   instruction of an *earlier* source: sources are compared with each other, not with
   themselves (a run holds several instances of one instruction on purpose);
3. quotas per source (:mod:`.plan`: cap, temperature, weights, total);
4. each source's rows in a seeded order, the first ones taken up to its quota, skipping rows
   of a task-type group that is full (``quotas``: the largest share of the source's quota
   one group may have); a quota above the source's rows repeats the rows taken, in the same
   order;
5. the rows of all sources shuffled together (seeded) and written in any export layout and
   container (:func:`selfinstruct.export.export_rows`), and the manifest beside them.

The same sources, options and seed give byte-identical files.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from selfinstruct.errors import InputError
from selfinstruct.export import ExportOptions, ExportResult, export_rows, write_text_atomic
from selfinstruct.export.containers import resolve_container
from selfinstruct.export.rows import Row
from selfinstruct.filters.rouge import RougeIndex
from selfinstruct.mix.plan import Plan, plan_mixture
from selfinstruct.mix.sources import Source, SourceSpec, load_source
from selfinstruct.report.verbs import QUESTION, verb_noun

GROUPINGS = ("kind", "verb", "verb-noun")
ANY_GROUP = "*"


@dataclass
class MixOptions:
    """How to mix (see the module docstring); ``export`` says where and in which layout."""

    export: ExportOptions
    cap: int | None = None
    temperature: float | None = None
    total: int | None = None
    weights: dict[str, float] = field(default_factory=dict)
    repeat: bool = True
    group_by: str | None = None
    quotas: dict[str, float] = field(default_factory=dict)
    dedup_threshold: float | None = None
    seed: int = 0
    shuffle: bool = True
    manifest: Path | None = None


@dataclass
class SourceReport:
    """One source in the manifest: rows read, dropped as cross-source duplicates, available,
    capped size, weight, planned share and quota, and what was taken (unique + repeats)."""

    name: str
    path: str
    kind: str
    rows: int
    duplicates: int
    available: int
    capped: int
    weight: float
    target_share: float
    quota: int
    taken: int = 0
    unique: int = 0
    share: float = 0.0

    @property
    def repeated(self) -> int:
        return self.taken - self.unique


@dataclass
class MixResult:
    sources: list[SourceReport]
    rows: list[Row]
    groups: dict[str, int]
    export: ExportResult
    manifest_path: Path


def mix(specs: Sequence[SourceSpec], options: MixOptions) -> MixResult:
    """Read, dedup, plan, select, shuffle and write a mixture (nothing written on error)."""
    _check(specs, options)
    sources = [load_source(spec) for spec in specs]
    duplicates = cross_source_dedup(sources, options.dedup_threshold)
    sizes = [len(source.rows) for source in sources]
    weights = [options.weights.get(source.name, 1.0) for source in sources]
    plan = plan_mixture(
        sizes, cap=options.cap, temperature=options.temperature, weights=weights,
        total=options.total, repeat=options.repeat,
    )  # fmt: skip
    reports, taken_rows, groups = _select_all(sources, plan, options, duplicates, weights)
    rows = [row for part in taken_rows for row in part]
    if options.shuffle:
        random.Random(f"{options.seed}:mix").shuffle(rows)
    for report in reports:
        report.share = report.taken / len(rows) if rows else 0.0
    export = replace(options.export, shuffle=False, seed=options.seed)
    result = export_rows(rows, export)
    manifest_path = options.manifest or manifest_path_for(export)
    manifest = _manifest(options, reports, groups, result, len(rows))
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return MixResult(reports, rows, groups, result, manifest_path)


def _check(specs: Sequence[SourceSpec], options: MixOptions) -> None:
    """Refuse bad options before reading anything."""
    if not specs:
        raise InputError("name at least one source")
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"two sources are named {name!r}; name them: NAME=PATH")
    for name, weight in options.weights.items():
        if name not in names:
            raise InputError(f"no source named {name!r} (sources: {', '.join(names)})",
                             field="--weight")  # fmt: skip
        if not weight > 0:
            raise InputError(f"weight of {name!r} must be above 0", field="--weight")
    if options.group_by is not None and options.group_by not in GROUPINGS:
        raise InputError(f"expected one of {', '.join(GROUPINGS)}", field="--group-by")
    if options.quotas and options.group_by is None:
        raise InputError("quotas need --group-by (kind, verb or verb-noun)", field="--quota")
    for group, share in options.quotas.items():
        if not 0 <= share <= 1:
            raise InputError(f"share of {group!r} must be in [0, 1]", field="--quota")
    if options.export.out is None:
        raise InputError("where should the mixture go?", field="--out")
    if options.dedup_threshold is not None and not 0 <= options.dedup_threshold <= 1:
        raise InputError("must be in [0, 1]", field="--threshold")
    resolve_container(options.export.to, options.export.out)


def cross_source_dedup(sources: list[Source], threshold: float | None) -> list[int]:
    """Drop (in place) each source's rows whose instruction is a near-duplicate of an earlier
    source's; the number dropped per source."""
    dropped = [0] * len(sources)
    if threshold is None:
        return dropped
    index = RougeIndex(threshold)
    for number, source in enumerate(sources):
        verdict: dict[str, bool] = {}
        kept_rows, kept_flags = [], []
        for row, flag in zip(source.rows, source.classification, strict=True):
            text = row.instruction
            if text not in verdict:
                verdict[text] = len(index) > 0 and index.find_similar(text) is not None
            if verdict[text]:
                dropped[number] += 1
                continue
            kept_rows.append(row)
            kept_flags.append(flag)
        source.rows, source.classification = kept_rows, kept_flags
        for text, duplicate in verdict.items():
            if not duplicate:
                index.add(text)
    return dropped


def group_of(row: Row, flag: bool | None, group_by: str) -> str:
    """A row's task-type group: ``classification``/``generation``/``unknown`` (kind), or its
    root verb (``(question)``, ``(none)``), with its object noun for ``verb-noun``."""
    if group_by == "kind":
        return "unknown" if flag is None else "classification" if flag else "generation"
    found = verb_noun(row.instruction)
    verb = found.verb or "(none)"
    if group_by == "verb" or found.verb in (None, QUESTION):
        return verb
    return f"{verb} {found.noun or '(none)'}"


def _select_all(
    sources: list[Source],
    plan: Plan,
    options: MixOptions,
    duplicates: list[int],
    weights: list[float],
) -> tuple[list[SourceReport], list[list[Row]], dict[str, int]]:
    reports, parts = [], []
    groups: Counter[str] = Counter()
    for number, source in enumerate(sources):
        labels = None
        if options.group_by is not None:
            labels = [
                group_of(row, flag, options.group_by)
                for row, flag in zip(source.rows, source.classification, strict=True)
            ]
        quota, capped = plan.quotas[number], plan.capped[number]
        order = list(range(len(source.rows)))
        random.Random(f"{options.seed}:{source.name}").shuffle(order)
        chosen, unique = select(order, labels, quota, options.quotas, options.repeat)
        repeats: Counter[int] = Counter()
        part = []
        for index in chosen:
            row = source.rows[index]
            if repeats[index]:
                row = replace(row, id=f"{row.id}#{repeats[index]}")
            repeats[index] += 1
            part.append(row)
            if labels is not None:
                groups[labels[index]] += 1
        parts.append(part)
        reports.append(
            SourceReport(
                name=source.name, path=str(source.path), kind=source.kind,
                rows=len(source.rows) + duplicates[number], duplicates=duplicates[number],
                available=len(source.rows), capped=capped, weight=weights[number],
                target_share=plan.shares[number], quota=quota, taken=len(part), unique=unique,
            )
        )  # fmt: skip
    return reports, parts, dict(sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])))


def select(
    order: list[int],
    labels: list[str] | None,
    quota: int,
    shares: dict[str, float],
    repeat: bool,
) -> tuple[list[int], int]:
    """Row indices to take, in ``order`` (every row of the source): up to ``quota`` distinct
    rows, no group above its share of ``quota``; then, if ``repeat`` and ``quota`` is above
    the source's rows, the same rows again in the same order until ``quota`` is reached (less
    in proportion when group limits left rows out; still within the group limits). Returns
    the indices and how many are distinct."""
    rows = len(order)
    used: Counter[str] = Counter()

    def fits(index: int) -> bool:
        if labels is None:
            return True
        group = labels[index]
        share = shares.get(group, shares.get(ANY_GROUP))
        return share is None or used[group] < math.floor(share * quota + 1e-9)

    picked: list[int] = []
    for index in order:
        if len(picked) >= quota:
            break
        if fits(index):
            picked.append(index)
            if labels is not None:
                used[labels[index]] += 1
    taken = list(picked)
    # repeats upsample a source whose quota is above its capped size, in proportion to the
    # distinct rows it could give (never to make up for rows a group quota left out)
    target = quota if len(picked) >= rows else quota * len(picked) // max(rows, 1)
    stalled, position = 0, 0
    while repeat and quota > rows and len(taken) < target and stalled < len(picked):
        index = picked[position % len(picked)]
        position += 1
        if not fits(index):
            stalled += 1
            continue
        stalled = 0
        taken.append(index)
        if labels is not None:
            used[labels[index]] += 1
    return taken, len(picked)


def manifest_path_for(export: ExportOptions) -> Path:
    """``mix.jsonl`` -> ``mix.manifest.json``; a saved dataset ``data/hf`` ->
    ``data/hf.manifest.json``."""
    out = export.out
    assert out is not None
    if out.suffix and resolve_container(export.to, out) != "hf":
        return out.with_suffix(".manifest.json")
    return out.with_name(out.name + ".manifest.json")


def _manifest(
    options: MixOptions,
    reports: list[SourceReport],
    groups: dict[str, int],
    result: ExportResult,
    rows: int,
) -> dict[str, Any]:
    export = options.export
    return {
        "rows": rows,
        "seed": options.seed,
        "cap": options.cap,
        "temperature": options.temperature,
        "total": options.total,
        "repeat": options.repeat,
        "weights": options.weights,
        "dedup_threshold": options.dedup_threshold,
        "group_by": options.group_by,
        "quotas": options.quotas,
        "layout": export.layout,
        "container": resolve_container(export.to, export.out),
        "outputs": [str(path) for path in result.paths],
        "splits": result.rows,
        "sources": [_source_entry(report) for report in reports],
        "groups": groups,
    }


def _source_entry(report: SourceReport) -> dict[str, Any]:
    entry = {**vars(report), "repeated": report.repeated}
    entry["target_share"] = round(report.target_share, 6)
    entry["share"] = round(report.share, 6)
    return entry
