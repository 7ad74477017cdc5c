"""Hostile inputs: each gives one clear line (file:line: field: problem), exit code 2, no
traceback, and nothing written to the output directory.

``python -m tests.test_bad_inputs`` prints the table in docs/bad-inputs.md from these cases.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.cli import cli
from selfinstruct.config import build_config
from selfinstruct.errors import InputError

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing listens: a case that got past validation fails
GOOD_ROW = '{"instruction": "Name three primary colours.", "output": "Red, yellow, blue."}'


def seed_rows(count: int) -> str:
    return "\n".join(
        json.dumps({"instruction": f"Task number {i} about topic {i * 7}.", "output": str(i)})
        for i in range(count)
    )


@dataclass(frozen=True)
class Case:
    name: str
    expected: str  # a substring of the one-line message
    setup: Callable[[Path], list[str]]  # writes files under the dir, returns extra CLI args


def seeds_file(content: str | bytes, name: str = "seeds.jsonl") -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return ["--seeds", str(path)]

    return setup


def config_file(content: str, suffix: str = ".yaml") -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = root / f"config{suffix}"
        path.write_text(content, encoding="utf-8")
        return ["--config", str(path)]

    return setup


def prompt_file(content: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = root / "classify.txt"
        path.write_text(content, encoding="utf-8")
        return ["--set", f"stages.classify.prompt={path}"]

    return setup


def huge_line(root: Path) -> list[str]:
    path = root / "seeds.jsonl"
    with path.open("w") as handle:
        handle.write('{"instruction": "' + "x" * 100_000_000)  # 100 MB, never closed
    return ["--seeds", str(path)]


def price_file(content: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = root / "prices.yaml"
        path.write_text(content, encoding="utf-8")
        return ["--prices", str(path)]

    return setup


def out_is_a_file(root: Path) -> list[str]:
    (root / "taken").write_text("not a directory")
    return ["--out", str(root / "taken")]


CASES = [
    Case("invalid JSON", ":2: invalid JSON", seeds_file(GOOD_ROW + "\n{oops\n")),
    Case(
        "wrong type",
        ":1: instruction: Input should be a valid string",
        seeds_file('{"instruction": 42, "output": "x"}\n'),
    ),
    Case("missing field", ":1: output: missing field", seeds_file('{"instruction": "a b c d"}\n')),
    Case(
        "unknown field",
        "unknown field(s): answer",
        seeds_file('{"instruction": "a b c d", "answer": "x"}\n'),
    ),
    Case("empty file", "empty file", seeds_file("")),
    Case("100 MB single line", ":1: invalid JSON (Unterminated string", huge_line),
    Case(
        "non-UTF-8 bytes",
        ":2: not valid UTF-8 (byte 0xff",
        seeds_file(GOOD_ROW.encode() + b'\n{"instruction": "\xff"}\n'),
    ),
    Case(
        "duplicate ids",
        ":2: id: duplicate id 'a' (first at line 1)",
        seeds_file(
            '{"id": "a", "instruction": "p q r s", "instances": [{"output": "o"}]}\n'
            '{"id": "a", "instruction": "w x y z", "instances": [{"output": "o"}]}\n'
        ),
    ),
    Case(
        "empty instruction",
        ":1: instruction: Value error, must not be empty",
        seeds_file('{"instruction": "  ", "output": "x"}\n'),
    ),
    Case("JSON list of non-objects", ":1: expected a JSON object, got int", seeds_file("[1, 2]")),
    Case(
        "seed set too small",
        "has 3 tasks but each request shows 6 seed demonstrations",
        seeds_file(seed_rows(3)),
    ),
    Case(
        "unknown prompt placeholder",
        "unknown placeholder {{ task }}",
        prompt_file("Task: {{ task }}\nIs it classification?"),
    ),
    Case("prompt syntax error", "template syntax error", prompt_file("{% for x in demos %}")),
    Case(
        "missing prompt file",
        "no such prompt file",
        lambda root: ["--set", f"stages.classify.prompt={root / 'nope.txt'}"],
    ),
    Case(
        "config: invalid YAML",
        ":2: invalid YAML: mapping values are not allowed",
        config_file("a: 1\nb: c: d\n"),
    ),
    Case(
        "config: unknown field",
        "teacher.modle: unknown field",
        config_file("teacher:\n  modle: x\n"),
    ),
    Case(
        "config: wrong type",
        "num_instructions: Input should be a valid integer",
        config_file("num_instructions: many\n"),
    ),
    Case(
        "config: out of range",
        "filters.rouge_threshold: Input should be less than or equal to 1",
        config_file("filters:\n  rouge_threshold: 7\n"),
    ),
    Case("config: invalid TOML", "invalid TOML", config_file("a = [", suffix=".toml")),
    Case(
        "prices: misspelt field",
        "prices.yaml: models.m.input: missing field (and 1 more problem)",
        price_file("models:\n  m: {inptu: 1, output: 2}\n"),
    ),
    Case(
        "prices: negative price",
        "models.m.output: Input should be greater than or equal to 0 (got -2)",
        price_file("models:\n  m: {input: 1, output: -2}\n"),
    ),
    Case("--set without =", "--set expects KEY=VALUE", lambda root: ["--set", "seed"]),
    Case("output dir is a file", "exists and is not a directory", out_is_a_file),
    Case(
        "output dir not writable",
        "--out: cannot write here",
        lambda root: ["--out", "/sys/selfinstruct-run"],
    ),
    Case("missing seed file", "no such file", lambda root: ["--seeds", str(root / "nope.jsonl")]),
]


def run_case(case: Case, root: Path) -> tuple[int, str, Path]:
    out = root / "run"
    args = ["generate", "--base-url", UNREACHABLE, "--out", str(out), "-q", *case.setup(root)]
    if "--out" in args[5:]:
        out = Path(args[args.index("--out", 5) + 1])
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output, out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_clear_line_exit_2_nothing_written(tmp_path, case):
    code, output, out = run_case(case, tmp_path)
    assert code == 2, output
    assert case.expected in output, output
    assert output.startswith("error: ") and output.count("\n") == 1, output
    assert "Traceback" not in output
    if out.is_dir():
        assert not any(out.iterdir()), "nothing may be written for a bad input"
    elif out.name == "run":
        assert not out.exists()


def test_a_byte_order_mark_is_accepted(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\ufeff" + seed_rows(8), encoding="utf-8")
    from selfinstruct.seeds import load_seeds

    assert len(load_seeds(seeds)) == 8


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_fuzzed_config_files_give_input_errors_or_a_valid_config(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        build_config(path, environ={})
    except InputError as exc:
        assert str(exc).startswith(str(path))


def test_the_console_script_keeps_its_exit_code_and_output_when_it_skips_teardown(tmp_path):
    """``selfinstruct`` as a process (``main``, which freezes the collector on the way out):
    bad input still exits 2 with its one line on stderr, ``--help`` 0 with all of stdout."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "selfinstruct", "generate"]
    bad = subprocess.run(
        [*command, "--seeds", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "no such file" in bad.stderr and "nope.jsonl" in bad.stderr
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    assert "--max-concurrency" in helped.stdout
    assert helped.stdout.rstrip().endswith("Show this message and exit.")  # all of it, flushed


def markdown_table() -> str:
    rows = ["| bad input | what `selfinstruct generate` prints (exit code 2) |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for number, case in enumerate(CASES):
            root = Path(tmp) / str(number)
            root.mkdir()
            _, output, _ = run_case(case, root)
            message = output.strip().replace(str(root) + "/", "").replace("|", "\\|")
            rows.append(f"| {case.name} | `{message}` |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
