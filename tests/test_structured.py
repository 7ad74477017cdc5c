"""Structured outputs: the schemas, the reading of JSON replies (and the fall-backs), the
wire forms, and whole runs against the scripted server honouring a schema or not."""

from __future__ import annotations

import json

import pytest

from selfinstruct.config import build_config
from selfinstruct.errors import InputError
from selfinstruct.pipeline import Pipeline, run_pipeline
from selfinstruct.records import LabelledInputsReply, TaskList
from selfinstruct.stages.classify import read_classify_reply
from selfinstruct.stages.inputs_structured import read_drafts
from selfinstruct.stages.instructions import read_task_list
from selfinstruct.stages.structured import complete_items, reply_schema
from selfinstruct.teachers.base import Message, Request
from selfinstruct.teachers.openai_wire import request_body
from tests.integration.helpers import read_run
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

STRUCTURED_STAGES = ("instructions", "classify", "inputs")


# ------------------------------------------------------------------ schemas and wire


def test_the_schema_is_strict_and_self_contained():
    schema = reply_schema(LabelledInputsReply).schema
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["required"] == ["instances"] and schema["additionalProperties"] is False
    item = schema["properties"]["instances"]["items"]
    assert list(item["properties"]) == ["label", "input"]  # the label is written first
    assert item["required"] == ["label", "input"] and item["additionalProperties"] is False
    assert reply_schema(TaskList).schema["properties"]["tasks"]["items"] == {"type": "string"}


def test_the_wire_form_follows_the_servers_style():
    schema = reply_schema(TaskList)
    hello = (Message("user", "hi"),)
    request = Request(stage="instructions", messages=hello, response_schema=schema)
    openai_form = request_body("chat", "m", request)["response_format"]
    assert openai_form == {
        "type": "json_schema",
        "json_schema": {"name": "TaskList", "strict": True, "schema": schema.schema},
    }
    llama_form = request_body("chat", "m", request, "json_object")["response_format"]
    assert llama_form == {"type": "json_object", "schema": schema.schema}
    plain = Request(stage="instructions", messages=(Message("user", "hi"),))
    assert "response_format" not in request_body("chat", "m", plain)
    hash(request)  # a request with a schema stays hashable (caches key on requests)


# ------------------------------------------------------------------ reading replies


def test_task_list_json_fenced_truncated_free_text_and_invalid():
    reply = '{"tasks": ["1. Write a haiku.", "**Task 2:** Sum the list.", "3.5 is odd?"]}'
    assert read_task_list(reply) == (["Write a haiku.", "Sum the list.", "3.5 is odd?"], "")
    assert read_task_list('{"tasks": ["Fix:\n x = 1"]}')[0] == ["Fix: x = 1"]  # a raw newline
    items, problem = read_task_list('{"tasks": []}')  # the schema asks for at least one
    assert items == [] and "at least 1" in problem
    assert read_task_list('```json\n{"tasks": ["Write a haiku."]}\n```')[0] == ["Write a haiku."]
    items, problem = read_task_list('{"tasks": ["Write a haiku.", "Name three riv', truncated=True)
    assert items == ["Write a haiku."] and problem.startswith("not JSON")
    # a server that ignored the schema: the free-text parser reads it
    assert read_task_list("1. Write a haiku.\n2. Sum the list.")[0] == [
        "Write a haiku.",
        "Sum the list.",
    ]
    items, problem = read_task_list('{"tasks": 5}')
    assert items == [] and "tasks" in problem and "schema" in problem


def test_complete_items_keeps_only_whole_elements():
    text = '{"instances": [{"input": "a"}, {"input": "b"}, {"inp'
    assert complete_items(text, "instances") == [{"input": "a"}, {"input": "b"}]
    assert complete_items('{"other": []}', "instances") == []


def test_classify_reply_json_then_free_text():
    assert read_classify_reply('{"is_classification": true}') is True
    assert read_classify_reply('{"is_classification": false}') is False
    assert read_classify_reply('{"is_classification": tr') is False  # cut: unclear is No
    assert read_classify_reply("Yes, it is.") is True


def test_drafts_from_structured_inputs():
    same = '{"input": "I loved it."}'
    reply = f'{{"instances": [{same}, {{"input": "<noinput>"}}, {same}]}}'
    drafts, problem = read_drafts(reply, False, limit=5)
    assert problem == "" and [(d.input, d.output) for d in drafts] == [
        ("I loved it.", None),
        ("", None),
    ]
    drafts, _ = read_drafts(
        '{"instances": [{"label": "\\"Positive.\\"", "input": "Great"},'
        ' {"label": "", "input": "x"}, {"label": "Negative", "input": "Bad"}, {"label": "Neu',
        True,
        limit=5,
    )
    assert [(d.input, d.output) for d in drafts] == [("Great", "Positive"), ("Bad", "Negative")]
    assert read_drafts("Class label: Positive\nInput: Great", True, limit=5)[0] is None
    drafts, problem = read_drafts('{"instances": "none"}', False, limit=5)
    assert drafts == [] and "instances" in problem


