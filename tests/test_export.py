"""``selfinstruct export``: every format, read back with its consumer's own loader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from selfinstruct.cli import SelfInstructGroup
from selfinstruct.cli.data import export, report, stats
from selfinstruct.export import (
    CONTAINERS,
    LAYOUTS,
    PAPER_TEMPLATES_NO_INPUT,
    PAPER_TEMPLATES_WITH_INPUT,
    ExportOptions,
    export_run,
    parse_split,
    prompt_completion,
    user_content,
)
from selfinstruct.export.hub import card_config, dataset_card, push_to_hub, size_category
from selfinstruct.records import (
    Counts,
    Example,
    Instruction,
    Manifest,
    Provenance,
    Rejection,
    SeedTask,
    TeacherCall,
    Usage,
)

datasets = pytest.importorskip("datasets")

HOSTILE = "<script>alert('pwned')</script>"
SEED_TASKS = [
    SeedTask(
        id="seed_a",
        instruction="Translate the sentence into French.",
        instances=[{"input": "Good morning.", "output": "Bonjour."}],
    ),
    SeedTask(
        id="seed_b",
        instruction="Give three tips for staying healthy.",
        instances=[{"input": "", "output": "Sleep, eat well, move."}],
    ),
    SeedTask(
        id="seed_c",
        instruction="Classify the sentiment of the review.",
        instances=[
            {"input": "I loved it.", "output": "Positive"},
            {"input": "Awful.", "output": "Negative"},
        ],
        is_classification=True,
    ),
]
INSTRUCTIONS = [
    "Write a short poem about the sea.",
    "Summarize the paragraph in one sentence.",
    "Classify the animal as a mammal or a bird.",
    "Explain why the sky is blue.",
    "Generate a list of five names for a bakery.",
    "What is the capital of Peru?",
    "Rewrite the sentence in the passive voice.",
    "Suggest a title for the blog post.",
]


def cli_group() -> SelfInstructGroup:
    """The data commands in a group like the main one (errors -> one line and exit code)."""
    return SelfInstructGroup(name="selfinstruct", commands=[export, report, stats])


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli_group(), [str(arg) for arg in args], env=env)


def write_rows(path: Path, rows: list) -> None:
    path.write_text("".join(row.model_dump_json() + "\n" for row in rows), encoding="utf-8")


def make_run(root: Path, *, seeds: bool = True) -> Path:
    """A small run directory, written row by row with the pydantic models.

    8 instructions; instruction k has 1 + k % 3 examples (15 in all); example 0 of
    instruction 1 has an empty input; one output carries a <script> tag.
    """
    run = root / "run"
    run.mkdir(parents=True)
    seed_file = root / "seeds.jsonl"
    write_rows(seed_file, SEED_TASKS)
    instructions, examples = [], []
    for k, text in enumerate(INSTRUCTIONS):
        iid = f"i{k:06d}"
        instructions.append(
            Instruction(
                id=iid, instruction=text, request=k // 3, model="gpt-4o-mini", max_rouge=0.3
            )
        )
        for j in range(1 + k % 3):
            output = HOSTILE if (k, j) == (2, 0) else f"Answer {k}.{j} with several words here."
            examples.append(
                Example(
                    id=f"{iid}-{j}",
                    instruction_id=iid,
                    instruction=text,
                    input="" if (k, j) == (1, 0) else f"Input {k}.{j} for the task.",
                    output=output,
                    is_classification=k == 2,
                    provenance=Provenance(models={"instructions": "gpt-4o-mini"}),
                )
            )
    rejections = [
        Rejection(stage="instructions", reason="rouge_similar", candidate="Write a poem.",
                  request=0, details={"score": 0.8, "most_similar": "Write a short poem."}),
        Rejection(stage="instructions", reason="too_short", candidate="Do it.", request=1),
        Rejection(stage="outputs", reason="empty_output", candidate=f"{HOSTILE} -> ",
                  instruction_id="i000003"),
    ]  # fmt: skip
    calls = [
        TeacherCall(stage=stage, model=model, latency_s=0.5,
                    usage=Usage(prompt_tokens=1000, completion_tokens=200))
        for stage in ("instructions", "classify", "inputs", "outputs")
        for model in ("gpt-4o-mini", "my-local-model")
    ]  # fmt: skip
    write_rows(run / "instructions.jsonl", instructions)
    write_rows(run / "examples.jsonl", examples)
    write_rows(run / "rejected.jsonl", rejections)
    write_rows(run / "requests.jsonl", calls)
    config = {
        "seeds": str(seed_file if seeds else root / "gone.jsonl"),
        "out": str(run),
        "teacher": {"base_url": ["http://user:secret@10.0.0.5:8000/v1"], "model": "gpt-4o-mini"},
        "filters": {"rouge_threshold": 0.7, "min_words": 3},
    }
    manifest = Manifest(
        tool_version="0.1.0",
        created_at="2025-01-01T00:00:00+00:00",
        updated_at="2025-01-01T00:10:00+00:00",
        status="complete",
        config=config,
        fingerprint={},
        package_versions={},
        counts=Counts(
            instructions_kept=8,
            instructions_done=8,
            examples=15,
            rejected=3,
            rejected_by_reason={"instructions/rouge_similar": 1},
        ),
        usage={},
        timings_s={},
    )
    (run / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def load_json(path: Path, cache: Path):
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


# -- layouts ------------------------------------------------------------------------------


def test_user_content_and_prompt_completion_layouts():
    assert user_content("Do this.", "the input") == "Do this.\n\nthe input"
    assert user_content(" Do this. ", "  ") == "Do this."
    assert prompt_completion("Do this.", "x", "y") == {
        "prompt": "Do this.\n\nx\n\n",
        "completion": "y",
    }
    assert prompt_completion("Do this.", "", "y", eos="<|endoftext|>") == {
        "prompt": "Do this.\n\n",
        "completion": "y<|endoftext|>",
    }
    template = ("Task: {instruction}\nInput: {input}\nOutput:", " {output}")
    assert prompt_completion("Do.", "x", "y", template=template)["prompt"] == (
        "Task: Do.\nInput: x\nOutput:"
    )


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_alpaca_read_back_by_datasets(run, tmp_path, suffix):
    out = tmp_path / f"alpaca{suffix}"
    result = invoke("export", run, "--layout", "alpaca", "--out", out)
    assert result.exit_code == 0, result.output
    assert "wrote 15 rows" in result.output
    text = out.read_text()
    assert text.lstrip().startswith("[") == (suffix == ".json")
    loaded = load_json(out, tmp_path / "cache")
    assert loaded.num_rows == 15
    assert loaded.column_names == ["instruction", "input", "output"]
    assert loaded[0]["instruction"] == INSTRUCTIONS[0]
    assert sum(1 for row in loaded if row["input"] == "") == 1
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_messages_with_system_prompt(run, tmp_path):
    out = tmp_path / "m.jsonl"
    result = invoke("export", run, "--layout", "messages", "--out", out, "--system", "Be brief.")
    assert result.exit_code == 0, result.output
    loaded = load_json(out, tmp_path / "cache")
    assert loaded.num_rows == 15 and loaded.column_names == ["messages"]
    roles = [[turn["role"] for turn in row["messages"]] for row in loaded]
    assert all(r == ["system", "user", "assistant"] for r in roles)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["messages"][1]["content"] == f"{INSTRUCTIONS[0]}\n\nInput 0.0 for the task."
    assert rows[1]["messages"][1]["content"] == INSTRUCTIONS[1]  # empty input: instruction only


def test_messages_without_system_and_sharegpt(run, tmp_path):
    out = tmp_path / "m.json"
    assert invoke("export", run, "--layout", "messages", "--out", out).exit_code == 0
    rows = json.loads(out.read_text())
    assert [turn["role"] for turn in rows[0]["messages"]] == ["user", "assistant"]

    out = tmp_path / "s.jsonl"
    result = invoke("export", run, "--layout", "sharegpt", "--out", out, "--system", "Hi.")
    assert result.exit_code == 0, result.output
    loaded = load_json(out, tmp_path / "cache")
    assert loaded.column_names == ["conversations"]
    assert [t["from"] for t in loaded[0]["conversations"]] == ["system", "human", "gpt"]
    assert loaded[0]["conversations"][2]["value"] == "Answer 0.0 with several words here."


def test_prompt_completion_fixed_and_paper_templates(run, tmp_path):
    out = tmp_path / "pc.jsonl"
    assert invoke("export", run, "--layout", "prompt-completion", "--out", out).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {
        "prompt": f"{INSTRUCTIONS[0]}\n\nInput 0.0 for the task.\n\n",
        "completion": "Answer 0.0 with several words here.",
    }
    assert rows[1]["prompt"] == f"{INSTRUCTIONS[1]}\n\n"

    args = ["--layout", "prompt-completion", "--paper-templates", "--eos", "<|endoftext|>"]
    first, second = tmp_path / "p1.jsonl", tmp_path / "p2.jsonl"
    assert invoke("export", run, *args, "--out", first).exit_code == 0
    assert invoke("export", run, *args, "--out", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()  # the template choice is seeded
    plain = [json.loads(line) for line in out.read_text().splitlines()]
    used = set()
    for fixed, row in zip(plain, map(json.loads, first.read_text().splitlines()), strict=True):
        assert row["completion"].endswith("<|endoftext|>")
        instruction, _, rest = fixed["prompt"].partition("\n\n")
        templates = PAPER_TEMPLATES_WITH_INPUT if rest.strip() else PAPER_TEMPLATES_NO_INPUT
        rendered = [t[0].format(instruction=instruction, input=rest.strip()) for t in templates]
        assert row["prompt"] in rendered
        used.add(rendered.index(row["prompt"]))
    assert len(used) > 1


def test_parquet_read_by_pandas(run, tmp_path):
    out = tmp_path / "d.parquet"
    result = invoke("export", run, "--to", "parquet", "--out", out, "--layout", "messages")
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 15 and list(frame.columns) == ["messages"]
    assert frame.iloc[0]["messages"][0]["role"] == "user"


def test_hf_save_to_disk_and_split(run, tmp_path):
    out = tmp_path / "hf"
    result = invoke("export", run, "--to", "hf", "--out", out)
    assert result.exit_code == 0, result.output
    loaded = datasets.load_from_disk(str(out))
    assert isinstance(loaded, datasets.Dataset) and loaded.num_rows == 15

    # exporting again over it, now split: a DatasetDict with disjoint instructions
    args = ["--to", "hf", "--out", out, "--split", "train=0.75,test=0.25", "--seed", "3"]
    result = invoke("export", run, *args)
    assert result.exit_code == 0, result.output
    loaded = datasets.load_from_disk(str(out))
    assert isinstance(loaded, datasets.DatasetDict) and set(loaded) == {"train", "test"}
    train = {row["instruction"] for row in loaded["train"]}
    test = {row["instruction"] for row in loaded["test"]}
    assert train and test and not train & test
    assert loaded["train"].num_rows + loaded["test"].num_rows == 15
    assert len(train) == 6 and len(test) == 2  # fractions are of instructions
    card = (out / "README.md").read_text()
    assert card.startswith("---\n")


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        (["--format", "alpaca"], ["--layout", "alpaca", "--to", "json"], "a.json"),
        (["--format", "messages", "--system", "S"], ["--layout", "messages", "--system", "S"],
         "m.jsonl"),
        (["--format", "parquet", "--layout", "sharegpt"], ["--layout", "sharegpt"], "s.parquet"),
        (["--format", "prompt-completion"], ["--layout", "prompt-completion", "--to", "jsonl"],
         "p.jsonl"),
    ],
)  # fmt: skip
def test_deprecated_format_is_an_alias_of_layout_and_to(run, tmp_path, old, new, name):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    before = invoke("export", run, *old, "--out", tmp_path / "old" / name)
    after = invoke("export", run, *new, "--out", tmp_path / "new" / name)
    assert before.exit_code == 0 and after.exit_code == 0, (before.output, after.output)
    assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    assert before.stderr.count("note: --format is deprecated; use --layout") == 1
    assert "deprecated" not in after.stderr


def test_layouts_and_containers_are_tables(run, tmp_path):
    expected = {
        "alpaca": ["instruction", "input", "output"],
        "messages": ["messages"],
        "sharegpt": ["conversations"],
        "prompt-completion": ["prompt", "completion"],
    }
    assert list(LAYOUTS) == [*expected, "preference", "ranked"]  # those two: test_judge.py
    for layout, fields in expected.items():
        result = export_run(run, ExportOptions(layout=layout))  # no --out: nothing written
        assert [list(row) for row in result.tables[""]] == [fields] * 15 and not result.paths
    assert set(CONTAINERS) == {"json", "jsonl", "parquet", "hf"}
    out = tmp_path / "rows.parquet"  # the container follows the suffix when --to is not given
    result = invoke("export", run, "--layout", "messages", "--out", out)
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 15
    text = tmp_path / "rows.txt"
    assert invoke("export", run, "--to", "jsonl", "--out", text).exit_code == 0
    assert len(text.read_text().splitlines()) == 15


def test_hf_refuses_a_directory_that_is_not_a_dataset(run, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = invoke("export", run, "--to", "hf", "--out", out)
    assert result.exit_code == 2
    assert "not a saved dataset" in result.output
    assert (out / "notes.txt").read_text() == "keep me"


# -- selection: split, shuffle, cap, seeds --------------------------------------------------


def test_split_files_are_disjoint_deterministic_and_complete(run, tmp_path):
    out = tmp_path / "data.jsonl"
    args = ["export", run, "--layout", "alpaca", "--out", out, "--split", "train=0.7,test=0.3"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    train, test = tmp_path / "data-train.jsonl", tmp_path / "data-test.jsonl"
    assert not out.exists()
    rows = {name: [json.loads(x) for x in p.read_text().splitlines()] for name, p in
            (("train", train), ("test", test))}  # fmt: skip
    instructions = {name: {r["instruction"] for r in part} for name, part in rows.items()}
    assert not instructions["train"] & instructions["test"]
    assert len(rows["train"]) + len(rows["test"]) == 15
    before = train.read_bytes(), test.read_bytes()
    assert invoke(*args).exit_code == 0
    assert (train.read_bytes(), test.read_bytes()) == before
    other = [str(a) for a in args] + ["--seed", "7"]
    assert invoke(*other).exit_code == 0  # another seed: the same sizes, maybe other rows
    assert len(train.read_text().splitlines()) + len(test.read_text().splitlines()) == 15


def test_shuffle_and_max_per_instruction(run, tmp_path):
    plain, mixed = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert invoke("export", run, "--layout", "alpaca", "--out", plain).exit_code == 0
    assert invoke("export", run, "--layout", "alpaca", "--out", mixed, "--shuffle").exit_code == 0
    a, b = plain.read_text().splitlines(), mixed.read_text().splitlines()
    assert sorted(a) == sorted(b) and a != b

    capped = tmp_path / "c.jsonl"
    args = ["--layout", "alpaca", "--out", capped, "--max-per-instruction", "1"]
    assert invoke("export", run, *args).exit_code == 0
    rows = [json.loads(line) for line in capped.read_text().splitlines()]
    assert [row["instruction"] for row in rows] == INSTRUCTIONS


def test_include_seeds(run, tmp_path):
    out = tmp_path / "s.jsonl"
    result = invoke("export", run, "--layout", "alpaca", "--out", out, "--include-seeds")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 15 + 4
    assert {"instruction": "Translate the sentence into French.", "input": "Good morning.",
            "output": "Bonjour."} in rows  # fmt: skip


def test_split_needs_enough_instructions_and_valid_fractions(run, tmp_path):
    assert parse_split("train=0.9, validation=0.05,test=0.05") == {
        "train": 0.9,
        "validation": 0.05,
        "test": 0.05,
    }
    for bad in ("train=0.9", "train=0.5,test=x", "train", "a b=1", "train=0.5,train=0.5"):
        result = invoke("export", run, "--layout", "alpaca", "--out", tmp_path / "x.json",
                        "--split", bad)  # fmt: skip
        assert result.exit_code == 2, (bad, result.output)
        assert "--split" in result.output
    many = ",".join(f"s{i}=0.1" for i in range(10))
    result = invoke(
        "export", run, "--layout", "alpaca", "--out", tmp_path / "x.json", "--split", many
    )
    assert result.exit_code == 2 and "cannot fill 10 splits" in result.output


# -- errors -------------------------------------------------------------------------------


def test_corrupt_example_row_names_file_and_line(run, tmp_path):
    path = run / "examples.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"output"', '"outptu"')
    path.write_text("\n".join(lines) + "\n")
    result = invoke("export", run, "--layout", "alpaca", "--out", tmp_path / "x.jsonl")
    assert result.exit_code == 2
    assert f"{path}:3:" in result.output and "corrupt row" in result.output
    assert "Traceback" not in result.output


def test_torn_last_line_is_skipped_with_a_note(run, tmp_path):
    path = run / "examples.jsonl"
    path.write_text(path.read_text() + '{"id": "i000009-0", "instr')
    result = invoke("export", run, "--layout", "alpaca", "--out", tmp_path / "x.jsonl")
    assert result.exit_code == 0, result.output
    assert "incomplete last line" in result.output and "wrote 15 rows" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layout", "alpaca", "--out", "x.txt"], "must end in .json"),
        (["--format", "alpaca", "--out", "x.parquet"], "must end in .json"),
        (["--to", "jsonl", "--out", "x.json"], "does not match"),
        (["--format", "alpaca", "--to", "json", "--out", "x.json"], "cannot be combined"),
        (["--layout", "alpaca"], "give --out"),
        (["--layout", "alpaca", "--out", "x.json", "--system", "S"], "--system needs"),
        (["--layout", "messages", "--out", "x.json", "--eos", "E"], "prompt-completion"),
        (["--format", "alpaca", "--out", "x.json", "--layout", "messages"], "--layout is for"),
        (["--layout", "alpaca", "--out", "x.json", "--private"], "--private needs"),
        (["--to", "hf", "--push-to-hub", "me/data"], "HF_TOKEN"),
    ],
)
def test_bad_options(run, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = invoke("export", run, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_not_a_run_directory(tmp_path):
    result = invoke("export", tmp_path / "nope", "--layout", "alpaca", "--out", tmp_path / "x.json")
    assert result.exit_code == 2 and "no such run directory" in result.output
    result = invoke("export", tmp_path, "--layout", "alpaca", "--out", tmp_path / "x.json")
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_missing_seed_file_for_include_seeds(tmp_path):
    run = make_run(tmp_path, seeds=False)
    result = invoke("export", run, "--layout", "alpaca", "--out", tmp_path / "x.json",
                    "--include-seeds")  # fmt: skip
    assert result.exit_code == 2 and "gone.jsonl: no such file" in result.output


def test_without_datasets_installed(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    result = invoke("export", run, "--to", "hf", "--out", tmp_path / "hf")
    assert result.exit_code == 2
    assert "pip install 'selfinstruct[hf]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- the Hub ------------------------------------------------------------------------------


def test_dataset_card(run):
    options = ExportOptions(to="hf", split={"train": 0.75, "test": 0.25})
    result = export_run(run, options)
    card = dataset_card(run, result, options, repo_id="me/tiny", license="apache-2.0")
    head, body = card.split("---\n", 2)[1:]
    meta = yaml.safe_load(head)
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*"},
                {"split": "test", "path": "data/test-*"},
            ],
        }
    ]
    assert "# tiny" in body
    assert "| instructions | `gpt-4o-mini` | 1 | 1,000 | 200 |" in body
    assert "| rows in `train` | " in body and "| rows in `test` | " in body
    assert "ROUGE-L novelty threshold" in body and "0.7" in body
    assert "secret" not in card  # user:password@ taken out of URLs
    assert str(run) not in card  # local paths cut to file names
    assert '"seeds": "seeds.jsonl"' in card
    assert "Wang et al., 2023" in card


def test_card_helpers():
    assert size_category(999) == "n<1K" and size_category(1000) == "1K<n<10K"
    assert card_config({"a": "/home/me/x.jsonl", "b": ["https://u:p@h/v1"], "c": 3}) == {
        "a": "x.jsonl",
        "b": ["https://h/v1"],
        "c": 3,
    }


def test_push_to_hub_pushes_the_dataset_and_card(run, tmp_path, monkeypatch):
    pushed = {}

    def fake_push(dataset, card, repo_id, *, private, token):
        pushed.update(dataset=dataset, card=card, repo_id=repo_id, private=private, token=token)
        return f"https://huggingface.co/datasets/{repo_id}"

    monkeypatch.setattr("selfinstruct.cli.data.push_to_hub", fake_push)
    args = ["--layout", "messages", "--split", "train=0.75,test=0.25", "--push-to-hub", "me/x",
            "--private"]  # fmt: skip
    result = invoke("export", run, *args, env={"HF_TOKEN": "hf_test"})
    assert result.exit_code == 0, result.output
    assert "pushed 15 rows to https://huggingface.co/datasets/me/x" in result.output
    assert pushed["repo_id"] == "me/x" and pushed["private"] and pushed["token"] == "hf_test"
    dataset = pushed["dataset"]
    assert isinstance(dataset, datasets.DatasetDict)
    assert dataset["train"].column_names == ["messages"]
    assert dataset["train"].num_rows + dataset["test"].num_rows == 15
    assert "data/test-*" in pushed["card"]


def test_push_to_hub_is_a_thin_call(monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token):
            calls.append(("api", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs))
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_file(self, **kwargs):
            calls.append(("upload", kwargs["path_in_repo"], kwargs["path_or_fileobj"]))

    class FakeDataset:
        def push_to_hub(self, repo_id, **kwargs):
            calls.append(("push", repo_id, kwargs))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    url = push_to_hub(FakeDataset(), "card text", "me/x", private=True, token="t")
    assert url == "https://huggingface.co/datasets/me/x"
    assert calls == [
        ("api", "t"),
        ("create", "me/x", {"repo_type": "dataset", "private": True, "exist_ok": True}),
        ("upload", "README.md", b"card text"),
        ("push", "me/x", {"private": True, "token": "t"}),
    ]
