from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.errors import InputError
from selfinstruct.seeds import load_seeds

from .conftest import REFERENCE_SEEDS, SEEDS


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_project_seed_set_is_rich_enough():
    tasks = load_seeds(SEEDS)
    assert len(tasks) >= 175
    classification = [task for task in tasks if task.is_classification]
    assert len(classification) >= 25
    assert any(task.instances[0].input == "" for task in tasks)
    assert any(task.instances[0].input != "" for task in tasks)


@pytest.mark.skipif(not REFERENCE_SEEDS.exists(), reason="shared reference seeds not present")
def test_reads_the_original_self_instruct_seed_file():
    tasks = load_seeds(REFERENCE_SEEDS)
    assert len(tasks) == 175
    assert tasks[0].id == "seed_task_0"
    assert sum(task.is_classification for task in tasks) > 0
    assert all(task.instances for task in tasks)


def test_reads_alpaca_json_list(tmp_path):
    rows = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Sleep."},
        {"instruction": "Translate to French.", "input": "Hello", "output": "Bonjour"},
    ]
    tasks = load_seeds(write(tmp_path, "alpaca.json", json.dumps(rows, indent=2)))
    assert [task.instruction for task in tasks] == [row["instruction"] for row in rows]
    assert tasks[1].instances[0].input == "Hello"
    assert [task.id for task in tasks] == ["seed_0", "seed_1"]


def test_reads_plain_jsonl_and_accepts_a_bom(tmp_path):
    content = "\ufeff" + "\n".join(
        json.dumps({"instruction": f"Task number {i} here.", "output": str(i)}) for i in range(3)
    )
    tasks = load_seeds(write(tmp_path, "plain.jsonl", content))
    assert len(tasks) == 3
    assert tasks[0].instances[0].input == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ('{"instruction": "a b c d", "output": "x"}\n{bad json}\n', ":2: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('"just a string"\n', ":1: expected a JSON object"),
        ('{"output": "x"}\n', ":1: instruction: missing field"),
        ('{"instruction": "a b c d"}\n', ":1: output: missing field"),
        ('{"instruction": 5, "output": "x"}\n', ":1: instruction: "),
        ('{"instruction": "   ", "output": "x"}\n', ":1: instruction: "),
        ('{"instruction": "a b c d", "output": "x", "colour": 1}\n', "unknown field(s): colour"),
        (
            '{"id": "a", "instruction": "x y z w", "instances": [{"input": "", "output": "o"}]}\n'
            '{"id": "a", "instruction": "p q r s", "instances": [{"input": "", "output": "o"}]}\n',
            ":2: id: duplicate id 'a' (first at line 1)",
        ),
        (
            '{"id": "a", "instruction": "x y z w", "instances": []}\n',
            "instances: expected at least one",
        ),
        (
            '{"id": "a", "instruction": "x y z w", "instances": [{"input": 3, "output": "o"}]}\n',
            ":1: instances.0.input: ",
        ),
        (
            '{"id": "a", "instruction": "x", "instances": [{"output": "o"}], '
            '"is_classification": "yes"}\n',
            "is_classification",
        ),
    ],
)
def test_bad_seed_files_name_file_line_and_field(tmp_path, content, expected):
    path = write(tmp_path, "seeds.jsonl", content)
    with pytest.raises(InputError) as info:
        load_seeds(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message


def test_non_utf8_bytes_are_reported_with_their_line(tmp_path):
    path = write(
        tmp_path,
        "seeds.jsonl",
        b'{"instruction": "ok ok ok ok", "output": "x"}\n{"instruction": "caf\xe9"}\n',
    )
    with pytest.raises(InputError, match=r":2: not valid UTF-8"):
        load_seeds(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_seeds(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        load_seeds(tmp_path)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path, data):
    path = write(tmp_path, "fuzz.jsonl", data)
    try:
        tasks = load_seeds(path)
    except InputError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(task.instruction.strip() for task in tasks)
