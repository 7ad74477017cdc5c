"""Evol-Instruct, paraphrase expansion and inversion in a whole run over real HTTP, and a run
with them killed at random instants and resumed."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.seeds import load_seeds

from ..conftest import SEEDS
from .helpers import max_pairwise_rouge, read_run
from .kill_harness import soak

AUGMENT = [
    "--set", "stages.evolve.enabled=true", "--set", "stages.evolve.rounds=2",
    "--set", "stages.paraphrase.enabled=true", "--set", "stages.paraphrase.k=3",
    "--set", "stages.invert.enabled=true",
]  # fmt: skip


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_evolve_paraphrase_and_invert_rows_with_their_provenance(tmp_path, scripted_server, api):
    out = tmp_path / "run"
    args = [
        "generate", "--base-url", scripted_server.base_url, "--model", "X", "--api", api,
        "-n", "40", "--out", str(out), "--quiet", *AUGMENT,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = read_run(out)
    instructions = {row.id: row for row in run["instructions"]}
    examples = run["examples"]

    # the target counts instructions with examples, of every origin, exactly
    assert len({row.instruction_id for row in examples}) == 40
    assert len({row.id for row in examples}) == len(examples)

    # evolved instructions: parent, round, operation; evolved again in round 2
    evolved = [row for row in instructions.values() if row.origin == "evolve"]
    assert evolved and {row.round for row in evolved} == {1, 2}
    for row in evolved:
        parent = instructions[row.parent]
        assert parent.origin in ("self-instruct", "evolve") and parent.round == row.round - 1
        assert row.operation in ("constraints", "deepen", "concretize", "reasoning",
                                 "complicate_input", "breadth")  # fmt: skip
        assert row.call == f"{parent.id}.evolve"
    by_instruction = defaultdict(list)
    for example in examples:
        by_instruction[example.instruction_id].append(example)
    assert any(by_instruction[row.id] for row in evolved)  # expanded through stages 2-3
    for row in evolved:  # their examples name the call that wrote the instruction
        for example in by_instruction[row.id]:
            assert example.provenance.calls[0] == row.call
            assert example.provenance.prompts["evolve"] == run["manifest"].fingerprint[
                "prompt:evolve"][:16]  # fmt: skip
    origins = {e.origin for row in evolved for e in by_instruction[row.id]}
    assert origins == {"evolve", "paraphrase"}  # an evolved task's paraphrases are its own

    # inverted instructions: one example, the parent's instance turned around, same group
    inverted = [row for row in instructions.values() if row.origin == "invert"]
    assert inverted
    for row in inverted:
        (example,) = by_instruction[row.id]
        assert example.origin == "invert" and example.group == row.parent
        parents = [e for e in by_instruction[row.parent] if e.origin != "paraphrase"]
        assert (example.output, example.input) in {(e.input, e.output) for e in parents}
        assert example.provenance.calls == [f"{row.parent}.invert"]

    # paraphrases: examples under the parent's id and group, sharing the parent's instances
    paraphrases = [e for e in examples if e.origin == "paraphrase"]
    assert paraphrases
    groups: dict[str, set[str]] = defaultdict(set)
    for example in paraphrases:
        parent = instructions[example.instruction_id]
        assert example.group == parent.id and example.instruction != parent.instruction
        own = {(e.input, e.output) for e in by_instruction[parent.id] if e.origin != "paraphrase"}
        assert (example.input, example.output) in own
        assert example.provenance.calls[-1] == f"{parent.id}.paraphrase"
        groups[parent.id].add(example.instruction)
    for parent_id, texts in groups.items():  # the loose threshold, within each group
        assert max_pairwise_rouge([instructions[parent_id].instruction, *texts]) <= 0.9

    # the novelty filter over every instruction, evolved and inverted ones included, by the
    # reference rouge_score package
    seeds = [task.instruction for task in load_seeds(SEEDS)]
    assert max_pairwise_rouge(seeds + [row.instruction for row in instructions.values()]) <= 0.7

    # the rules and filters left their reasons (each rule alone: test_augment.py); which bad
    # replies the scripted teacher draws depends on the prompts, so only coverage is asserted
    reasons = Counter(f"{row.stage}/{row.reason}" for row in run["rejected"])
    evolve_reasons = {key.split("/")[1] for key in reasons if key.startswith("evolve/")}
    assert len(evolve_reasons) >= 3, reasons
    assert evolve_reasons <= {
        "refusal", "copies_prompt", "no_information_gain", "too_short", "rouge_similar",
    }, reasons  # fmt: skip
    assert reasons["paraphrase/rouge_similar"] > 0, reasons
    assert sum(n for key, n in reasons.items() if key.startswith("invert/")) > 0, reasons
    assert run["manifest"].fingerprint["prompt:evolve"]
    by_origin = Counter(row.origin for row in instructions.values())
    assert run["manifest"].counts.instructions_by_origin == dict(by_origin)


def test_a_run_with_augmentation_killed_at_random_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "run"
    # a target and a server latency such that six kills (each within 2 s of a start, start-up
    # included) come before the run can finish (at 30, and later at 80 once the client got
    # faster, the sixth run sometimes finished first)
    result = soak(kills=6, target=80, out=out, seed=5, extra=AUGMENT, latency_s=0.1)
    assert result.ok, f"{result.summary()} {result.problems}"
    run = read_run(out)
    instructions = run["instructions"]
    children = Counter((row.parent, row.origin) for row in instructions if row.parent)
    assert children and max(children.values()) == 1  # never derived twice from one parent
    with_examples = {row.instruction_id for row in run["examples"]}
    for row in instructions:
        if row.origin == "invert":
            assert row.id in with_examples  # its example, rebuilt if a kill came in between
    counted = Counter(json.loads(line)["id"] for line in (out / "examples.jsonl").open())
    assert max(counted.values()) == 1
