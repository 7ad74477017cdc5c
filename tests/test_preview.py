"""``selfinstruct preview``: every stage's request rendered with no teacher call, bad inputs
refused with exit 2, and ``--live`` against a real (scripted) HTTP server, writing nothing."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import ClassVar

from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.config import build_config
from selfinstruct.preview import preview_config, preview_text
from selfinstruct.preview.live import run_live_preview
from selfinstruct.seeds import load_seeds
from selfinstruct.stages import DEFAULT_SEQUENCE, Round, build_stages
from selfinstruct.stages.base import Job, StageContext, Template
from selfinstruct.teachers.base import Completion, Request
from tests.support.openai_server import STAGE_HEADER, ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

SECRET = "sk-preview-secret-4242"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["preview", *args], env={"OPENAI_API_KEY": "", **(env or {})})


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


def scratch_dirs() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("selfinstruct-preview-")}


class JudgeLike:
    """A stage after the outputs that asks only about answered drafts (as a judge would)."""

    name: ClassVar[str] = "rate"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "rate", frozenset({"instruction", "output"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]

    def requests(self, job: Job) -> list[Request]:
        answered = [d for d in job.drafts if d.output is not None]
        return [
            self.prompt.request(instruction=job.instruction.instruction, output=d.output)
            for d in answered
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        pass


def test_default_config_renders_every_stage_without_a_teacher(
    tmp_path, monkeypatch, scripted_server
):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["preview", "--base-url", scripted_server.base_url, "--max-chars", "0"],
        env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert files_under(tmp_path) == set()  # nothing written
    assert result.exit_code == 0, result.output
    assert scripted_server.requests == []  # no teacher call, not even a model list
    assert SECRET not in result.output
    config = build_config(overrides={"teacher.base_url": scripted_server.base_url}, environ={})
    seeds = load_seeds(config.seeds)
    stages = build_stages(config, seeds, lambda name: config.teacher_for(name).api)
    for name in stages.names:
        assert f"\n{name}: 1 request (on: " in result.output
    # stage 1's request is the run's first one, byte for byte
    round_ = Round(0, random.Random(f"{config.seed}:instructions:0"), [])
    (first,) = stages.first.requests(round_)
    assert first.messages is not None
    for message in first.messages:
        assert message.content in result.output
    assert f"seed={first.seed} n=1" in result.output
    assert "no price" in result.output  # the model is discovered at start
    assert "outputs: 1 request (on: inputs)" in result.output


def test_completions_api_shows_the_prompt_and_the_front_matter_sampling():
    result = invoke("--api", "completions", "--model", "gpt-4o-mini", "--base-url", "http://x/v1")
    assert result.exit_code == 0, result.output
    assert "--- prompt ---" in result.output and "--- user ---" not in result.output
    assert "$0.15/$0.6 per 1M" in result.output  # the shipped price table
    assert 'stop=["\\n\\n"]' in result.output  # instructions.completions.txt front matter


def test_a_stage_added_to_the_sequence_appears_by_itself(tmp_path):
    template = tmp_path / "rate.txt"
    template.write_text("Rate this answer to {{ instruction }}: {{ output }}\n", encoding="utf-8")
    config = build_config(overrides={"stages.rate.prompt": str(template)}, environ={})
    preview = preview_config(config, (*DEFAULT_SEQUENCE, JudgeLike))
    rate = preview.stages[-1]
    assert [s.name for s in preview.stages] == ["instructions", "classify", "inputs", "outputs",
                                                "rate"]  # fmt: skip
    assert rate.state == "outputs"  # rendered once the stand-in's drafts have answers
    stand_in = preview.stand_in
    assert len(rate.requests) == len(stand_in.instances)
    assert stand_in.instances[0].output.strip() in (rate.requests[0].prompt or "") + "".join(
        m.content for m in rate.requests[0].messages or ()
    )
    count = len(rate.requests)
    plural = "s" if count != 1 else ""
    assert f"\nrate: {count} request{plural} (on: outputs)" in preview_text(preview)


def test_a_classification_stand_in_renders_the_output_first_template():
    seeds = load_seeds(build_config(environ={}).seeds)
    task = next(s for s in seeds if s.is_classification)
    result = invoke("--task", task.id, "--max-chars", "0")
    assert result.exit_code == 0, result.output
    assert "(classification)" in result.output
    block = result.output.split("\ninputs: ")[1].split("\noutputs: ")[0]
    assert "Class label" in block  # inputs.output_first.txt
    assert "outputs: 0 requests (on: nothing to send for this stand-in)" in result.output


def test_bad_inputs_exit_2_naming_the_problem(tmp_path):
    bad_prompt = tmp_path / "p.txt"
    bad_prompt.write_text("{{ nonsense }}\n", encoding="utf-8")
    broken = tmp_path / "broken.txt"  # loads, but fails when rendered
    broken.write_text("{{ instruction.missing.deeper }}\n", encoding="utf-8")
    prices = tmp_path / "prices.yaml"
    prices.write_text("models: {m: {input: -1, output: 2}}\n", encoding="utf-8")
    cases = [
        (["--set", f"stages.classify.prompt={bad_prompt}"], f"{bad_prompt}: unknown placeholder"),
        (["--set", f"stages.outputs.prompt={broken}"], "stages.outputs: a template failed"),
        (["--seeds", str(tmp_path / "none.jsonl")], "none.jsonl: no such file"),
        (["--prices", str(prices)], f"{prices}: "),
        (["--model", "unpriced-model", "--base-url", "http://x/v1", "--max-cost", "1"],
         "--max-cost needs a price for model 'unpriced-model'"),
        (["--task", "no-such-task"], "--task: no seed task with id 'no-such-task'"),
        (["--set", "stages.typo.prompt=x"], "stages.typo: unknown stage"),
        (["--set", "filters.rouge_threshold=2"], "filters.rouge_threshold"),
    ]  # fmt: skip
    for args, expected in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_live_runs_one_instruction_through_every_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before_scratch = scratch_dirs()
    with ScriptedOpenAIServer(SelfInstructResponder(), models=("m-one", "m-two")) as server:
        result = CliRunner().invoke(
            cli, ["preview", "--live", "--base-url", server.base_url],
            env={"OPENAI_API_KEY": SECRET},
        )  # fmt: skip
        assert files_under(tmp_path) == set()  # no run directory, no file at all
        stages = [r.headers.get(STAGE_HEADER) for r in server.requests if r.path.endswith("s")]
    assert result.exit_code == 0, result.output
    assert scratch_dirs() == before_scratch  # the temporary folder is gone
    assert SECRET not in result.output
    out = result.output
    assert "models m-one, m-two" in out and "honours: n" in out
    assert "KEEP: " in out and "DROP rouge_similar" in out and "DROP too_short" in out
    for name in ("classify", "inputs"):
        assert f"\n{name}: 1 request(s)\n  reply (m-one, finish=stop" in out
    # a classification task's drafts come with their labels: stage 3 has nothing to ask
    classification = "-> classification: yes" in out
    outputs = 0 if classification else 1  # the scripted inputs stage writes one input
    assert f"\noutputs: {outputs} request(s)\n" in out
    assert "instance filters: kept " in out
    assert "total: $0 + unpriced models" in out
    # one stage-1 round kept an instruction; then the job's requests, stage by stage
    sent = [stage for stage in stages if stage not in (None, "probe")]
    assert sent == ["instructions", "classify", "inputs"] + ["outputs"] * outputs


def test_live_library_api_reports_each_decision():
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        overrides = {"teacher.base_url": server.base_url, "teacher.probe_capabilities": False}
        config = build_config(overrides=overrides, environ={})
        live = run_live_preview(config)
    assert live.instruction is not None
    assert [c.reason for c in live.rounds[0].candidates if c.text == live.instruction] == [None]
    assert [step.name for step in live.steps] == ["classify", "inputs", "outputs"]
    classify, inputs, outputs = live.steps
    assert inputs.is_classification == classify.is_classification
    firsts = {output is None for _, output in inputs.drafts}  # input-first: no output yet
    assert firsts == ({False} if classify.is_classification else {True})
    assert all(output is not None for _, output in outputs.drafts)
    assert len(outputs.exchanges) == (0 if classify.is_classification else len(inputs.drafts))
    kept = [(i.input, i.output) for i in live.kept]
    dropped = [r.candidate for r in live.dropped]
    assert len(kept) + len(dropped) == len(outputs.drafts)
    assert sum(line.requests for line in live.usage) == 3 + len(outputs.exchanges)
    assert live.endpoints[0].capabilities == {}  # probe off


def test_live_against_a_dead_endpoint_says_why_and_exits_2():
    with ScriptedOpenAIServer() as server:
        url = server.base_url
    result = invoke("--live", "--base-url", url, "--set", "teacher.timeout_s=2")
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and url in result.output
