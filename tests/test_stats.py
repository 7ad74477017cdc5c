"""``selfinstruct stats``: known numbers on known files, and every kind of bad file."""

from __future__ import annotations

import json

import pytest

from selfinstruct.report.stats import Lengths, file_stats, percentile, table_stats

from .test_export import invoke, make_run

datasets = pytest.importorskip("datasets")


def rows_with_lengths(n: int = 100) -> list[dict]:
    """Row i: instruction of i+1 words; input empty for even i; output of 2 words."""
    return [
        {
            "instruction": " ".join(["w"] * (i + 1)),
            "input": "" if i % 2 == 0 else "one two three",
            "output": "an answer",
        }
        for i in range(n)
    ]


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7], 50) == 7 and percentile([], 90) == 0
    assert Lengths.of(["a b", "a", "a b c d"]) == Lengths(3, 2, 4, 4, 4, 2.33)


def test_stats_on_a_known_jsonl_file(tmp_path):
    path = tmp_path / "known.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows_with_lengths()))
    result = invoke("stats", path, "--json")
    assert result.exit_code == 0, result.output
    [table] = json.loads(result.output)
    assert table["rows"] == 100
    assert table["fields"] == ["instruction", "input", "output"]
    assert table["empty_inputs"] == 50 and table["empty_input_share"] == 0.5
    assert table["lengths"]["instruction"] == {
        "count": 100, "p50": 50, "p90": 90, "p99": 99, "max": 100, "mean": 50.5,
    }  # fmt: skip
    assert table["lengths"]["output"]["max"] == 2
    assert table["lengths"]["input"]["p90"] == 3

    text = invoke("stats", path)
    assert text.exit_code == 0
    assert "100 rows" in text.output and "empty inputs: 50 of 100 (50.0%)" in text.output
    assert "instruction" in text.output and "p99" in text.output


def test_the_same_numbers_from_a_json_list_and_parquet(tmp_path):
    rows = rows_with_lengths(40)
    listed = tmp_path / "d.json"
    listed.write_text(json.dumps(rows, indent=2))
    parquet = tmp_path / "d.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(parquet))
    expected = table_stats(rows)
    assert file_stats(listed) == [expected]
    assert file_stats(parquet) == [expected]


def test_conversations_are_measured_per_role(tmp_path):
    run = make_run(tmp_path)
    out = tmp_path / "m.jsonl"
    assert (
        invoke(
            "export", run, "--layout", "messages", "--out", out, "--system", "Be brief."
        ).exit_code
        == 0
    )
    [table] = file_stats(out)
    assert table.fields == ["messages"]
    assert set(table.lengths) == {"messages[system]", "messages[user]", "messages[assistant]"}
    assert table.lengths["messages[system]"].max == 2
    assert table.empty_inputs is None


def test_stats_of_a_split_hf_directory(tmp_path):
    run = make_run(tmp_path)
    out = tmp_path / "hf"
    args = ["--to", "hf", "--out", out, "--split", "train=0.5,test=0.5"]
    assert invoke("export", run, *args).exit_code == 0
    tables = file_stats(out)
    assert [t.name for t in tables] == ["train", "test"]
    assert sum(t.rows for t in tables) == 15
    result = invoke("stats", out)
    assert result.exit_code == 0 and "[train]" in result.output and "[test]" in result.output


@pytest.mark.parametrize(
    ("name", "content", "where", "problem"),
    [
        ("bad.jsonl", '{"a": "x"}\n{"a": \n', ":2:", "invalid JSON"),
        ("bad.jsonl", '{"a": "x"}\n\n[1, 2]\n', ":3:", "expected a JSON object, got list"),
        ("bad.json", '[\n  {"a": "x"},\n  "text",\n  {"a": "y"}\n]', ":3:", "got str"),
        ("bad.json", '[\n  {"a": "x"},\n  {"a": }\n]', ":3:", "invalid JSON"),
        ("bad.json", '[{"a": "x"}] extra', ":1:", "unexpected text after the JSON list"),
        ("empty.jsonl", "  \n", "empty.jsonl:", "empty file"),
        ("bad.parquet", "not parquet", "bad.parquet:", "not a readable Parquet file"),
    ],
)
def test_bad_files(tmp_path, name, content, where, problem):
    path = tmp_path / name
    path.write_text(content)
    result = invoke("stats", path)
    assert result.exit_code == 2, result.output
    assert where in result.output and problem in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_file_and_not_a_dataset_directory(tmp_path):
    result = invoke("stats", tmp_path / "nope.jsonl")
    assert result.exit_code == 2 and "no such file" in result.output
    result = invoke("stats", tmp_path)
    assert result.exit_code == 2 and "not a dataset saved with save_to_disk" in result.output
