"""The whole pipeline with the OpenAI Batch API teacher, against the loopback batch server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from tests.support.batch_server import BatchServer
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import read_run

SECRET = "sk-batch-pipeline-SECRET"


@pytest.fixture
def batch_server() -> Iterator[BatchServer]:
    with BatchServer(SelfInstructResponder()) as server:
        yield server


def generate(
    server: BatchServer, out: Path, batch_dir: Path, api: str = "chat", concurrency: int = 64
) -> str:
    args = [
        "generate", "--base-url", server.base_url, "--model", "X", "--api", api,
        "-n", "5", "--out", str(out), "--quiet", "--max-concurrency", str(concurrency),
        "--set", "teacher.kind=openai-batch",
        "--set", f"teacher.batch_dir={batch_dir}",
        "--set", "teacher.batch_flush_s=0.05",
        "--set", "teacher.batch_poll_s=0.02",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_generate_with_the_batch_teacher(tmp_path, batch_server, api) -> None:
    out, batch_dir = tmp_path / "run", tmp_path / "batches"
    generate(batch_server, out, batch_dir, api)
    run = read_run(out)
    assert run["manifest"].status == "complete"
    assert run["manifest"].counts.instructions_done == 5
    assert len({row.instruction_id for row in run["examples"]}) == 5
    assert all(row.output.strip() for row in run["examples"])
    for stage in ("instructions", "classify", "inputs", "outputs"):
        assert run["manifest"].usage[stage].prompt_tokens > 0

    # everything went through batches: no live completion request at all
    paths = batch_server.paths()
    assert not [p for p in paths if p.endswith("completions")]
    assert paths.count("/v1/batches") == len(batch_server.batches) > 0
    assert all(b.status == "completed" for b in batch_server.batches.values())
    lines = [
        line
        for batch in batch_server.batches.values()
        for line in batch_server.file_lines(batch.input_file_id)
    ]
    assert {line["url"] for line in lines} == {f"/v1/{'chat/' if api == 'chat' else ''}completions"}
    assert all("n" not in line["body"] for line in lines)
    assert all(not isinstance(line["body"].get("prompt", ""), list) for line in lines)

    # the journal holds every answer; the key is written nowhere
    results = (batch_dir / "results.jsonl").read_text().splitlines()
    assert len(results) == len({json.loads(row)["custom_id"] for row in results})
    assert len(results) >= len(lines) - sum(b.failed for b in batch_server.batches.values())
    written = "".join(
        p.read_text() for p in [*out.rglob("*"), *batch_dir.rglob("*")] if p.is_file()
    )
    assert SECRET not in written


def test_a_rerun_on_the_same_journal_pays_nothing(tmp_path, batch_server) -> None:
    """A run whose work was lost (a new --out) but whose batch journal survived is answered
    from the journal: the requests carry their own seeds, so they are the same requests
    (one request at a time, so the demonstrations drawn do not depend on timing: under
    concurrency, stage-1 rounds run side by side and which machine demonstrations a round
    shows is not deterministic, as the README says)."""
    batch_dir = tmp_path / "batches"
    generate(batch_server, tmp_path / "first", batch_dir, concurrency=1)
    first_batches = len(batch_server.batches)
    generate(batch_server, tmp_path / "second", batch_dir, concurrency=1)
    assert len(batch_server.batches) == first_batches  # not one new batch
    first = [row.output for row in read_run(tmp_path / "first")["examples"]]
    second = [row.output for row in read_run(tmp_path / "second")["examples"]]
    assert sorted(first) == sorted(second)
