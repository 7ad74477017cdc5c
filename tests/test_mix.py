"""``selfinstruct mix``: caps, temperature shares, quotas, cross-source dedup, every input
format and layout, deterministic files, and bad input refused with exit 2."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.mix import apportion, plan_mixture, shares
from selfinstruct.records import Example, Provenance
from selfinstruct.report.verbs import verb_noun

WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
    "psi", "omega",
]  # fmt: skip
VERBS = ("Write", "Explain", "Classify", "Summarize", "List")


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def write_sources(folder: Path, sizes=(1000, 100, 10)) -> list[str]:
    """Three sources in three formats and layouts: big (JSONL, alpaca), mid (a JSON list,
    messages) and small (Parquet, prompt-completion); every instruction names its source."""
    rng = random.Random(7)
    big, mid, small = sizes
    with (folder / "big.jsonl").open("w") as file:
        for i in range(big):
            row = {"instruction": f"{VERBS[i % 5]} big {i} {words(rng, 6)}", "input": "",
                   "output": words(rng, 5), "is_classification": i % 4 == 0}  # fmt: skip
            file.write(json.dumps(row) + "\n")
    messages = [
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": f"Explain mid {i} {words(rng, 6)}"},
                      {"role": "assistant", "content": words(rng, 4)}]}
        for i in range(mid)
    ]  # fmt: skip
    (folder / "mid.json").write_text(json.dumps(messages), encoding="utf-8")
    table = [{"prompt": f"List small {i} {words(rng, 6)}\n\n", "completion": words(rng, 3)}
             for i in range(small)]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(table), folder / "small.parquet")
    return [str(folder / "big.jsonl"), str(folder / "mid.json"), str(folder / "small.parquet")]


def mix(*args: str):
    return CliRunner().invoke(cli, ["mix", *args])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def source_of(instruction: str) -> str:
    return instruction.split()[1]


def test_cap_gives_200_100_10(tmp_path):
    out = tmp_path / "mix.jsonl"
    result = mix(*write_sources(tmp_path), "--cap", "200", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    counts = Counter(source_of(row["instruction"]) for row in rows)
    assert counts == {"big": 200, "mid": 100, "small": 10}
    assert len({row["instruction"] for row in rows}) == 310  # no row twice
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    taken = {s["name"]: (s["available"], s["taken"], s["repeated"]) for s in manifest["sources"]}
    assert taken == {"big": (1000, 200, 0), "mid": (100, 100, 0), "small": (10, 10, 0)}
    shares_ = {s["name"]: s["share"] for s in manifest["sources"]}
    assert shares_ == {"big": round(200 / 310, 6), "mid": round(100 / 310, 6),
                       "small": round(10 / 310, 6)}  # fmt: skip
    assert manifest["rows"] == 310 and manifest["outputs"] == [str(out)]
    # the layouts were read back: system turns dropped, the prompt stripped
    mids = [row for row in rows if source_of(row["instruction"]) == "mid"]
    assert all(row["input"] == "" and row["output"] for row in mids)
    assert not any(row["instruction"].endswith("\n") for row in rows)
    # the rows are interleaved, not one source after another
    assert len({source_of(row["instruction"]) for row in rows[:20]}) > 1


@pytest.mark.parametrize(("temperature", "total"), [("2", None), ("3", "1000"), ("0.5", "400")])
def test_temperature_gives_the_computed_proportions(tmp_path, temperature, total):
    out = tmp_path / "mix.jsonl"
    args = [*write_sources(tmp_path), "--cap", "200", "--temperature", temperature]
    args += ["--total", total] if total else []
    result = mix(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    capped = [200, 100, 10]
    raw = [m ** (1 / float(temperature)) for m in capped]
    rows_total = int(total) if total else sum(capped)
    expected = [rows_total * r / sum(raw) for r in raw]
    counts = Counter(source_of(row["instruction"]) for row in read_jsonl(out))
    assert sum(counts.values()) == rows_total
    for name, wanted in zip(("big", "mid", "small"), expected, strict=True):
        assert abs(counts[name] - wanted) <= 1, (name, counts[name], wanted)
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    for entry, wanted in zip(manifest["sources"], expected, strict=True):
        # distinct rows while the source has them (the cap bounds the share), then repeats
        assert entry["unique"] == min(entry["taken"], entry["available"])
        assert entry["repeated"] == entry["taken"] - entry["unique"]
        assert abs(entry["target_share"] - wanted / rows_total) < 1e-6


def test_the_same_seed_gives_the_same_file(tmp_path):
    sources = write_sources(tmp_path)
    outputs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        for suffix in (".jsonl", ".parquet"):
            out = tmp_path / f"{name}{suffix}"
            result = mix(*sources, "--cap", "50", "--temperature", "2", "--seed", seed,
                         "--layout", "messages", "--out", str(out))  # fmt: skip
            assert result.exit_code == 0, result.output
            outputs[name + suffix] = out.read_bytes()
    assert outputs["a.jsonl"] == outputs["b.jsonl"]
    assert outputs["a.parquet"] == outputs["b.parquet"]
    assert outputs["a.jsonl"] != outputs["c.jsonl"]  # another seed, another selection
    row = json.loads(outputs["a.jsonl"].splitlines()[0])
    assert [turn["role"] for turn in row["messages"]] == ["user", "assistant"]


def write_run(folder: Path, instructions: int = 12, per: int = 3) -> Path:
    """A run directory: ``per`` examples of each instruction, every third one classification."""
    folder.mkdir(parents=True)
    with (folder / "examples.jsonl").open("w") as file:
        for i in range(instructions):
            for k in range(per):
                example = Example(
                    id=f"i{i:06d}-{k}", instruction_id=f"i{i:06d}",
                    instruction=f"Classify run {i} item" if i % 3 == 0 else f"Write run {i} poem",
                    input=f"input {k}", output=f"out {i}-{k}", is_classification=i % 3 == 0,
                    provenance=Provenance(),
                )  # fmt: skip
                file.write(example.model_dump_json() + "\n")
    return folder


def test_a_run_directory_with_a_kind_quota(tmp_path):
    run = write_run(tmp_path / "runs" / "demo")
    out = tmp_path / "mix.jsonl"
    result = mix(f"mine={run}", "--group-by", "kind", "--quota", "classification=0.2",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    classification = [row for row in rows if row["instruction"].startswith("Classify")]
    assert len(classification) == int(0.2 * 36)  # 12 classification rows available
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    assert manifest["sources"][0]["name"] == "mine" and manifest["sources"][0]["kind"] == "run"
    assert manifest["groups"] == {"generation": 24, "classification": 7}


def test_verb_quota_caps_every_group(tmp_path):
    out = tmp_path / "mix.jsonl"
    sources = write_sources(tmp_path)
    result = mix(sources[0], "--cap", "100", "--group-by", "verb", "--quota", "*=0.15",
                 "--quota", "write=0.05", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    verbs = Counter(verb_noun(row["instruction"]).verb for row in read_jsonl(out))
    assert verbs["write"] == 5
    assert all(count <= 15 for count in verbs.values())
    assert sum(verbs.values()) == 5 + 4 * 15  # five verbs, each at its limit


def test_cross_source_dedup_drops_only_copies_of_earlier_sources(tmp_path):
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl"
    texts = [f"Explain why the {w} {v} is important today" for w, v in
             zip(WORDS[:10], WORDS[10:20], strict=True)]  # fmt: skip
    with first.open("w") as file:
        for text in texts:  # each instruction twice (two instances): both kept
            for k in range(2):
                file.write(json.dumps({"instruction": text, "input": str(k), "output": "o"}) + "\n")
    with second.open("w") as file:
        for text in texts[:4]:  # near-copies of the first source
            file.write(json.dumps({"instruction": text + " now", "output": "o"}) + "\n")
        for i in range(6):
            file.write(json.dumps({"instruction": f"Count {words(random.Random(i), 8)}",
                                   "output": "o"}) + "\n")  # fmt: skip
    out = tmp_path / "mix.jsonl"
    result = mix(str(first), str(second), "--dedup", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    dups = {s["name"]: (s["duplicates"], s["taken"]) for s in manifest["sources"]}
    assert dups == {"first": (0, 20), "second": (4, 6)}
    assert manifest["dedup_threshold"] == 0.7
    without = mix(str(first), str(second), "--out", str(tmp_path / "all.jsonl"))
    assert without.exit_code == 0 and len(read_jsonl(tmp_path / "all.jsonl")) == 30


def test_saved_datasets_in_and_out(tmp_path):
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "saved"
    dataset = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(
            [{"conversations": [{"from": "human", "value": f"Explain hf {i} thing"},
                                {"from": "gpt", "value": "ok"}]} for i in range(8)]),
        "test": datasets.Dataset.from_list(
            [{"conversations": [{"from": "human", "value": f"Explain hf {i} test"},
                                {"from": "gpt", "value": "ok"}]} for i in range(8, 10)]),
    })  # fmt: skip
    dataset.save_to_disk(str(saved))
    sources = write_sources(tmp_path)
    out = tmp_path / "hf-out"
    result = mix(sources[2], f"hub={saved}", "--to", "hf", "--layout", "sharegpt",
                 "--split", "train=0.5,test=0.5", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = datasets.load_from_disk(str(out))
    assert sum(len(split) for split in loaded.values()) == 20
    manifest = json.loads((tmp_path / "hf-out.manifest.json").read_text())
    assert {s["name"]: (s["kind"], s["taken"]) for s in manifest["sources"]} == {
        "small": ("file", 10), "hub": ("hf", 10)
    }
    assert manifest["splits"] == {"train": len(loaded["train"]), "test": len(loaded["test"])}


def test_bad_input_exits_2(tmp_path):
    sources = write_sources(tmp_path, (20, 5, 2))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a b c d", "output": "x"}\n{"text": "no layout"}\n')
    out = str(tmp_path / "m.jsonl")
    cases = [
        ([*sources, "--weight", "nobody=2"], "--weight: no source named 'nobody'"),
        ([sources[0], sources[0]], "two sources are named 'big'"),
        ([str(broken)], f"{broken}:2: expected instruction/output"),
        ([*sources, "--temperature", "2", "--total", "500", "--no-repeat"], "without repeats"),
        ([*sources, "--quota", "x=0.1"], "quotas need --group-by"),
        ([*sources, "--group-by", "kind", "--quota", "x=2"], "share of 'x' must be in [0, 1]"),
        ([str(tmp_path / "missing.jsonl")], "no such file"),
        ([*sources, "--system", "hi"], "--system needs the messages or sharegpt layout"),
    ]  # fmt: skip
    for args, expected in cases:
        result = mix(*args, "--out", out)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, (args, result.output)
    assert not Path(out).exists()


def test_plan_arithmetic():
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(apportion(1001, [0.3, 0.5, 0.2])) == 1001
    assert shares([100, 100], [1.0, 3.0], None) == [0.25, 0.75]
    plan = plan_mixture([1000, 100, 10], cap=200)
    assert plan.quotas == (200, 100, 10) and plan.total == 310
    flat = plan_mixture([1000, 100, 10], temperature=1e9, total=30)
    assert flat.quotas == (10, 10, 10)  # a very high temperature: equal shares
    fitting = plan_mixture([1000, 100, 10], temperature=2, repeat=False)
    assert fitting.quotas[2] == 10  # the smallest source decides the largest total that fits
    assert fitting.quotas == tuple(apportion(fitting.total, fitting.shares)) == (105, 33, 10)
    assert apportion(fitting.total + 1, fitting.shares)[2] == 11  # one more does not fit
