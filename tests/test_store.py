from __future__ import annotations

import json
import os

import pytest

from selfinstruct.errors import InputError
from selfinstruct.records import Example, Instruction, Provenance, Rejection, TeacherCall, Usage
from selfinstruct.store import (
    EXAMPLES,
    INSTRUCTIONS,
    NO_VALID_INSTANCES,
    RunStore,
    check_output_dir,
    load_state,
    repair_torn_tail,
    write_json_atomic,
)


def instruction(n: int) -> Instruction:
    return Instruction(id=f"i{n:06d}", instruction=f"task {n}", request=n, model="m", max_rouge=0.1)


def example(n: int, k: int = 0) -> Example:
    return Example(
        id=f"i{n:06d}-{k}",
        instruction_id=f"i{n:06d}",
        instruction=f"task {n}",
        input="",
        output="out",
        is_classification=False,
        provenance=Provenance(),
    )


def test_state_is_rebuilt_from_files(tmp_path):
    store = RunStore.open(tmp_path)
    for n in range(3):
        store.add_instruction(instruction(n))
    store.add_examples([example(0), example(0, 1)])
    store.add_rejections(
        [
            Rejection(
                stage="outputs", reason=NO_VALID_INSTANCES, candidate="", instruction_id="i000001"
            )
        ]
    )
    store.add_call(
        TeacherCall(
            stage="outputs",
            model="m",
            usage=Usage(prompt_tokens=5, completion_tokens=2),
            latency_s=0.1,
        )
    )
    store.close()
    state = load_state(tmp_path)
    assert [row.id for row in state.instructions] == ["i000000", "i000001", "i000002"]
    assert state.finished == {"i000000", "i000001"}
    assert [row.id for row in state.pending] == ["i000002"]
    assert state.example_ids == {"i000000-0", "i000000-1"}
    assert state.usage["outputs"].total_tokens == 7
    assert state.next_request == 3


def test_examples_are_never_written_twice(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_examples([example(0)])
    store.add_examples([example(0), example(1)])
    store.close()
    lines = (tmp_path / EXAMPLES).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["i000000-0", "i000001-0"]


def test_torn_last_line_is_cut_and_reported(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_instruction(instruction(0))
    store.close()
    path = tmp_path / INSTRUCTIONS
    whole = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b'{"id": "i000001", "instru')
    state = load_state(tmp_path)
    assert [row.id for row in state.instructions] == ["i000000"]
    assert state.repaired and "incomplete last line" in state.repaired[0]
    assert path.read_bytes() == whole


def test_torn_tail_without_any_newline_empties_the_file(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"half')
    assert repair_torn_tail(path) == 6
    assert path.read_bytes() == b""


def test_a_corrupt_row_in_the_middle_is_an_error_not_skipped(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_instruction(instruction(0))
    store.add_instruction(instruction(1))
    store.close()
    path = tmp_path / INSTRUCTIONS
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + '\n{"id": 1}\n' + lines[1] + "\n")
    with pytest.raises(InputError, match=r"instructions.jsonl:2: .*corrupt Instruction row"):
        load_state(tmp_path)


def test_output_dir_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        check_output_dir(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_output_dir(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            check_output_dir(target / "run")
    finally:
        target.chmod(0o700)


def test_atomic_json_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "manifest.json"
    write_json_atomic(path, '{"a": 1}')
    write_json_atomic(path, '{"a": 2}')
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
