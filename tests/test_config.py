from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from pydantic import ValidationError

from selfinstruct.config import RunConfig, build_config, parse_assignment
from selfinstruct.errors import InputError
from selfinstruct.teachers import BACKENDS, make_teacher
from selfinstruct.teachers.choice import TEACHER_KINDS, parse_teacher_config
from selfinstruct.teachers.local import LocalConfig
from selfinstruct.teachers.openai import OpenAIConfig
from selfinstruct.teachers.openai_batch import OpenAIBatchConfig


def test_defaults_pick_the_local_teacher_without_url_or_key():
    config = build_config(environ={})
    assert config.teacher.kind == "local"
    assert config.teacher.api == "completions"
    assert config.filters.rouge_threshold == 0.7


def test_environment_selects_openai_and_options_win(tmp_path):
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_API_KEY": "sk-env"}
    config = build_config(environ=env)
    assert config.teacher.kind == "openai"
    assert config.teacher.base_url == ["http://127.0.0.1:1/v1"]
    assert config.teacher.api == "chat"
    config = build_config(overrides={"teacher.base_url": ["http://h:2/v1"]}, environ=env)
    assert config.teacher.base_url == ["http://h:2/v1"]


def test_yaml_and_toml_files_and_dotted_overrides(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("num_instructions: 7\nfilters:\n  rouge_threshold: 0.5\n")
    config = build_config(yaml_file, {"filters.max_words": 99}, environ={})
    assert (config.num_instructions, config.filters.rouge_threshold, config.filters.max_words) == (
        7,
        0.5,
        99,
    )
    toml_file = tmp_path / "c.toml"
    toml_file.write_text('num_instructions = 3\n[teacher]\nkind = "openai"\nmodel = "m"\n')
    config = build_config(toml_file, environ={})
    assert config.teacher.model == "m"


def test_per_stage_teacher_overrides_only_what_it_sets():
    config = RunConfig.model_validate(
        {
            "teacher": {"kind": "openai", "base_url": "http://a/v1", "model": "small"},
            "stages": {"outputs": {"teacher": {"model": "large"}}},
        }
    )
    assert config.teacher_for("outputs").model == "large"
    assert config.teacher_for("outputs").base_url == ["http://a/v1"]
    assert config.teacher_for("instructions").model == "small"


def test_redacted_config_never_holds_the_key():
    config = build_config(
        overrides={"stages.outputs.teacher": {"api_key": "sk-stage-SECRET"}},
        environ={"OPENAI_API_KEY": "sk-top-SECRET"},
    )
    text = json.dumps(config.redacted())
    assert "SECRET" not in text
    assert "SECRET" not in repr(config)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("num_instructions: zero\n", "num_instructions: "),
        ("num_instructions: -1\n", "num_instructions: "),
        ("filters:\n  rouge_threshold: 2\n", "filters.rouge_threshold: "),
        ("teacher:\n  kind: ollama\n", "teacher.kind: "),
        ("colour: red\n", "colour: unknown field"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: [1,\n", "invalid YAML"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        build_config(path, environ={})
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_bad_key_value_is_not_echoed():
    with pytest.raises(InputError) as info:
        build_config(overrides={"teacher.api_key": ["sk-not-a-string-SECRET"]}, environ={})
    assert "SECRET" not in str(info.value)


def test_parse_assignment():
    assert parse_assignment("filters.rouge_threshold=0.8") == ("filters.rouge_threshold", 0.8)
    assert parse_assignment("teacher.base_url=[a, b]") == ("teacher.base_url", ["a", "b"])
    with pytest.raises(InputError):
        parse_assignment("novalue")


def test_teacher_config_accepts_one_url_or_many():
    assert OpenAIConfig(base_url="http://x/v1").base_url == ["http://x/v1"]  # type: ignore[arg-type]


# -- the teacher union: one config class per backend, chosen by kind -------------------------


@pytest.mark.parametrize(
    ("teacher", "environ", "kind", "api"),
    [
        ({}, {}, "local", "completions"),
        ({"base_url": "http://h/v1"}, {}, "openai", "chat"),
        ({"api_key": "sk-x"}, {}, "openai", "chat"),
        ({}, {"OPENAI_API_KEY": "sk-env"}, "openai", "chat"),
        ({}, {"OPENAI_BASE_URL": "http://h/v1"}, "openai", "chat"),
        ({"kind": "local"}, {"OPENAI_API_KEY": "sk-env"}, "local", "completions"),
        ({"kind": "vllm", "model": "m"}, {}, "vllm", "completions"),
        ({"kind": "openai-batch"}, {}, "openai-batch", "chat"),
        ({"kind": None, "api": None}, {}, "local", "completions"),  # an older manifest's
        ({"kind": "local", "api": "chat"}, {}, "local", "chat"),
    ],
)
def test_teacher_kind_and_api_rules(teacher, environ, kind, api):
    config = build_config(overrides={"teacher": teacher}, environ=environ)
    assert type(config.teacher) is BACKENDS[kind].config
    assert (config.teacher.kind, config.teacher.api) == (kind, api)
    assert config.teacher_for("outputs") is config.teacher


def test_the_environment_fills_only_fields_the_backend_has():
    env = {"OPENAI_API_KEY": "sk-env-SECRET", "OPENAI_BASE_URL": "http://env/v1"}
    local = build_config(overrides={"teacher.kind": "local"}, environ=env)
    assert isinstance(local.teacher, LocalConfig)
    batch = build_config(overrides={"teacher.kind": "openai-batch"}, environ=env)
    assert isinstance(batch.teacher, OpenAIBatchConfig)
    assert batch.teacher.base_url == ["http://env/v1"]
    assert batch.teacher.key() == "sk-env-SECRET"


@pytest.mark.parametrize(
    ("teacher", "field", "backend"),
    [
        ({"kind": "local", "base_url": "http://h/v1"}, "teacher.base_url", "local"),
        ({"base_url": "http://h/v1", "n_ctx": 4096}, "teacher.n_ctx", "openai"),
        ({"kind": "vllm", "batch_size": 5}, "teacher.batch_size", "vllm"),
        ({"kind": "openai", "tensor_parallel_size": 2}, "teacher.tensor_parallel_size", "openai"),
    ],
)
def test_a_field_of_another_backend_is_refused_by_name(tmp_path, teacher, field, backend):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"teacher": teacher}))
    with pytest.raises(InputError) as info:
        build_config(path, environ={})
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: unknown field for the {backend} teacher")
    assert "it takes: " in message and "max_concurrency" in message


