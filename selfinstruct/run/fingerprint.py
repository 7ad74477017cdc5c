"""What must not change between a run and its resume, and the check made before resuming."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from selfinstruct.config import RunConfig
from selfinstruct.errors import InputError
from selfinstruct.run.files import read_manifest


def fingerprint(
    config: RunConfig, seeds_path: Path, prompt_sha256: Mapping[str, str]
) -> dict[str, str]:
    """Hashes of the seed file, the filter settings and each prompt template (by name); the
    judge's ``min_score`` and the outputs' ``samples`` when the judge is on or samples > 1."""
    filters = config.filters.model_dump_json()
    result = {
        "seeds_sha256": hashlib.sha256(seeds_path.read_bytes()).hexdigest(),
        "filters_sha256": hashlib.sha256(filters.encode()).hexdigest(),
        "rouge_threshold": repr(config.filters.rouge_threshold),
    }
    for name, sha256 in prompt_sha256.items():
        result[f"prompt:{name}"] = sha256
    # present only when set, so runs made without them resume unchanged
    if config.stages.judge.enabled:
        result["judge"] = f"min_score={config.stages.judge.min_score}"
    if config.stages.outputs.samples > 1:
        result["outputs.samples"] = str(config.stages.outputs.samples)
    return result


def check_resume(out: Path, expected: Mapping[str, str], force: bool) -> None:
    """Refuse to continue a run made with other seeds, prompts or filters (unless forced)."""
    manifest = read_manifest(out)
    if manifest is None or force:
        return
    changed = sorted(
        key
        for key in set(expected) | set(manifest.fingerprint)
        if expected.get(key) != manifest.fingerprint.get(key)
    )
    if changed:
        raise InputError(
            "this run was made with other settings (changed: "
            + ", ".join(changed)
            + "); resuming would mix inconsistent data. Use another --out, or --force"
            + _structured_hint(changed, manifest.fingerprint),
            path=out,
        )


def _structured_hint(changed: list[str], before: Mapping[str, str]) -> str:
    """How to resume a chat run made before structured outputs existed: its fingerprint has
    no structured templates, which ``structured: auto`` now loads."""
    new = [key for key in changed if key.endswith(".structured") and key not in before]
    if not new or len(new) != len(changed):
        return ""
    stages = sorted({key.removeprefix("prompt:").split(".")[0] for key in new})
    sets = " ".join(f"--set stages.{stage}.structured=off" for stage in stages)
    return f". This run was made before structured outputs; to resume it as it was made: {sets}"
