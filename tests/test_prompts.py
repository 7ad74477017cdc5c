from __future__ import annotations

from pathlib import Path

import pytest

from selfinstruct.config_sections import SamplingConfig
from selfinstruct.errors import InputError
from selfinstruct.prompts import PROMPTS_DIR, load_template, split_messages
from selfinstruct.stages import DEFAULT_SEQUENCE, build_stages
from selfinstruct.stages.instructions import InstructionStage
from selfinstruct.teachers.base import Message

#: each template's placeholders, as its stage declares them
PLACEHOLDERS = {
    template.name: set(template.placeholders)
    for stage in (InstructionStage, *DEFAULT_SEQUENCE)
    for template in stage.templates
}
ALLOWED = {
    "instructions.completions.txt": PLACEHOLDERS["instructions"],
    "instructions.chat.txt": PLACEHOLDERS["instructions"],
    "classify.txt": PLACEHOLDERS["classify"],
    "inputs.input_first.txt": PLACEHOLDERS["inputs.input_first"],
    "inputs.output_first.txt": PLACEHOLDERS["inputs.input_first"],
    "outputs.completions.txt": PLACEHOLDERS["outputs"],
    "outputs.chat.txt": PLACEHOLDERS["outputs"],
    "instructions.structured.txt": PLACEHOLDERS["instructions.structured"],
    "classify.structured.txt": PLACEHOLDERS["classify.structured"],
    "inputs.input_first.structured.txt": PLACEHOLDERS["inputs.input_first.structured"],
    "inputs.output_first.structured.txt": PLACEHOLDERS["inputs.output_first.structured"],
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_shipped_prompt_loads_with_its_stage_placeholders(name):
    template = load_template(PROMPTS_DIR / name, ALLOWED[name])
    assert template.variables <= ALLOWED[name]
    assert len(template.sha256) == 64


def test_paper_layout_for_stage_one_completions():
    template = load_template(
        PROMPTS_DIR / "instructions.completions.txt", PLACEHOLDERS["instructions"]
    )
    text = template.render(demos=["Say hi.", "Add 2 and 3."], num_new=5)
    assert (
        text == "Come up with a series of tasks:\n\nTask 1: Say hi.\nTask 2: Add 2 and 3.\nTask 3:"
    )
    request = template.request(
        "instructions", "completions", SamplingConfig(), demos=["A."], num_new=3
    )
    assert request.prompt is not None and request.prompt.endswith("Task 2:")
    assert request.stop == ("\n\n",)
    assert request.messages is None


def test_config_sampling_overrides_front_matter():
    template = load_template(
        PROMPTS_DIR / "instructions.completions.txt", PLACEHOLDERS["instructions"]
    )
    sampling = SamplingConfig(temperature=0.1, max_tokens=7, stop=["###"])
    request = template.request("instructions", "completions", sampling, demos=[], num_new=1)
    assert (request.temperature, request.max_tokens, request.stop) == (0.1, 7, ("###",))


def test_chat_template_splits_into_roles_and_flattens_for_completions():
    template = load_template(PROMPTS_DIR / "instructions.chat.txt", PLACEHOLDERS["instructions"])
    chat = template.request("instructions", "chat", SamplingConfig(), demos=["A b c d."], num_new=4)
    assert chat.messages is not None
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert "1. A b c d." in chat.messages[1].content
    flat = template.request(
        "instructions", "completions", SamplingConfig(), demos=["A b c d."], num_new=4
    )
    assert flat.prompt is not None and flat.prompt.startswith("You write new")


def test_input_values_with_braces_are_not_templated():
    template = load_template(PROMPTS_DIR / "outputs.chat.txt", PLACEHOLDERS["outputs"])
    text = template.render(
        instruction="Fix {{ this }} code.", input="def f(): return {1: 2}", demos=[]
    )
    assert "{{ this }}" in text and "{1: 2}" in text


def test_split_messages_without_roles_is_one_user_message():
    assert split_messages("hello\nworld") == (Message("user", "hello\nworld"),)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Task: {{ instruktion }}", "unknown placeholder {{ instruktion }}"),
        ("{% for x in demos %}", "template syntax error"),
        ("---\nstop: [\n---\nbody", "invalid YAML front matter"),
        ("---\ncolour: red\n---\nbody", "unknown front matter key 'colour'"),
        ("---\nmax_tokens: -3\n---\nbody", "invalid front matter"),
    ],
)
def test_bad_templates_are_clear_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_template(path, {"instruction", "demos"})
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_missing_template(tmp_path):
    with pytest.raises(InputError, match="no such prompt file"):
        load_template(tmp_path / "missing.txt", set())


def test_each_stage_two_template_can_be_configured(tmp_path):
    from selfinstruct.config import build_config

    mine = tmp_path / "labels.txt"
    mine.write_text("Task: {{ instruction }}\nClass label:", encoding="utf-8")
    config = build_config(overrides={"stages.inputs.output_first_prompt": mine}, environ={})
    from selfinstruct.seeds import load_seeds

    seeds = load_seeds(config.seeds)
    templates = build_stages(config, seeds, lambda stage: "completions").templates
    assert templates["inputs.output_first"].path == mine
    assert templates["inputs.input_first"].path == PROMPTS_DIR / "inputs.input_first.txt"


def test_dotted_names_on_dicts_render_as_jinja_renders_them() -> None:
    """The environment looks ``d.key`` up in a dict at once; names a dict has as attributes
    (``d.items``), missing keys and other objects behave as in plain jinja."""
    import jinja2

    from selfinstruct.prompts import _ENV

    plain = jinja2.Environment(undefined=jinja2.StrictUndefined)
    source = "{{ d.a }} {{ d.items()|list }} {{ d.get('a') }} {{ o.real }} {{ d['b'] }}"
    values = {"d": {"a": 1, "b": 2, "items": "shadowed"}, "o": 3}
    assert _ENV.from_string(source).render(**values) == plain.from_string(source).render(**values)
    for env in (_ENV, plain):
        with pytest.raises(jinja2.UndefinedError):
            env.from_string("{{ d.missing }}").render(d={"a": 1})