def test_an_unknown_kind_lists_the_kinds_and_never_echoes_the_key():
    with pytest.raises(InputError) as info:
        build_config(overrides={"teacher": {"kind": "ollama", "api_key": "sk-SECRET"}}, environ={})
    message = str(info.value)
    expected = "teacher.kind: expected one of openai, openai-batch, local, vllm (got 'ollama')"
    assert expected in message
    assert "SECRET" not in message


def test_a_stage_may_switch_kind_and_keeps_only_the_fields_that_fit():
    config = RunConfig.model_validate(
        {
            "teacher": {"base_url": "http://a/v1", "api_key": "sk-a", "model": "big"},
            "stages": {
                "classify": {"teacher": {"kind": "local", "n_ctx": 1024}},
                "outputs": {"teacher": {"max_concurrency": 2}},
                "inputs": {"teacher": {"base_url": "http://b/v1"}},
            },
        }
    )
    classify = config.teacher_for("classify")
    assert isinstance(classify, LocalConfig)
    assert (classify.n_ctx, classify.model, classify.api) == (1024, "big", "completions")
    outputs = config.teacher_for("outputs")
    assert isinstance(outputs, OpenAIConfig)
    assert (outputs.base_url, outputs.max_concurrency, outputs.model) == (["http://a/v1"], 2, "big")
    assert config.teacher_for("inputs").base_url == ["http://b/v1"]
    assert config.teacher_for("instructions") is config.teacher


def test_a_stage_teacher_with_a_url_over_the_automatic_local_one_is_openai():
    config = RunConfig.model_validate(
        {"stages": {"outputs": {"teacher": {"base_url": "http://b/v1"}}}}
    )
    assert config.teacher.kind == "local"
    assert config.teacher_for("outputs").kind == "openai"


def test_a_stage_teacher_field_of_another_backend_is_refused_by_name():
    with pytest.raises(InputError) as info:
        build_config(
            overrides={"stages": {"outputs": {"teacher": {"n_ctx": 512}}}},
            environ={"OPENAI_API_KEY": "sk-SECRET"},
        )
    assert "stages.outputs.teacher.n_ctx: unknown field for the openai teacher" in str(info.value)


def test_an_old_flat_teacher_section_still_loads(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(
        "teacher:\n  kind: openai-batch\n  base_url: http://h/v1\n  model: m\n  api: null\n"
        "  max_concurrency: 4\n  batch_size: 10\n  completion_window: 24h\n"
    )
    teacher = build_config(path, environ={}).teacher
    assert isinstance(teacher, OpenAIBatchConfig)
    assert (teacher.api, teacher.batch_size, teacher.max_concurrency) == ("chat", 10, 4)


def test_every_backend_config_field_says_what_it_means():
    for kind, backend in BACKENDS.items():
        assert backend.config.model_fields["kind"].default == kind
        for name, field in backend.config.model_fields.items():
            assert field.description and "\n" not in field.description, (kind, name)


def test_the_teacher_union_is_the_registry_and_make_teacher_dispatches_through_it():
    assert set(TEACHER_KINDS) == set(BACKENDS) == {"openai", "openai-batch", "local", "vllm"}
    config = parse_teacher_config({"kind": "vllm", "model": "m"})
    assert type(make_teacher(config)).__name__ == "VllmTeacher"
    with pytest.raises(ValidationError):
        parse_teacher_config({"kind": "local", "api_key": "k"})


def test_importing_the_config_loads_no_heavy_backend():
    code = (
        "import sys, selfinstruct.config, selfinstruct.teachers; "
        "print(sorted(m for m in ('llama_cpp', 'vllm', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
