"""Cost and token caps stop a run cleanly (resumable); ``estimate`` predicts a real run."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.run.estimate import measured_total_tokens

from .helpers import example_ids

PRICE = ["--set", "budget.prices.X={input: 100.0, output: 400.0}"]  # USD per 1M tokens


def generate(server, out, *extra: str):
    args = ["generate", "--base-url", server.base_url, "--model", "X", "--out", str(out), "-q",
            *PRICE, *extra]  # fmt: skip
    return CliRunner().invoke(cli, args)


def test_max_cost_stops_cleanly_and_a_resume_finishes(tmp_path, scripted_server):
    out = tmp_path / "run"
    # the whole run costs ~$3.1; the first ~8 requests (~$0.55) all go to stage 1 to fill the
    # slots, so a cap near half the run leaves room for expansions and stops well before the end
    capped = generate(scripted_server, out, "-n", "40", "--max-cost", "1.5")
    assert capped.exit_code == 0, capped.output
    assert "Stopped (cost budget reached" in capped.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    # a hard cap: after it, no request starts; only the (at most 8) in flight may finish
    calls = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    costs = [(c["usage"]["prompt_tokens"] * 100 + c["usage"]["completion_tokens"] * 400) / 1e6
             for c in calls]  # fmt: skip
    assert manifest["cost_usd"] == pytest.approx(sum(costs))
    assert 1.5 <= manifest["cost_usd"] <= 1.5 + 8 * max(costs)
    first = example_ids(out)
    assert 0 < len({i.split("-")[0] for i in first}) < 40

    resumed = generate(scripted_server, out, "-n", "40", "--max-cost", "50")
    assert resumed.exit_code == 0, resumed.output
    ids = example_ids(out)
    assert ids[: len(first)] == first
    assert len({i.split("-")[0] for i in ids}) == 40
    assert len(ids) == len(set(ids))


def test_max_tokens_stops_cleanly(tmp_path, scripted_server):
    out = tmp_path / "run"
    result = generate(scripted_server, out, "-n", "40", "--max-tokens", "5000")
    assert result.exit_code == 0, result.output
    assert "token budget reached" in result.output
    assert 5000 <= measured_total_tokens(out) < 9000


def test_max_cost_needs_a_price_for_the_model(tmp_path, scripted_server):
    result = CliRunner().invoke(
        cli,
        ["generate", "--base-url", scripted_server.base_url, "--model", "unpriced-model",
         "--max-cost", "1", "--out", str(tmp_path / "run"), "-q"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "needs a price for model 'unpriced-model'" in result.output


def total_tokens(estimate: str) -> int:
    """Prompt + completion tokens of an estimate's total row."""
    prompt, completion = re.search(r"total\s+[\d,]+\s+([\d,]+)\s+([\d,]+)", estimate).groups()
    return int(prompt.replace(",", "")) + int(completion.replace(",", ""))


def test_estimate_from_a_pilot_predicts_the_real_run_within_25_percent(tmp_path, scripted_server):
    pilot = tmp_path / "pilot"
    base = ["--base-url", scripted_server.base_url, "--model", "X", *PRICE]
    result = CliRunner().invoke(
        cli, ["estimate", *base, "-n", "80", "--pilot", "10", "--pilot-out", str(pilot)]
    )
    assert result.exit_code == 0, result.output
    assert "Pilot: 10 instructions" in result.output
    predicted = total_tokens(result.output)
    assert re.search(r"cost\s+\$[\d.]+", result.output)

    real = tmp_path / "real"
    run = CliRunner().invoke(cli, ["generate", *base, "-n", "80", "--out", str(real), "-q"])
    assert run.exit_code == 0, run.output
    measured = measured_total_tokens(real)
    assert abs(predicted - measured) / measured <= 0.25, (predicted, measured)

    again = CliRunner().invoke(cli, ["estimate", *base, "-n", "160", "--from-run", str(real)])
    assert again.exit_code == 0, again.output
    doubled = total_tokens(again.output)
    assert abs(doubled - 2 * measured) <= 2
