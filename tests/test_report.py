"""``selfinstruct report``: files, embedded charts, escaping, costs; the verb heuristic."""

from __future__ import annotations

import json
import re
import sys

import pytest
from click.testing import CliRunner
from rouge_score import rouge_scorer

from selfinstruct.cli import cli
from selfinstruct.report import build_report
from selfinstruct.report.verbs import QUESTION, singular, verb_noun, verb_noun_table
from selfinstruct.run.budget import Price, PriceTable, format_usd, load_prices

from .test_export import INSTRUCTIONS, SEED_TASKS, invoke, make_run

pytest.importorskip("matplotlib")
datasets = pytest.importorskip("datasets")

CHARTS = ("counts", "rouge", "lengths", "verbs", "tokens")


def test_report_files_embedded_images_and_escaping(tmp_path):
    run = make_run(tmp_path)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    folder = run / "report"
    for name in CHARTS:
        png = (folder / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) < 150_000
    page = (folder / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(CHARTS)
    assert "<script" not in page  # the hostile output and candidate are escaped ...
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page  # ... and shown
    assert 'src="http' not in page and "<link" not in page  # self-contained
    # the summary
    assert f"Report: {folder / 'report.html'}" in result.output
    assert "examples                       15" in result.output


def test_report_numbers(tmp_path):
    run = make_run(tmp_path)
    report = build_report(run, samples=5)
    kept = {(row.stage, row.label): row.count for row in report.stage_rows}
    assert kept[("instructions", "kept")] == 8
    assert kept[("outputs", "examples kept")] == 15
    assert kept[("instructions", "rouge_similar")] == 1
    assert kept[("outputs", "empty_output")] == 1
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    expected = [
        max(scorer.score(seed.instruction, text)["rougeL"].fmeasure for seed in SEED_TASKS)
        for text in INSTRUCTIONS
    ]
    assert report.seed_scores == expected
    assert report.lengths["inputs (non-empty)"] and report.empty_inputs == 1
    assert len(report.kept_sample) == 5 and len(report.rejected_sample) == 3
    assert report.tokens_per_example == pytest.approx(8 * 1200 / 15)
    costs = {(u.stage, u.model): u.cost for u in report.usage}
    assert costs[("outputs", "gpt-4o-mini")] == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)
    assert costs[("outputs", "my-local-model")] is None
    assert report.verbs.verbs["write"] == 1 and report.verbs.questions["what"] == 1


def test_missing_seed_file_skips_the_histogram(tmp_path):
    run = make_run(tmp_path, seeds=False)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert "gone.jsonl is gone" in result.output
    assert not (run / "report" / "rouge.png").exists()
    page = (run / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(CHARTS) - 1


def test_prices_file_overrides_and_bad_prices(tmp_path):
    run = make_run(tmp_path)
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  my-local-model: {input: 1.0, output: 2.0}\n")
    report = build_report(run, prices=prices)
    costs = {(u.stage, u.model): u.cost for u in report.usage}
    assert costs[("inputs", "my-local-model")] == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)
    assert costs[("inputs", "gpt-4o-mini")] is not None  # the shipped table still applies

    prices.write_text("models:\n  m: {input: -1, output: 2}\n")
    result = invoke("report", run, "--prices", prices)
    assert result.exit_code == 2 and "prices.yaml: models.m.input:" in result.output
    prices.write_text("models:\n  m: {in: 1, out: 2}\n")
    result = invoke("report", run, "--prices", prices)
    assert result.exit_code == 2 and "prices.yaml: models.m" in result.output


def test_corrupt_rejected_row_is_an_input_error(tmp_path):
    run = make_run(tmp_path)
    path = run / "rejected.jsonl"
    path.write_text(path.read_text() + '{"stage": "nope"}\n')
    result = invoke("report", run)
    assert result.exit_code == 2
    assert f"{path}:4:" in result.output


def test_without_matplotlib(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = invoke("report", run)
    assert result.exit_code == 2
    assert "pip install 'selfinstruct[report]'" in result.output


def test_price_table_lookup():
    table = PriceTable({"GPT-4o-mini": Price(input=0.15, output=0.6)})
    assert table.lookup("gpt-4o-mini") == table.lookup("gpt-4o-mini-2024-07-18")
    assert table.lookup("gpt-4o-mini-high") is None
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("unknown", 10, 10) is None
    assert format_usd(None) == "unknown" and format_usd(0.001234) == "$0.0012"
    assert len(load_prices()) >= 5


@pytest.mark.parametrize(
    ("text", "verb", "noun"),
    [
        ("Write a Python function that reverses a string.", "write", "function"),
        ("Given a list of numbers, find the largest one.", "find", None),
        ("You are given a list. Sort the items alphabetically.", "sort", "item"),
        ("Please summarize this article in one sentence.", "summarize", "article"),
        ("Can you write a short story about a dragon?", "write", "story"),
        ("Give three tips for staying healthy.", "give", "tip"),
        ("Come up with a name for a bakery.", "come up with", "name"),
        ("Classify the following sentences as positive or negative.", "classify", "sentence"),
        ("Suggest a polite reply to the customer.", "suggest", "reply"),
        ("Add an 18% tip to a restaurant bill.", "add", "tip"),
        ("Create a 5-star recommendation for a hotel.", "create", "recommendation"),
        ("What's the capital of France?", QUESTION, "what"),
        ("The most expensive thing you have seen?", None, None),
    ],
)
def test_verb_noun_heuristic(text, verb, noun):
    found = verb_noun(text)
    assert (found.verb, found.noun) == (verb, noun)


def test_singular_and_table():
    assert [singular(w) for w in ("stories", "sentences", "boxes", "class", "news", "is")] == [
        "story", "sentence", "box", "class", "news", "is",
    ]  # fmt: skip
    table = verb_noun_table(["Write a poem.", "Write a poem about cats.", "Write a story.",
                             "How are you?", "Blue sky."])  # fmt: skip
    assert table.top(1, 1) == [("write", 3, [("poem", 2)])]
    assert table.questions["how"] == 1 and table.unparsed == 1 and table.total == 5


def test_end_to_end_with_the_scripted_teacher(tmp_path, scripted_server):
    """generate (real HTTP on 127.0.0.1) -> export every format -> report -> stats."""
    run = tmp_path / "run"
    args = ["generate", "--base-url", scripted_server.base_url, "--model", "X",
            "-n", "12", "--out", str(run), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code == 0, result.output
    examples = [json.loads(line) for line in (run / "examples.jsonl").read_text().splitlines()]
    cache = str(tmp_path / "cache")
    for fmt, field in (("alpaca", "instruction"), ("messages", "messages"),
                       ("sharegpt", "conversations"), ("prompt-completion", "prompt")):  # fmt: skip
        out = tmp_path / f"{fmt}.jsonl"
        assert invoke("export", run, "--layout", fmt, "--out", out).exit_code == 0
        loaded = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=cache)
        assert loaded.num_rows == len(examples) and field in loaded.column_names
    hf = tmp_path / "hf"
    split = ["--split", "train=0.75,test=0.25"]
    assert invoke("export", run, "--to", "hf", "--out", hf, *split).exit_code == 0
    loaded = datasets.load_from_disk(str(hf))
    assert loaded["train"].num_rows + loaded["test"].num_rows == len(examples)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert re.search(r"instructions in the dataset\s+12", result.output)
    result = invoke("stats", tmp_path / "alpaca.jsonl")
    assert result.exit_code == 0 and f"{len(examples):,} rows" in result.output