# ------------------------------------------------------------------ whole runs


def config(server: ScriptedOpenAIServer, **overrides: object):
    settings = {"teacher.base_url": server.base_url, "teacher.model": "X", "num_instructions": 4}
    return build_config(overrides={**settings, **overrides}, environ={})


def bodies(server: ScriptedOpenAIServer, stage: str) -> list[dict]:
    return [r.body for r in server.requests if r.headers.get("x-selfinstruct-stage") == stage]


@pytest.mark.parametrize("form", ["json_schema", "json_object"])
def test_a_server_that_honours_schemas_gets_json_requests(tmp_path, form):
    responder = SelfInstructResponder(schema_forms=(form,), classification_share=0.6)
    with ScriptedOpenAIServer(responder) as server:
        run_pipeline(config(server), tmp_path / "run")
        run = read_run(tmp_path / "run")
        assert run["manifest"].stage_modes == dict.fromkeys(STRUCTURED_STAGES, "structured")
        for stage in STRUCTURED_STAGES:
            sent = bodies(server, stage)
            assert sent and all(body["response_format"]["type"] == form for body in sent)
        assert all("response_format" not in body for body in bodies(server, "outputs"))
    assert len({row.instruction_id for row in run["examples"]}) == 4
    assert any(row.is_classification for row in run["examples"])  # labels came from JSON
    reasons = run["manifest"].counts.rejected_by_reason
    assert "instructions/rouge_similar" in reasons  # the near-copies still reach the filters
    assert not any(reason.endswith("unparseable") for reason in reasons)
    assert "prompt:instructions.structured" in run["manifest"].fingerprint


def test_auto_stays_on_free_text_where_the_server_ignores_schemas(tmp_path, scripted_server):
    run_pipeline(config(scripted_server), tmp_path / "run")
    manifest = read_run(tmp_path / "run")["manifest"]
    assert manifest.stage_modes == dict.fromkeys(STRUCTURED_STAGES, "text")
    for stage in (*STRUCTURED_STAGES, "outputs"):
        assert all("response_format" not in body for body in bodies(scripted_server, stage))


def test_on_sends_schemas_anyway_and_free_text_replies_still_parse(tmp_path, scripted_server):
    overrides = {f"stages.{stage}.structured": "on" for stage in STRUCTURED_STAGES}
    run_pipeline(config(scripted_server, **overrides), tmp_path / "run")
    run = read_run(tmp_path / "run")
    assert run["manifest"].stage_modes == dict.fromkeys(STRUCTURED_STAGES, "structured")
    assert all("response_format" in body for body in bodies(scripted_server, "instructions"))
    assert len({row.instruction_id for row in run["examples"]}) == 4  # the fallback parsers


def test_invalid_json_is_an_unparseable_rejection_that_says_what_failed(tmp_path):
    honest = SelfInstructResponder(schema_forms=("json_schema",))
    sent: list[int] = []

    def first_one_broken(kind, body):
        sent.append(1)
        if len(sent) == 1:
            return Reply(text='{"tasks": "none"}')
        return honest(kind, body, stage="instructions")

    responder = SelfInstructResponder(
        schema_forms=("json_schema",), extra={"instructions": first_one_broken}
    )
    with ScriptedOpenAIServer(responder) as server:
        run_pipeline(config(server, num_instructions=2), tmp_path / "run")
    run = read_run(tmp_path / "run")
    unparseable = [row for row in run["rejected"] if row.reason == "unparseable"]
    assert len(unparseable) == 1 and unparseable[0].candidate == '{"tasks": "none"}'
    details = unparseable[0].details
    assert details["mode"] == "structured" and "tasks" in details["problem"], details
    assert run["manifest"].status == "complete"


def test_off_and_completions_leave_structured_templates_out(tmp_path, scripted_server):
    off = {f"stages.{stage}.structured": "off" for stage in STRUCTURED_STAGES}
    for overrides in (off, {"teacher.api": "completions"}):
        pipeline = Pipeline(config(scripted_server, **overrides), tmp_path / "x")
        assert not any(".structured" in key for key in pipeline.fingerprint)
        assert pipeline.stages.mode_names() == dict.fromkeys(STRUCTURED_STAGES, "text")


def test_yaml_on_and_off_are_read_as_modes():
    overrides = {"stages.classify.structured": False, "stages.inputs.structured": True}
    stages = build_config(overrides=overrides, environ={}).stages
    assert (stages.classify.structured, stages.inputs.structured) == ("off", "on")
    assert stages.instructions.structured == "auto"


def test_on_needs_the_chat_api(tmp_path, scripted_server):
    overrides = {"teacher.api": "completions", "stages.inputs.structured": "on"}
    with pytest.raises(InputError, match="chat API") as error:
        Pipeline(config(scripted_server, **overrides), tmp_path / "x")
    assert "stages.inputs.structured" in str(error.value)
