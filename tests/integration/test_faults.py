"""A flaky teacher only slows a run down; a dead one stops it cleanly (exit 3), resumable."""

from __future__ import annotations

import itertools
import json
import signal
import time
from typing import Any

from click.testing import CliRunner

from selfinstruct.cli import cli
from tests.support.openai_server import FAULT_KINDS, Reply, ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import all_text_written, cli_process, example_ids, read_run

FAST_RETRIES = ["--set", "teacher.timeout_s=1.0"]


def generate(server: ScriptedOpenAIServer, out, n: int, *extra: str):
    args = ["generate", "--base-url", server.base_url, "--model", "m", "-n", str(n),
            "--out", str(out), "-q", *FAST_RETRIES, *extra]  # fmt: skip
    return CliRunner().invoke(cli, args)


def test_every_fault_kind_once_then_completes(tmp_path):
    # "timeout" answers after 2 s, past the 1 s client timeout: a real timeout and a retry.
    with ScriptedOpenAIServer(SelfInstructResponder(), faults=FAULT_KINDS) as server:
        result = generate(server, tmp_path / "run", 5)
        assert result.exit_code == 0, result.output
        assert server.faults_served == list(FAULT_KINDS)
    run = read_run(tmp_path / "run")
    assert len({row.instruction_id for row in run["examples"]}) == 5
    assert run["manifest"].status == "complete"


def test_thirty_percent_random_faults(tmp_path):
    with ScriptedOpenAIServer(SelfInstructResponder(), fault_rate=0.3, seed=5) as server:
        result = generate(server, tmp_path / "run", 20, "--set", "max_consecutive_failures=50")
        assert result.exit_code == 0, result.output
        assert len(server.faults_served) > 20
        assert set(server.faults_served) >= {"429", "500", "malformed", "drop", "length"}
    run = read_run(tmp_path / "run")
    assert len({row.instruction_id for row in run["examples"]}) == 20
    ids = [row.id for row in run["examples"]]
    assert len(ids) == len(set(ids))


class DiesAfter:
    """Answers normally for ``healthy`` requests, then only HTTP 503."""

    def __init__(self, healthy: int) -> None:
        self.counter = itertools.count()
        self.inner = SelfInstructResponder()
        self.healthy = healthy

    def __call__(self, kind: Any, body: dict[str, Any]) -> Reply:
        if next(self.counter) >= self.healthy:
            return Reply(status=503, text="overloaded")
        return self.inner(kind, body)


def test_circuit_breaker_stops_cleanly_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    breaker = ["--set", "teacher.max_retries=1", "--set", "max_consecutive_failures=4"]
    with ScriptedOpenAIServer(DiesAfter(40)) as server:
        result = generate(server, out, 30, *breaker)
    assert result.exit_code == 3, result.output
    assert "in a row" in result.output and "rerun to resume" in result.output
    assert "Traceback" not in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    before = example_ids(out)
    assert before, "some work was done before the server died"

    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        result = generate(server, out, 30)
    assert result.exit_code == 0, result.output
    after = example_ids(out)
    assert after[: len(before)] == before
    assert len({i.split("-")[0] for i in after}) == 30


def test_sigterm_stops_cleanly_with_a_resume_hint(tmp_path):
    out = tmp_path / "run"
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.05) as server:
        child = cli_process(
            ["generate", "--base-url", server.base_url, "-n", "200", "--out", str(out), "-q"],
            env={"OPENAI_API_KEY": "sk-term-SECRET"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (out / "examples.jsonl").exists():
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    assert "SIGTERM" in stderr and "Resume" in stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"
    read_run(out)  # every row still valid
    assert "sk-term-SECRET" not in all_text_written(out) + stderr
