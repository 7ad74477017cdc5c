"""``status`` and ``estimate --from-run`` read a run directory as export and report do: a torn
last line is left out (a run being written, or killed mid-write), never an error."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.run.files import REQUESTS


@pytest.fixture
def run_dir(tmp_path, scripted_server):
    out = tmp_path / "run"
    args = ["generate", "--base-url", scripted_server.base_url, "--model", "X", "-n", "3",
            "--out", str(out), "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


def requests_in(output: str) -> int:
    return int(re.search(r"requests\s+(\d+)", output)[1])


def test_status_leaves_a_torn_last_line_of_requests_out(run_dir):
    whole = CliRunner().invoke(cli, ["status", str(run_dir)])
    assert whole.exit_code == 0, whole.output
    path = run_dir / REQUESTS
    before = path.read_bytes() + b'{"stage": "outputs", "model": "X", "usa'
    path.write_bytes(before)
    torn = CliRunner().invoke(cli, ["status", str(run_dir)])
    assert torn.exit_code == 0, torn.output
    assert "corrupt" not in torn.output
    assert requests_in(torn.output) == requests_in(whole.output)
    assert "an incomplete last line will be cut on resume" in torn.output
    assert path.read_bytes() == before  # a reader never repairs


def test_estimate_from_a_run_with_a_torn_last_line(run_dir):
    base = ["estimate", "--base-url", "http://127.0.0.1:9/v1", "--model", "X", "-n", "30",
            "--from-run", str(run_dir)]  # fmt: skip
    whole = CliRunner().invoke(cli, base)
    assert whole.exit_code == 0, whole.output
    path = run_dir / REQUESTS
    path.write_bytes(path.read_bytes() + b'{"stage": "outputs", "model": "X", "usa')
    torn = CliRunner().invoke(cli, base)
    assert torn.exit_code == 0, torn.output
    assert "Estimate for 30 instructions" in torn.output
    assert torn.output == whole.output


def test_status_names_a_corrupt_row_before_the_last(run_dir):
    path = run_dir / REQUESTS
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace('"usage"', '"usgae"')
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["status", str(run_dir)])
    assert result.exit_code == 2
    assert f"{path}:1: usage: corrupt TeacherCall row" in result.output
    assert "Traceback" not in result.output


def test_estimate_prices_a_run_at_the_model_named_and_totals_each_column(run_dir):
    """A run made with one model (X, unpriced), estimated for gpt-4o-mini: its measured tokens
    at that model's price; without --model, at the run's own model (no price here)."""
    base = ["estimate", "-n", "300", "--from-run", str(run_dir)]
    own = CliRunner().invoke(cli, base)
    assert own.exit_code == 0, own.output
    assert "cost          unknown (a model has no price)" in own.output
    named = CliRunner().invoke(cli, [*base, "--model", "gpt-4o-mini"])
    assert named.exit_code == 0, named.output
    rows = {line.split()[0]: line.split()[1:] for line in named.output.splitlines()[2:7]}
    numbers = {stage: [int(v.replace(",", "")) for v in values] for stage, values in rows.items()}
    total = numbers.pop("total")
    assert total == [sum(column) for column in zip(*numbers.values(), strict=True)]
    usd = (total[1] * 0.15 + total[2] * 0.60) / 1e6  # gpt-4o-mini, USD per 1M tokens
    cost = float(re.search(r"cost\s+\$([\d.,]+)", named.output)[1].replace(",", ""))
    assert cost == pytest.approx(usd, abs=0.006)  # printed to the cent; rows rounded
