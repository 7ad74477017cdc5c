"""The judge stage and sampled outputs, end to end: the CLI against a scripted server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import read_run

JUDGE = ["--set", "stages.judge.enabled=true"]


def generate(server: ScriptedOpenAIServer, out: Path, n: int, *extra: str):
    args = [
        "generate", "--base-url", server.base_url, "--model", "X", "--api", "chat",
        "-n", str(n), "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip
    return CliRunner().invoke(cli, args)


def stage_requests(server: ScriptedOpenAIServer, stage: str) -> list:
    return [r for r in server.requests if r.headers.get("x-selfinstruct-stage") == stage]


def test_judge_scores_every_example_drops_low_scores_and_shows_in_export_and_report(
    tmp_path, scripted_server
):
    out = tmp_path / "run"
    result = generate(scripted_server, out, 25, *JUDGE)
    assert result.exit_code == 0, result.output
    run = read_run(out)
    examples, rejected = run["examples"], run["rejected"]

    assert len({e.instruction_id for e in examples}) == 25
    assert all(e.judge is not None and 6 <= e.judge.score <= 10 for e in examples)
    assert all(e.judge.model == "X" and e.judge.rationale for e in examples)
    low = [r for r in rejected if r.reason == "judge_low_score"]
    assert low and all(r.stage == "judge" and 1 <= r.details["score"] < 6 for r in low)
    assert all(r.details["rationale"] and r.details["model"] == "X" for r in low)
    assert run["manifest"].usage["judge"].prompt_tokens > 0

    # the judge saw only instances the instance filters kept: no judge request rates one
    # of the outputs the filters dropped (the scripted outputs stage writes "N/A" now and then)
    dropped = Counter(r.reason for r in rejected if r.stage == "outputs")
    assert dropped["placeholder_output"] > 0, dropped
    rated = [json.dumps(r.body) for r in stage_requests(scripted_server, "judge")]
    assert rated and not any("Answer: N/A" in body for body in rated)
    # one judge request per instance that reached the judge: kept, or dropped by it (jobs
    # still running when the target was reached are discarded, their calls stay logged)
    written = {e.instruction_id for e in examples} | {r.instruction_id for r in rejected}
    calls = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    judged = [c for c in calls if c["stage"] == "judge" and c["serves"][0] in written]
    assert len(judged) == len(examples) + sum(r.stage == "judge" for r in rejected)

    table = tmp_path / "alpaca.jsonl"
    exported = CliRunner().invoke(cli, ["export", str(out), "--out", str(table)])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    by_output = {e.output: e.judge.score for e in examples}
    assert [row["judge_score"] for row in rows] == [by_output[row["output"]] for row in rows]

    report = CliRunner().invoke(cli, ["report", str(out)])
    assert report.exit_code == 0, report.output
    assert "judge scores" in report.output
    assert (out / "report" / "judge.png").stat().st_size > 1000
    html = (out / "report" / "report.html").read_text()
    assert "Judge scores" in html and 'alt="judge score histogram"' in html


def test_samples_with_judge_give_a_dpo_export_datasets_loads(tmp_path, scripted_server):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "run"
    result = generate(scripted_server, out, 20, *JUDGE, "--set", "stages.outputs.samples=3")
    assert result.exit_code == 0, result.output
    examples = read_run(out)["examples"]

    # n=3 honoured: one outputs request per input, three distinct outputs, the best kept
    outputs = stage_requests(scripted_server, "outputs")
    assert outputs and all(r.body.get("n") == 3 for r in outputs)
    sampled = [e for e in examples if e.candidates]
    assert sampled
    for example in sampled:
        assert example.candidates[0].output == example.output
        scores = [c.judge.score for c in example.candidates if c.judge]
        assert scores == sorted(scores, reverse=True) and scores[0] == example.judge.score

    dpo = tmp_path / "dpo.jsonl"
    exported = CliRunner().invoke(
        cli, ["export", str(out), "--layout", "preference", "--out", str(dpo)]
    )
    assert exported.exit_code == 0, exported.output
    table = datasets.load_dataset("json", data_files=str(dpo), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(table.column_names)
    assert len(table) > 0
    assert all(row["chosen"] != row["rejected"] for row in table)
    assert all(row["score_chosen"] > row["score_rejected"] for row in table)
    skipped = len(examples) - len(table)
    assert (f"skipped {skipped:,} examples" in exported.output) == (skipped > 0)

    ranked = tmp_path / "ranked.jsonl"
    exported = CliRunner().invoke(
        cli, ["export", str(out), "--layout", "ranked", "--out", str(ranked)]
    )
    assert exported.exit_code == 0, exported.output
    for line in ranked.read_text().splitlines():
        row = json.loads(line)
        assert len(row["completions"]) == len(set(row["completions"])) >= 2
        assert row["scores"] == sorted(row["scores"], reverse=True)


def test_a_server_that_ignores_n_gets_the_missing_samples_one_request_each(tmp_path):
    with ScriptedOpenAIServer(SelfInstructResponder(), ignore_n=True) as server:
        out = tmp_path / "run"
        result = generate(
            server, out, 12, *JUDGE, "--set", "stages.outputs.samples=3",
            "--max-concurrency", "1", "--set", "teacher.probe_capabilities=false",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs = stage_requests(server, "outputs")
    examples = read_run(out)["examples"]
    # the first request asked n=3 and got one reply: two more were asked; then 3 x n=1
    assert outputs[0].body.get("n") == 3
    assert all(r.body.get("n", 1) == 1 for r in outputs[1:])
    generated = [e for e in examples if not e.is_classification]
    assert generated and all(len(e.candidates) >= 2 for e in generated)


def test_enabling_the_judge_on_an_existing_run_is_refused_with_the_reason(tmp_path):
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        out = tmp_path / "run"
        assert generate(server, out, 5).exit_code == 0
        result = generate(server, out, 10, *JUDGE)
        assert result.exit_code == 2
        assert "changed: judge, prompt:judge" in result.output
        # the same run without the judge resumes as before; with --force the judge joins
        assert generate(server, out, 8).exit_code == 0
        forced = generate(server, out, 12, *JUDGE, "--force")
        assert forced.exit_code == 0, forced.output
    examples = read_run(out)["examples"]
    judged = {e.instruction_id for e in examples if e.judge is not None}
    unjudged = {e.instruction_id for e in examples if e.judge is None}
    assert len(unjudged) == 8 and len(judged) == 4
