from __future__ import annotations

import json

import pytest

from selfinstruct.config import RunConfig, build_config, parse_assignment
from selfinstruct.errors import InputError
from selfinstruct.teachers.openai import OpenAIConfig


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
