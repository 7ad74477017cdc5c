"""Plain-text rendering of a preview: one block per stage, the request as the teacher gets it."""

from __future__ import annotations

import json

from selfinstruct.preview.live import Exchange, LivePreview, StageStep
from selfinstruct.preview.offline import Preview, StagePreview, TeacherLine
from selfinstruct.records import Rejection
from selfinstruct.run.budget import format_usd
from selfinstruct.teachers.base import Request

RULE = "=" * 78


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` (0: whole) with a note of what was left out."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[... {len(text) - max_chars:,} more characters]"


def short(text: str, max_chars: int = 200) -> str:
    """One line of at most ``max_chars`` characters (an ellipsis where cut)."""
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def teacher_text(line: TeacherLine) -> str:
    model = line.model or "(model discovered at start)"
    where = f" at {', '.join(line.base_urls)}" if line.base_urls else ""
    price = "no price" if line.price is None else f"${line.price[0]:g}/${line.price[1]:g} per 1M"
    return f"{line.kind} {model} ({line.api}){where}; {price}"


def sampling_text(request: Request) -> str:
    stop = json.dumps(list(request.stop), ensure_ascii=False)
    return (
        f"max_tokens={request.max_tokens} temperature={request.temperature:g} "
        f"top_p={request.top_p:g} stop={stop} seed={request.seed} n={request.n}"
    )


def request_text(request: Request, max_chars: int) -> list[str]:
    """The request's body: each chat message under its role, or the completion prompt."""
    lines = [f"  sampling: {sampling_text(request)}"]
    if request.messages is not None:
        for message in request.messages:
            lines.append(f"  --- {message.role} ---")
            lines.append(clip(message.content, max_chars))
    else:
        lines.append("  --- prompt ---")
        lines.append(clip(request.prompt or "", max_chars))
    return lines


def stage_text(stage: StagePreview, max_chars: int) -> list[str]:
    count = len(stage.requests)
    head = f"{stage.name}: {count} request{'s' if count != 1 else ''} (on: {stage.state})"
    lines = [RULE, head, f"  teacher: {teacher_text(stage.teacher)}"]
    lines += [f"  template: {path}" for path in stage.templates]
    if stage.requests:
        if count > 1:
            lines.append(f"  (the first of {count} is shown)")
        lines += request_text(stage.requests[0], max_chars)
    return lines


def preview_text(preview: Preview, max_chars: int = 1500) -> str:
    """The whole preview: what was checked, then every stage's first request."""
    config, seeds = preview.config, preview.seeds
    classification = sum(task.is_classification for task in seeds)
    names = " -> ".join(stage.name for stage in preview.stages)
    kind = "classification" if preview.stand_in.is_classification else "generation"
    lines = [
        f"checked: config, {len(seeds)} seed tasks ({classification} classification), "
        f"{len(preview.built.templates)} prompt templates, price table; no teacher called",
        f"seeds: {config.seeds}",
        f"stages: {names}",
        f"stand-in for the stages after {preview.stages[0].name}: seed task "
        f"{preview.stand_in.id!r} ({kind})",
    ]  # fmt: skip
    lines += [f"note: {note}" for note in preview.notes]
    for stage in preview.stages:
        lines += stage_text(stage, max_chars)
    return "\n".join(lines)


# -- --live ---------------------------------------------------------------------------------


def _reply(exchange: Exchange, max_chars: int) -> list[str]:
    done = exchange.completion
    usage = done.usage
    head = (
        f"  reply ({done.model or 'model?'}, finish={done.finish_reason}, "
        f"{usage.prompt_tokens}+{usage.completion_tokens} tokens):"
    )
    return [head, clip(done.text, max_chars)]


def _drafts(step: StageStep) -> list[str]:
    lines = [f"  -> classification: {'yes' if step.is_classification else 'no'}; "
             f"{len(step.drafts)} draft(s)"]  # fmt: skip
    for number, (text, output) in enumerate(step.drafts, start=1):
        shown = "(no output yet)" if output is None else repr(short(output))
        lines.append(f"     {number}. input {short(text)!r} -> output {shown}")
    return lines


def _rejections(rejections: list[Rejection]) -> list[str]:
    return [f"  -> dropped ({r.reason}): {short(r.candidate)!r}" for r in rejections]


def live_text(live: LivePreview, max_chars: int = 1500) -> str:
    """What ``--live`` saw: the endpoints, every round and stage with its reply and the
    decisions taken on it, the instance filters' verdict, tokens and cost."""
    lines = [RULE, "live: endpoints"]
    if not live.endpoints:
        lines.append("  none: the teachers run in this process")
    for check in live.endpoints:
        if check.error:
            lines.append(f"  {check.url}: no model list ({check.error})")
            continue
        honoured = [name for name, value in check.capabilities.items() if value]
        probe = f"; honours: {', '.join(honoured) or 'none of n, list_prompts, seed, json_schema'}"
        lines.append(f"  {check.url}: models {', '.join(check.models)}"
                     + (probe if check.capabilities else ""))  # fmt: skip
    models = ", ".join(f"{stage}={model}" for stage, model in live.models.items())
    lines.append(f"  teachers: {models}")
    for step in live.rounds:
        lines += [RULE, f"{step.exchange.stage}: round {step.number}"]
        lines += _reply(step.exchange, max_chars)
        lines += _rejections(step.rejections)
        for found in step.candidates:
            verdict = "KEEP" if found.reason is None else f"DROP {found.reason}"
            near = ""
            if found.nearest:  # scored by the ROUGE-L rule (heuristic drops are not)
                near = f" (max ROUGE-L {found.score:.2f} vs {short(found.nearest, 80)!r})"
            lines.append(f"  {verdict}: {short(found.text)!r}{near}")
    if live.instruction is None:
        lines += [RULE, f"no candidate was kept in {len(live.rounds)} round(s): see the drops"]
    else:
        lines.append(f"  -> the job runs: {live.instruction!r}")
    for stage in live.steps:
        lines += [RULE, f"{stage.name}: {len(stage.exchanges)} request(s)"]
        for exchange in stage.exchanges:
            lines += _reply(exchange, max_chars)
        lines += _drafts(stage) + _rejections(stage.rejections)
    if live.instruction is not None:
        lines += [RULE, f"instance filters: kept {len(live.kept)}, dropped {len(live.dropped)}"]
        lines += [f"  KEEP: input {short(i.input)!r} -> output {short(i.output)!r}"
                  for i in live.kept]  # fmt: skip
        lines += _rejections(live.dropped)
    lines += [RULE, "tokens and cost (nothing was written: the calls were kept in memory)"]
    for line in live.usage:
        lines.append(
            f"  {line.stage:<14} {line.model:<24} {line.requests:>3} requests "
            f"{line.prompt_tokens:>7,} in {line.completion_tokens:>7,} out  {format_usd(line.cost)}"
        )
    known, complete = live.cost
    lines.append(f"  total: {format_usd(known)}{'' if complete else ' + unpriced models'}")
    return "\n".join(lines)
