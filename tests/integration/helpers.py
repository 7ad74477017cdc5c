"""Reading a run directory back, and the reference ROUGE-L, for the integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rouge_score import rouge_scorer

from selfinstruct.records import Example, Instruction, Manifest, Rejection

REPO = Path(__file__).resolve().parents[2]


def rows(path: Path, model: type) -> list:
    return [model.model_validate_json(line) for line in path.read_text().splitlines() if line]


def read_run(out: Path) -> dict:
    return {
        "examples": rows(out / "examples.jsonl", Example),
        "instructions": rows(out / "instructions.jsonl", Instruction),
        "rejected": rows(out / "rejected.jsonl", Rejection),
        "manifest": Manifest.model_validate_json((out / "manifest.json").read_text()),
    }


def max_pairwise_rouge(texts: list[str]) -> float:
    """The reference implementation's largest ROUGE-L F over all pairs."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    best = 0.0
    for i, a in enumerate(texts):
        for b in texts[:i]:
            best = max(best, scorer.score(a, b)["rougeL"].fmeasure)
    return best


def all_text_written(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def cli_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m selfinstruct ARGS`` as a real child process (for signal tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "selfinstruct", *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def example_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / "examples.jsonl").read_text().splitlines()]
