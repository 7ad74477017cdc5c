"""The manifest of a run: config (no secrets), versions, fingerprint, counts, usage, timings."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from selfinstruct import __version__
from selfinstruct.config import RunConfig
from selfinstruct.records import Counts, Manifest, RunStatus, Usage
from selfinstruct.run.budget import PriceTable, usage_cost
from selfinstruct.run.store import RunState
from selfinstruct.teachers.cache import ResponseCache

#: distributions whose versions every manifest records (when installed)
RECORDED_PACKAGES = ("openai", "pydantic", "rouge-score", "rapidfuzz", "llama-cpp-python", "vllm")


def package_versions() -> dict[str, str]:
    """``selfinstruct`` and the installed versions of :data:`RECORDED_PACKAGES`."""
    versions = {"selfinstruct": __version__}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_manifest(
    state: RunState,
    *,
    config: RunConfig,
    fingerprint: dict[str, str],
    status: RunStatus,
    previous: Manifest | None,
    elapsed_s: float | None = None,
    cost_usd: float | None = None,
    endpoints: dict[str, dict[str, Any]] | None = None,
    stop_reason: str | None = None,
    cache: dict[str, Any] | None = None,
    stage_modes: dict[str, str] | None = None,
    executor: dict[str, Any] | None = None,
) -> Manifest:
    """The manifest for ``state`` now; ``previous`` (the one on disk) gives the creation time
    and earlier sessions' timings, to which ``elapsed_s`` (a finished session) is added."""
    timings = dict(previous.timings_s) if previous else {}
    if elapsed_s is not None:
        timings["total"] = timings.get("total", 0.0) + elapsed_s
        timings["last_session"] = elapsed_s
    return Manifest(
        tool_version=__version__,
        created_at=previous.created_at if previous else now(),
        updated_at=now(),
        status=status,
        config=config.redacted(),
        fingerprint=fingerprint,
        package_versions=package_versions(),
        counts=Counts(
            instructions_kept=len(state.instructions),
            instructions_done=len(state.with_examples),
            examples=len(state.example_ids),
            rejected=sum(state.rejected_by_reason.values()),
            rejected_by_reason=dict(sorted(state.rejected_by_reason.items())),
            requests=dict(state.requests),
            instructions_by_origin=dict(Counter(row.origin for row in state.instructions)),
        ),
        usage=dict(state.usage),
        cost_usd=cost_usd,
        endpoints=endpoints or {},
        timings_s=timings,
        stop_reason=stop_reason,
        cache=cache or {},
        stage_modes=stage_modes or {},
        executor=executor or {},
    )


def cache_summary(
    state: RunState, cache: ResponseCache | None, prices: PriceTable
) -> dict[str, Any]:
    """The manifest's ``cache``: the file (None: the cache was off), and over the whole run the
    calls answered from it (``hits``) and by a teacher (``misses``), and the tokens and USD the
    hits saved (``saved_cost_usd`` None when a model has no price)."""
    saved = sum(state.saved_by_model.values(), Usage())
    return {
        "path": str(cache.path) if cache is not None else None,
        "hits": state.cache_hits,
        "misses": state.teacher_answers,
        "saved_tokens": saved.total_tokens,
        "saved_cost_usd": usage_cost(state.saved_by_model, prices),
    }
