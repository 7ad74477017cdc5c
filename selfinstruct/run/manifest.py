"""The manifest of a run: config (no secrets), versions, fingerprint, counts, usage, timings."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from selfinstruct import __version__
from selfinstruct.config import RunConfig
from selfinstruct.records import Counts, Manifest, RunStatus
from selfinstruct.run.store import RunState

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
        ),
        usage=dict(state.usage),
        cost_usd=cost_usd,
        endpoints=endpoints or {},
        timings_s=timings,
        stop_reason=stop_reason,
        executor=executor or {},
    )
