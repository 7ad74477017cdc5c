"""``dedup_file`` and ``selfinstruct dedup``: greedy ROUGE-L dedup of dataset files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rouge_score import rouge_scorer

from selfinstruct import datafiles
from selfinstruct.cli.dedup import dedup_command
from selfinstruct.dedup import DedupResult, dedup_file
from selfinstruct.errors import InputError

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpora/instructions-29k.jsonl"

ROWS = [
    {"instruction": "Write a poem about the sea.", "id": 1, "tags": ["a"]},
    {"instruction": "write a poem about the sea", "id": 2, "tags": []},  # same tokens
    {"instruction": "Summarize the article in two sentences.", "id": 3, "extra": None},
    {"instruction": "Write a short poem about the sea.", "id": 4},  # F = 12/13 against id 1
    {"instruction": "", "id": 5},  # no tokens: never similar, kept
    {"instruction": "Translate this sentence into French.", "id": 6},
]
KEPT_IDS = [1, 3, 5, 6]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_keeps_rows_whole_and_writes_rejected_with_nearest(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    result = dedup_file(
        source, out_path=tmp_path / "out.jsonl", rejected_path=tmp_path / "rejected.jsonl"
    )
    assert isinstance(result, DedupResult)
    assert (result.rows, result.kept, result.rejected) == (6, 4, 2)
    assert read_jsonl(tmp_path / "out.jsonl") == [r for r in ROWS if r["id"] in KEPT_IDS]
    rejected = read_jsonl(tmp_path / "rejected.jsonl")
    assert [r["id"] for r in rejected] == [2, 4]
    assert (
        rejected[0]["_nearest"] == "Write a poem about the sea." and rejected[0]["_rouge_l"] == 1.0
    )
    expected = SCORER.score(ROWS[3]["instruction"], ROWS[0]["instruction"])["rougeL"].fmeasure
    assert rejected[1]["_rouge_l"] == expected  # 0.923076923076923, one ulp below 12/13
    assert rejected[1]["_nearest"] == ROWS[0]["instruction"]


def test_json_list_in_and_out_and_other_field(tmp_path: Path) -> None:
    rows = [{"prompt": r["instruction"], "n": r["id"]} for r in ROWS]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    result = dedup_file(source, out_path=tmp_path / "out.json", field="prompt", threshold=0.95)
    kept = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [r["n"] for r in kept] == [1, 3, 4, 5, 6]  # 12/13 <= 0.95: kept now
    assert result.kept == 5


def test_threshold_one_keeps_everything(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert dedup_file(source, out_path=tmp_path / "out.jsonl", threshold=1.0).kept == len(ROWS)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"instruction": "a"}\n{"instruction": "b"\n', "in.jsonl:2: invalid JSON"),
        ('{"instruction": "a"}\n{"text": "b"}\n', "in.jsonl:2: instruction: missing"),
        ('{"instruction": 3}\n', "in.jsonl:1: instruction: expected a string, got int"),
        ('{"instruction": null}\n', "in.jsonl:1: instruction: expected a string, got null"),
        ('["instruction"]\n', "in.jsonl:1: expected a JSON object, got str"),
        ("[1]\n", "in.jsonl:1: expected a JSON object, got int"),
        ('"just a string"\n', "in.jsonl:1: expected a JSON object, got str"),
        ("", "in.jsonl: empty file"),
        ("\n  \n", "in.jsonl: empty file"),
        ("[]", "in.jsonl: empty file"),
        ('[{"instruction": "a"},\n {"instruction": 2}]', "in.jsonl:2: instruction: expected"),
        ('[{"instruction": "a"}\n {"instruction": "b"}]', "in.jsonl:2: invalid JSON list"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path: Path, content: str, expected: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("previous output\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        dedup_file(source, out_path=out, rejected_path=tmp_path / "rejected.jsonl")
    assert str(caught.value).startswith(str(tmp_path / expected)), str(caught.value)
    assert out.read_text(encoding="utf-8") == "previous output\n"  # untouched
    assert not (tmp_path / "rejected.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no temp


def test_invalid_utf8_and_missing_file(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"instruction": "ok"}\n{"instruction": "\xff"}\n')
    with pytest.raises(InputError, match=r"in\.jsonl:2: not valid UTF-8"):
        dedup_file(source, out_path=tmp_path / "out.jsonl")
    with pytest.raises(InputError, match="no such file"):
        dedup_file(tmp_path / "missing.jsonl", out_path=tmp_path / "out.jsonl")


def test_refuses_to_overwrite_input_or_share_outputs(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    with pytest.raises(InputError, match="overwrite the input"):
        dedup_file(source, out_path=source)
    with pytest.raises(InputError, match="file of their own"):
        dedup_file(source, out_path=tmp_path / "o.jsonl", rejected_path=tmp_path / "o.jsonl")
    with pytest.raises(InputError, match="threshold"):
        dedup_file(source, out_path=tmp_path / "o.jsonl", threshold=2.0)


def test_parquet_without_pyarrow_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.parquet"
    source.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(InputError, match="pyarrow"):
        dedup_file(source, out_path=tmp_path / "out.jsonl")


def test_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"instruction": r["instruction"]} for r in ROWS]), source)
    result = dedup_file(source, out_path=tmp_path / "out.jsonl")
    assert result.kept == len(KEPT_IDS)


def test_iter_rows_reports_lines_of_a_json_list(tmp_path: Path) -> None:
    source = tmp_path / "list.json"
    source.write_text('\n[\n  {"a": 1},\n\n  {"a": 2}\n]\n', encoding="utf-8")
    assert list(datafiles.iter_rows(source)) == [(3, {"a": 1}), (5, {"a": 2})]


# -- the command ----------------------------------------------------------------------------


def test_cli_prints_counts_and_writes_outputs(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out, rejected = tmp_path / "out.jsonl", tmp_path / "rejected.jsonl"
    args = [str(source), "--out", str(out), "--rejected", str(rejected)]
    result = CliRunner().invoke(dedup_command, args)
    assert result.exit_code == 0, result.output
    assert "6 rows: kept 4, rejected 2" in result.output
    assert [r["id"] for r in read_jsonl(out)] == KEPT_IDS
    assert len(read_jsonl(rejected)) == 2


def test_cli_quiet_threshold_and_field(tmp_path: Path) -> None:
    rows = [{"text": r["instruction"]} for r in ROWS]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    args = [str(source), "--field", "text", "--threshold", "0.95", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(dedup_command, args)
    assert result.exit_code == 0 and result.output == ""
    assert len(read_jsonl(out)) == 5


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "a"}, {"other": "b"}])
    result = CliRunner().invoke(dedup_command, [str(source), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert result.output == f"error: {source}:2: instruction: missing (expected a string)\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_rejects_out_of_range_threshold(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    args = [str(source), "--threshold", "1.5", "--out", str(tmp_path / "o.jsonl")]
    result = CliRunner().invoke(dedup_command, args)
    assert result.exit_code == 2 and "1.5" in result.output


# -- the real corpus ------------------------------------------------------------------------


def test_real_corpus_keeps_23661_rows(tmp_path: Path) -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here")
    result = dedup_file(CORPUS, out_path=tmp_path / "out.jsonl")
    assert (result.rows, result.kept) == (29_064, 23_661)
