"""The whole pipeline through the real ``openai`` SDK against a scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.seeds import load_seeds
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

from ..conftest import SEEDS
from .helpers import all_text_written, cli_process, example_ids, max_pairwise_rouge, read_run

SECRET = "sk-planted-SECRET-4f9a1c"


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_generate_end_to_end(tmp_path, monkeypatch, scripted_server, api):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "run"
    args = [
        "generate", "--base-url", scripted_server.base_url, "--model", "X", "--api", api,
        "--num-instructions", "30", "--out", str(out), "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = read_run(out)

    # the target, exactly, and every row valid (read_run validates each with pydantic)
    finished = {row.instruction_id for row in run["examples"]}
    assert len(finished) == 30
    assert len(run["examples"]) >= 30
    assert len({row.id for row in run["examples"]}) == len(run["examples"])
    assert all(row.output.strip() for row in run["examples"])
    assert any(row.is_classification for row in run["examples"])
    assert all(row.provenance.models["instructions"] == "X" for row in run["examples"])

    # novelty: no two instructions, seeds included, above the paper's threshold
    seeds = [task.instruction for task in load_seeds(SEEDS)]
    kept = [row.instruction for row in run["instructions"]]
    assert max_pairwise_rouge(seeds + kept) <= 0.7

    # every filter left its reason; similar ones say what they were similar to
    reasons = Counter(f"{row.stage}/{row.reason}" for row in run["rejected"])
    for reason in ("rouge_similar", "too_short", "blacklisted_word", "banned_prefix"):
        assert reasons[f"instructions/{reason}"] > 0, reasons
    similar = next(row for row in run["rejected"] if row.reason == "rouge_similar")
    assert similar.details["score"] > 0.7 and similar.details["most_similar"]

    # the manifest: usage per stage from the API's usage, counts, no key
    manifest = run["manifest"]
    assert manifest.status == "complete"
    assert manifest.counts.instructions_done == 30
    for stage in ("instructions", "classify", "inputs", "outputs"):
        assert manifest.usage[stage].prompt_tokens > 0
    assert manifest.config["teacher"]["api"] == api

    # the key was sent to the server, and written nowhere
    assert any(
        r.headers.get("authorization") == f"Bearer {SECRET}" for r in scripted_server.requests
    )
    assert SECRET not in all_text_written(out)
    assert SECRET not in result.output

    # the pipeline's requests: one prompt each, never n > 1 or a list prompt (the capability
    # probe at start asks for both on purpose, as stage "probe")
    for request in scripted_server.requests:
        probe = request.headers.get("x-selfinstruct-stage") == "probe"
        if request.path.endswith("completions") and not probe:
            assert request.body.get("n", 1) == 1
            assert not isinstance(request.body.get("prompt"), list)

    # a second run of the same command finds the target reached and adds nothing
    before = (out / "examples.jsonl").read_text()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert (out / "examples.jsonl").read_text() == before


def test_a_larger_target_resumes_the_same_run(tmp_path, scripted_server):
    out = tmp_path / "run"
    base = ["generate", "--base-url", scripted_server.base_url, "--out", str(out), "-q"]
    assert CliRunner().invoke(cli, [*base, "-n", "5"]).exit_code == 0
    first = example_ids(out)
    assert CliRunner().invoke(cli, [*base, "-n", "12"]).exit_code == 0
    ids = example_ids(out)
    assert ids[: len(first)] == first
    assert len(ids) == len(set(ids))
    assert len({i.split("-")[0] for i in ids}) == 12


def test_changed_settings_are_refused_unless_forced(tmp_path, scripted_server):
    out = tmp_path / "run"
    base = ["generate", "--base-url", scripted_server.base_url, "--out", str(out), "-q", "-n", "3"]
    assert CliRunner().invoke(cli, base).exit_code == 0
    changed = CliRunner().invoke(cli, [*base, "-n", "4", "--set", "filters.rouge_threshold=0.5"])
    assert changed.exit_code == 2
    assert "other settings" in changed.output and "rouge_threshold" in changed.output
    forced = CliRunner().invoke(
        cli, [*base, "-n", "4", "--set", "filters.rouge_threshold=0.5", "--force"]
    )
    assert forced.exit_code == 0, forced.output


def test_bad_seeds_exit_2_and_write_nothing(tmp_path, scripted_server):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        '{"instruction": "ok ok ok ok", "output": "x"}\n{"instruction": 3, "output": "y"}\n'
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--base-url",
            scripted_server.base_url,
            "--seeds",
            str(seeds),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert f"{seeds}:2: instruction:" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unreachable_teacher_is_one_line_and_no_traceback(tmp_path):
    result = CliRunner().invoke(
        cli, ["generate", "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "r"), "-q"]
    )
    assert result.exit_code != 0
    assert result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_ctrl_c_half_way_then_rerun_finishes_exactly(tmp_path):
    out = tmp_path / "run"
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.02) as server:
        args = ["generate", "--base-url", server.base_url, "-n", "30", "--out", str(out), "-q",
                "--max-concurrency", "4"]  # fmt: skip
        child = cli_process(args, env={"OPENAI_API_KEY": SECRET})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = out / "examples.jsonl"
            if path.exists() and len({i.split("-")[0] for i in example_ids(path.parent)}) >= 8:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == 130, stderr
        assert "Resume" in stderr and "Traceback" not in stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "stopped"
        interrupted = example_ids(out)
        assert 8 <= len({i.split("-")[0] for i in interrupted}) < 30

        child = cli_process(args, env={"OPENAI_API_KEY": SECRET})
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
    ids = example_ids(out)
    assert ids[: len(interrupted)] == interrupted
    assert len(ids) == len(set(ids))
    assert len({i.split("-")[0] for i in ids}) == 30
    assert SECRET not in all_text_written(out) + stdout + stderr


def test_serial_runs_with_the_same_seed_are_identical(tmp_path, scripted_server):
    def run(name: str) -> str:
        out = tmp_path / name
        args = ["generate", "--base-url", scripted_server.base_url, "--model", "X", "-n", "12",
                "--seed", "5", "--max-concurrency", "1", "--out", str(out), "-q"]  # fmt: skip
        assert CliRunner().invoke(cli, args).exit_code == 0
        return (out / "examples.jsonl").read_text()

    assert run("a") == run("b")
