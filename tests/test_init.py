"""``selfinstruct init``: the starter config, the copies, and relative paths in config files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, Field

from selfinstruct.assets import default_seed_file, prompts_dir
from selfinstruct.cli import cli
from selfinstruct.cli.init import CONFIG_NAME, describe_model, starter_config, write_starter
from selfinstruct.config import RunConfig, build_config

SETTING_LINE = re.compile(r"^(\s*)# ([a-z_]+:(?: .*)?)$")


def init(*args: object) -> object:
    return CliRunner().invoke(cli, ["init", *map(str, args)])


def uncomment_settings(text: str) -> str:
    """The config with every ``# key: value`` line made active (descriptions stay comments)."""
    return "\n".join(SETTING_LINE.sub(r"\1\2", line) for line in text.splitlines())


def test_init_writes_config_and_copies_then_refuses_to_overwrite(tmp_path):
    target = tmp_path / "mine"
    result = init(target)
    assert result.exit_code == 0, result.output
    assert (target / "seeds/seed_tasks.jsonl").read_bytes() == default_seed_file().read_bytes()
    shipped = sorted(prompts_dir().glob("*.txt"))
    assert shipped, "no shipped prompt templates found"
    for template in shipped:
        assert (target / "prompts" / template.name).read_bytes() == template.read_bytes()

    config_file = target / CONFIG_NAME
    config_file.write_text("# my edits\n" + config_file.read_text())
    again = init(target)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert config_file.read_text().startswith("# my edits")
    assert init(target, "--force").exit_code == 0
    assert not config_file.read_text().startswith("# my edits")


def test_init_config_points_at_the_copies_wherever_it_is_read_from(tmp_path, monkeypatch):
    assert init(tmp_path / "mine", "--api", "chat").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = build_config(Path("../mine") / CONFIG_NAME, environ={})
    mine = (tmp_path / "mine").resolve()
    assert config.seeds.resolve() == mine / "seeds/seed_tasks.jsonl"
    assert config.stages.instructions.prompt.resolve() == mine / "prompts/instructions.chat.txt"
    assert config.stages.outputs.prompt.resolve() == mine / "prompts/outputs.chat.txt"
    assert config.stages.inputs.output_first_prompt.resolve() == (
        mine / "prompts/inputs.output_first.txt"
    )


PROMPT_FIELDS = (
    "prompt",
    "output_first_prompt",
    "structured_prompt",
    "structured_output_first_prompt",
)


def test_starter_config_lists_every_field_with_its_default():
    """Uncommenting every ``# key: value`` line gives a valid config equal to the defaults."""
    text = starter_config("completions")
    data = yaml.safe_load(uncomment_settings(text))
    config = RunConfig.model_validate(data)
    expected = RunConfig().model_dump(mode="json")
    actual = config.model_dump(mode="json")
    assert actual.pop("seeds") == "seeds/seed_tasks.jsonl"
    expected.pop("seeds")
    for stage in actual["stages"].values():
        for key in PROMPT_FIELDS:
            if key in stage:
                assert stage.pop(key).startswith("prompts/")
    for stage in expected["stages"].values():
        for key in PROMPT_FIELDS:
            stage.pop(key, None)
    assert actual == expected
    # and the file as written sets nothing but those paths and the API they are written for
    written = yaml.safe_load(text)
    assert set(written) == {"seeds", "stages", "teacher"}
    assert written["teacher"] == {"api": "completions"}


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_a_starter_config_keeps_its_templates_api_on_any_teacher(tmp_path, api):
    """init --api X writes X's templates and teacher.api X, so a --base-url run (an openai
    teacher, chat by default) sends them on the API they are written for."""
    write_starter(tmp_path, api)
    path = tmp_path / CONFIG_NAME
    local = build_config(path)
    served = build_config(path, {"teacher.base_url": ["http://127.0.0.1:9/v1"]})  # --base-url
    assert local.teacher.kind == "local" and served.teacher.kind == "openai"
    assert local.teacher.api == served.teacher.api == api
    assert served.stages.instructions.prompt.name == f"instructions.{api}.txt"


def _fields_without_description(model: type[BaseModel], prefix: str = "") -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            missing += _fields_without_description(type(default), f"{prefix}{name}.")
        elif info.description is None:
            missing.append(prefix + name)
    return missing


def test_every_field_outside_the_teacher_section_has_a_description():
    missing = _fields_without_description(RunConfig)
    assert [name for name in missing if not name.startswith("teacher.")] == []
    text = starter_config("completions")
    assert "# Stop after this many failed teacher requests in a row." in text
    assert "# Drop instructions with fewer words.\n  # min_words: 4" in text


def test_relative_paths_in_a_config_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    config_file = folder / "run.yaml"
    absolute = tmp_path / "abs-seeds.jsonl"
    config_file.write_text(
        "seeds: my-seeds.jsonl\n"
        "out: runs/a\n"
        "budget: {prices_file: prices.yaml}\n"
        f"stages: {{outputs: {{prompt: {absolute}}}, classify: {{prompt: '~/c.txt'}}}}\n"
    )
    monkeypatch.chdir(tmp_path)
    config = build_config(config_file, environ={})
    assert config.seeds == folder / "my-seeds.jsonl"
    assert config.out == folder / "runs/a"
    assert config.budget.prices_file == folder / "prices.yaml"
    assert config.stages.outputs.prompt == absolute
    assert config.stages.classify.prompt == Path("~/c.txt")
    # command-line values (overrides) stay relative to the current directory
    overridden = build_config(config_file, {"seeds": "cli-seeds.jsonl"}, environ={})
    assert overridden.seeds == Path("cli-seeds.jsonl")


def test_init_output_runs_and_an_edited_prompt_copy_changes_the_fingerprint(
    tmp_path, scripted_server
):
    target = tmp_path / "mine"
    assert init(target).exit_code == 0
    config = target / CONFIG_NAME

    def generate(out: Path) -> dict[str, str]:
        args = ["generate", "--config", config, "--base-url", scripted_server.base_url,
                "--model", "X", "-n", "3", "--out", out, "--quiet"]  # fmt: skip
        result = CliRunner().invoke(cli, list(map(str, args)), env={"OPENAI_API_KEY": "sk-t"})
        assert result.exit_code == 0, result.output
        assert (out / "examples.jsonl").read_text().strip()
        return json.loads((out / "manifest.json").read_text())["fingerprint"]

    before = generate(tmp_path / "run1")
    prompt_keys = [key for key in before if key.startswith("prompt:")]
    assert prompt_keys
    for copy in (target / "prompts").glob("*.txt"):
        copy.write_text(copy.read_text() + "{# edited #}")
    after = generate(tmp_path / "run2")
    assert [key for key in prompt_keys if before[key] == after[key]] == []
    assert before["seeds_sha256"] == after["seeds_sha256"]


def test_a_union_of_teacher_kinds_shows_the_default_kind_and_names_the_others():
    class Local(BaseModel):
        kind: Literal["local"] = "local"
        n_ctx: int = Field(default=2048, description="Context length.")

    class Remote(BaseModel):
        kind: Literal["openai"] = "openai"
        base_url: str = Field(default="", description="Server URL.")

    class Run(BaseModel):
        teacher: Local | Remote = Field(
            default_factory=Local, discriminator="kind", description="Who answers."
        )

    text = "\n".join(describe_model(Run, {}))
    assert "# Who answers.\n# Shown: the default kind's fields. Other kinds: openai." in text
    assert "# teacher:\n  # kind: local\n  # Context length.\n  # n_ctx: 2048" in text
    assert "base_url" not in text
