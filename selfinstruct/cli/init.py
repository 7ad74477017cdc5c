"""``selfinstruct init DIR``: a starter config plus editable copies of the seeds and prompts.

The config lists every field of :class:`~selfinstruct.config.RunConfig` with its default and
its ``Field(description=...)``, generated from the pydantic models, so it cannot drift from
them. It points ``seeds`` and each stage's ``prompt`` at the copies; relative paths in a
config file are resolved against the file's folder, so ``DIR`` can be moved as a whole.
"""

from __future__ import annotations

import shutil
import typing
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from selfinstruct import __version__
from selfinstruct.assets import SEED_FILE_NAME, default_seed_file, prompts_dir
from selfinstruct.config import RunConfig
from selfinstruct.errors import InputError
from selfinstruct.prompts import default_prompt_path

CONFIG_NAME = "selfinstruct.yaml"

#: config field -> the shipped template it defaults to (``NAME.API.txt``, else ``NAME.txt``)
STAGE_PROMPTS = {
    "stages.instructions.prompt": "instructions",
    "stages.classify.prompt": "classify",
    "stages.inputs.prompt": "inputs.input_first",
    "stages.inputs.output_first_prompt": "inputs.output_first",
    "stages.outputs.prompt": "outputs",
    "stages.evolve.prompt": "evolve",
    "stages.paraphrase.prompt": "paraphrase",
    "stages.invert.prompt": "invert",
    "stages.judge.prompt": "judge",
    "stages.instructions.structured_prompt": "instructions.structured",
    "stages.classify.structured_prompt": "classify.structured",
    "stages.inputs.structured_prompt": "inputs.input_first.structured",
    "stages.inputs.structured_output_first_prompt": "inputs.output_first.structured",
}

_HEADER = """\
# selfinstruct run configuration, written by `selfinstruct init` (selfinstruct {version}).
#   selfinstruct generate --config {name} -n 100 --out runs/first
# Every field is listed with its default and what it means. A line "# key: value" is a field
# left at its default: delete the "# " (and the one on its section's line) to change it.
# Relative paths are relative to this file's folder. Command-line options win over this file.
# API keys: set OPENAI_API_KEY instead of writing one here.
"""


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--api",
    type=click.Choice(["completions", "chat"]),
    default="completions",
    show_default=True,
    help="Whose prompt templates the config uses for stages 1 and 3 "
    "(completions suits the embedded model, chat an OpenAI-compatible chat endpoint).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, api: str, force: bool) -> None:
    """Write DIRECTORY/selfinstruct.yaml and editable copies of the seeds and prompts.

    \b
    selfinstruct init my-run
    selfinstruct generate --config my-run/selfinstruct.yaml -n 10
    """
    written = write_starter(directory, api, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: selfinstruct generate --config {directory / CONFIG_NAME} -n 10")


def write_starter(directory: Path, api: str, *, force: bool = False) -> list[Path]:
    """Write the config and the copies; refuse (InputError) to overwrite unless ``force``."""
    copies = {directory / "seeds" / SEED_FILE_NAME: default_seed_file()}
    for template in sorted(prompts_dir().glob("*.txt")):
        copies[directory / "prompts" / template.name] = template
    config_path = directory / CONFIG_NAME
    targets = [config_path, *copies]
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        raise InputError(
            f"already exists (and {len(existing) - 1} more); use --force to overwrite"
            if len(existing) > 1
            else "already exists; use --force to overwrite",
            path=existing[0],
        )
    for target, source in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    config_path.write_text(starter_config(api), encoding="utf-8")
    return targets


def starter_config(api: str) -> str:
    """The commented YAML config pointing at ``seeds/`` and ``prompts/`` beside it."""
    # the API the templates below are written for: a --base-url run would otherwise default to
    # chat and send the completions templates as chat messages
    values: dict[str, Any] = {"seeds": f"seeds/{SEED_FILE_NAME}", "teacher.api": api}
    for dotted, name in STAGE_PROMPTS.items():
        values[dotted] = f"prompts/{default_prompt_path(name, api).name}"  # type: ignore[arg-type]
    header = _HEADER.format(version=__version__, name=CONFIG_NAME)
    body = describe_model(RunConfig, values)
    return header + "\n" + "\n".join(body) + "\n"


def describe_model(
    model: type[BaseModel], values: dict[str, Any], prefix: str = "", depth: int = 0
) -> list[str]:
    """YAML lines for every field of ``model``: its description, then ``key: default``
    commented out, or ``key: value`` for the dotted paths in ``values``."""
    lines: list[str] = []
    indent = "  " * depth
    for name, info in model.model_fields.items():
        dotted = prefix + name
        if depth == 0 and lines:
            lines.append("")
        for text in _meaning(info):
            lines.append(f"{indent}# {text}")
        section = _section_model(info)
        if section is not None:
            active = any(key.startswith(dotted + ".") for key in values)
            lines.append(f"{indent}{'' if active else '# '}{name}:")
            children = describe_model(section, values, dotted + ".", depth + 1)
            lines.extend(children if active else [_comment_out(line, indent) for line in children])
        elif dotted in values:
            lines.append(f"{indent}{name}: {_yaml(values[dotted])}")
        else:
            lines.append(f"{indent}# {name}: {_yaml(_default(info))}")
    return lines


def _meaning(info: FieldInfo) -> list[str]:
    """The field's description, plus the other kinds when it is a union of models."""
    text = info.description
    section = _section_model(info)
    if text is None and section is not None and section.__doc__:
        text = " ".join(section.__doc__.strip().split("\n\n")[0].split())
    lines = [text] if text else []
    others = [m for m in _model_leaves(info.annotation) if m is not section]
    if section is not None and others:
        kinds = ", ".join(_kind_name(m, info.discriminator) for m in others)
        lines.append(f"Shown: the default kind's fields. Other kinds: {kinds}.")
    return lines


def _section_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model to expand for a field whose default is a model instance (a config section)."""
    default = _default(info)
    return type(default) if isinstance(default, BaseModel) else None


def _default(info: FieldInfo) -> Any:
    return info.get_default(call_default_factory=True)


def _model_leaves(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_leaves(typing.get_args(annotation)[0])
    if origin is not None and origin is not dict and origin is not list:
        return [m for arg in typing.get_args(annotation) for m in _model_leaves(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _kind_name(model: type[BaseModel], discriminator: Any) -> str:
    field = model.model_fields.get(discriminator) if isinstance(discriminator, str) else None
    if field is not None:
        kinds = typing.get_args(field.annotation) or (field.default,)
        return "/".join(str(kind) for kind in kinds)
    return model.__name__


def _comment_out(line: str, indent: str) -> str:
    """Comment a line of a section left at its defaults (its own comments stay as they are)."""
    rest = line[len(indent) :]
    if rest.lstrip().startswith("#"):
        return line
    return f"{indent}# {rest}"


def _yaml(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, Path):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.removesuffix("\n...\n").strip()
