from __future__ import annotations

import asyncio
import json
import os

import pytest

from selfinstruct.errors import InputError
from selfinstruct.records import Example, Instruction, Provenance, Rejection, TeacherCall, Usage
from selfinstruct.run.files import (
    EXAMPLES,
    INSTRUCTIONS,
    REQUESTS,
    cut_torn_tail,
    read_rows,
    write_json_atomic,
)
from selfinstruct.run.store import NO_VALID_INSTANCES, RunStore, check_output_dir, load_state


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


def call(n: int) -> TeacherCall:
    return TeacherCall(
        id=f"c{n}", stage="outputs", model="m", usage=Usage(prompt_tokens=n), latency_s=0.1
    )


def lines_of(path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_requests_rows_of_a_tick_go_out_together_before_any_later_row(tmp_path):
    """Requests rows are held until the end of the event-loop tick (one write for all), but a
    row of another file added after them is never on disk before them: the files stay a
    prefix of the order rows were added in, whatever instant a kill comes at."""

    async def run() -> None:
        store = RunStore.open(tmp_path)
        for n in range(5):
            store.add_call(call(n))
        assert lines_of(tmp_path / REQUESTS) == []  # held: nothing written in this tick
        await asyncio.sleep(0)  # the tick ends
        assert lines_of(tmp_path / REQUESTS) == [f"c{n}" for n in range(5)]

        store.add_call(call(5))
        store.add_examples([example(0)])  # in the same tick: the held row goes out first
        assert lines_of(tmp_path / REQUESTS)[-1] == "c5"
        assert lines_of(tmp_path / EXAMPLES) == ["i000000-0"]
        store.add_call(call(6))
        store.close()  # held rows are written on close
        assert lines_of(tmp_path / REQUESTS)[-2:] == ["c5", "c6"]

    asyncio.run(run())
    assert load_state(tmp_path).example_ids == {"i000000-0"}


def test_requests_rows_are_written_at_once_without_an_event_loop(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_call(call(0))
    assert lines_of(tmp_path / REQUESTS) == ["c0"]
    store.close()


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
    assert cut_torn_tail(path, read_rows(path, Instruction)) == 6
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


def test_a_reader_leaves_a_torn_last_line_out_and_the_file_alone(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_call(call(1))
    store.close()
    path = tmp_path / REQUESTS
    path.write_bytes(path.read_bytes() + b'{"stage": "outputs", "mod')
    before = path.read_bytes()
    state = load_state(tmp_path, repair=False)
    assert state.requests["outputs"] == 1
    assert path.read_bytes() == before
    assert "left out an incomplete last line (25 bytes)" in state.repaired[0]


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (call(2).model_dump_json().encode(), "valid JSON but no newline: the write was cut"),
        (b'{"stage": "outputs", "mo', "half a row"),
        (b'{"stage": "outputs", "model": "\xc3', "cut inside a UTF-8 character"),
    ],
)
def test_every_kind_of_torn_last_line_is_left_out_by_readers_and_cut_on_resume(
    tmp_path, tail, why
):
    store = RunStore.open(tmp_path)
    store.add_call(call(1))
    store.close()
    path = tmp_path / REQUESTS
    whole = path.read_bytes()
    path.write_bytes(whole + tail)
    read = read_rows(path, TeacherCall)
    assert [row.usage.prompt_tokens for row in read.rows] == [1], why
    assert read.torn_at == len(whole)
    resumed = RunStore.open(tmp_path)  # the writer cuts it before appending
    resumed.add_call(call(3))
    resumed.close()
    assert [row.usage.prompt_tokens for row in read_rows(path, TeacherCall).rows] == [1, 3]


def test_a_corrupt_row_before_the_last_is_an_error_for_readers_too(tmp_path):
    store = RunStore.open(tmp_path)
    for n in range(3):
        store.add_call(call(n))
    store.close()
    path = tmp_path / REQUESTS
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"latency_s"', '"latency"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        load_state(tmp_path, repair=False)
    message = str(error.value)
    assert message.startswith(f"{path}:2: latency_s: corrupt TeacherCall row: missing field")
    assert "only skipped as an unterminated last line" in message


def test_a_whole_last_line_that_is_not_a_row_is_an_error_not_skipped(tmp_path):
    store = RunStore.open(tmp_path)
    store.add_call(call(1))
    store.close()
    path = tmp_path / REQUESTS
    path.write_bytes(path.read_bytes() + b'{"stage": "outputs"}\n')
    for repair in (False, True):
        with pytest.raises(InputError, match=r"requests.jsonl:2: model: corrupt TeacherCall row"):
            load_state(tmp_path, repair=repair)


def test_rows_written_before_the_records_gained_ids_still_resume(tmp_path):
    """A run directory written by selfinstruct 0.x (rows as they were then) loads and resumes."""
    rows = {
        INSTRUCTIONS: '{"id": "i000000", "instruction": "Name a colour.", "request": 0, '
        '"model": "m", "max_rouge": 0.2, "most_similar": null}',
        EXAMPLES: '{"id": "i000000-0", "instruction_id": "i000000", "instruction": "Name a '
        'colour.", "input": "", "output": "Red", "is_classification": false, "provenance": '
        '{"models": {"outputs": "m"}, "prompts": {"outputs": "abc"}}}',
        "rejected.jsonl": '{"stage": "instructions", "reason": "too_short", "candidate": "x", '
        '"request": 4, "instruction_id": null, "details": {}}',
        REQUESTS: '{"stage": "outputs", "model": "m", "usage": {"prompt_tokens": 5, '
        '"completion_tokens": 2}, "finish_reason": "stop", "latency_s": 0.3, "error": null}',
    }
    for name, row in rows.items():
        (tmp_path / name).write_text(row + "\n")
    store = RunStore.open(tmp_path)
    assert store.state.finished == {"i000000"} and store.state.next_request == 5
    assert store.state.usage["outputs"].total_tokens == 7
    store.add_call(call(1))
    store.close()
    assert len(read_rows(tmp_path / REQUESTS, TeacherCall).rows) == 2
