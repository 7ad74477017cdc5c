"""``selfinstruct status DIR``: what a run has done and what is left, from its files alone."""

from __future__ import annotations

from pathlib import Path

from selfinstruct.errors import InputError
from selfinstruct.run.files import read_manifest
from selfinstruct.run.store import load_state


def describe_run(out: Path) -> str:
    """A short text report. Reads only (a torn last line is counted out, not repaired)."""
    if not out.is_dir():
        raise InputError("no such run directory", path=out)
    manifest = read_manifest(out)
    if manifest is None:
        raise InputError("not a run directory (no manifest.json)", path=out)
    state = load_state(out, repair=False)
    target = int(manifest.config.get("num_instructions", 0))
    done = len(state.with_examples)
    pending = len(state.pending)
    rejected = sum(state.rejected_by_reason.values())
    prompt_tokens = sum(usage.prompt_tokens for usage in state.usage.values())
    completion_tokens = sum(usage.completion_tokens for usage in state.usage.values())
    percent = f" ({100 * done / target:.0f}%)" if target else ""
    lines = [
        f"{out}: {manifest.status}"
        + (f" ({manifest.stop_reason})" if manifest.stop_reason else "")
        + f", updated {manifest.updated_at}",
        f"  target      {target} instructions with examples",
        f"  done        {done}{percent}; kept by stage 1: {len(state.instructions)}, "
        f"waiting for stages 2-3: {pending}",
        f"  examples    {len(state.example_ids)}",
        f"  rejected    {rejected}",
    ]
    for reason, count in state.rejected_by_reason.most_common(8):
        lines.append(f"    {count:6d}  {reason}")
    requests = ", ".join(f"{stage} {count}" for stage, count in state.requests.items())
    lines.append(f"  requests    {sum(state.requests.values())} ({requests})")
    lines.append(f"  tokens      {prompt_tokens:,} in, {completion_tokens:,} out")
    if "total" in manifest.timings_s:
        lines.append(f"  time        {manifest.timings_s['total']:.0f} s over all sessions")
    if state.repaired:
        lines.append("  note        an incomplete last line will be cut on resume")
    if done < target:
        lines.append(
            f"  left        {target - done} instructions; resume with the same "
            f"`selfinstruct generate` command and --out {out}"
        )
    return "\n".join(lines)
