"""A stage is one class plus one template: one defined only here joins the sequence and runs
end to end over real HTTP, with its own config section, provenance and request log rows."""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import pytest

from selfinstruct.config import build_config
from selfinstruct.errors import InputError
from selfinstruct.pipeline import Pipeline
from selfinstruct.stages import DEFAULT_SEQUENCE
from selfinstruct.stages.base import Job, StageContext, Template
from selfinstruct.teachers.base import Completion, Request
from tests.support.openai_server import ScriptedOpenAIServer, prompt_text
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import read_run

SHOUT_TEMPLATE = """---
max_tokens: 64
temperature: 0.0
---
Rewrite in capital letters: {{ output }}
"""


class ShoutStage:
    """Rewrites every answered draft in capitals (a stand-in for a judge or a paraphraser)."""

    name: ClassVar[str] = "shout"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "shout", frozenset({"output"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]

    def requests(self, job: Job) -> list[Request]:
        job.prompts[self.name] = self.prompt.sha
        return [self.prompt.request(output=draft.output) for draft in job.drafts]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        for draft, completion in zip(job.drafts, completions, strict=True):
            draft.output = completion.text.strip()


def shout(kind, body):
    """The scripted teacher's answer to the shout stage (told by the X-Selfinstruct-Stage
    header every request carries)."""
    return prompt_text(kind, body).rsplit("Rewrite in capital letters:", 1)[1].strip().upper()


def run(config, out, sequence):
    return asyncio.run(Pipeline(config, out, sequence=sequence).run())


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_a_stage_defined_in_a_test_runs_end_to_end(tmp_path, api):
    template = tmp_path / "shout.txt"
    template.write_text(SHOUT_TEMPLATE, encoding="utf-8")
    with ScriptedOpenAIServer(SelfInstructResponder(extra={"shout": shout})) as server:
        config = build_config(
            overrides={
                "teacher.base_url": server.base_url,
                "teacher.api": api,
                "teacher.model": "X",
                "num_instructions": 8,
                "stages.shout.prompt": str(template),
            },
            environ={},
        )
        out = tmp_path / "run"
        result = run(config, out, (*DEFAULT_SEQUENCE, ShoutStage))
    assert result.status == "complete"
    files = read_run(out)
    examples = files["examples"]
    assert len({row.instruction_id for row in examples}) == 8
    assert all(row.output == row.output.upper() for row in examples)
    assert any(any(ch.isalpha() for ch in row.output) for row in examples)

    calls = {row["id"]: row for row in map(json.loads, (out / "requests.jsonl").open())}
    assert len(calls) == sum(1 for _ in (out / "requests.jsonl").open())  # ids unique
    for example in examples:
        provenance = example.provenance
        assert provenance.prompts["shout"] and provenance.models["shout"] == "X"
        assert set(provenance.calls) <= set(calls)
        stages = [calls[ident]["stage"] for ident in provenance.calls]
        assert stages[0] == "instructions" and stages[-1] == "shout"
        assert {"classify", "inputs"} <= set(stages)
        for ident in provenance.calls[1:]:
            assert calls[ident]["serves"] == [example.instruction_id]
        shouted = [calls[ident]["text"] for ident in provenance.calls if "shout" in ident]
        assert example.output in [text.strip() for text in shouted]
    assert files["manifest"].fingerprint["prompt:shout"]


def test_a_section_for_a_stage_not_in_the_sequence_is_refused(tmp_path):
    config = build_config(
        overrides={"teacher.base_url": "http://127.0.0.1:9/v1", "stages.shuot.prompt": "x.txt"},
        environ={},
    )
    with pytest.raises(InputError, match=r"stages\.shuot: unknown stage"):
        Pipeline(config, tmp_path / "run")


def test_stage_one_parses_every_choice_of_a_reply_with_n(tmp_path):
    """stages.instructions.samples=3 sends n=3; each choice is parsed, repeats kept once."""
    from selfinstruct.stages.base import Round
    from selfinstruct.stages.instructions import InstructionStage
    from selfinstruct.teachers.base import Completion

    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        overrides = {
            "teacher.base_url": server.base_url,
            "teacher.model": "X",
            "num_instructions": 4,
            "stages.instructions.samples": 3,
        }
        config = build_config(overrides=overrides, environ={})
        result = run(config, tmp_path / "run", DEFAULT_SEQUENCE)
        stage_one = [r.body for r in server.requests if r.path.endswith("completions")]
    assert result.status == "complete"
    assert any(body.get("n") == 3 for body in stage_one)
    calls = [json.loads(line) for line in (tmp_path / "run" / "requests.jsonl").open()]
    first = [call for call in calls if call["stage"] == "instructions"]
    assert first and all(call["choices"] == 3 and len(call["more"]) == 2 for call in first)

    stage = Pipeline(build_config(overrides=overrides, environ={}), tmp_path / "x").stages.first
    assert isinstance(stage, InstructionStage)
    job = Round(number=0, rng=__import__("random").Random(0), machine_pool=[])
    reply = Completion(
        text="Write a haiku about rain.\nTask 2: Name three rivers in Peru.",
        finish_reason="stop",
        more=(("Name three rivers in Peru.\nTask 2: Sort these numbers.", "stop"),),
    )
    stage.parse(job, [reply])
    assert job.candidates == [
        "Write a haiku about rain.", "Name three rivers in Peru.", "Sort these numbers.",
    ]  # fmt: skip
