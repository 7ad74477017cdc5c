"""Augmentation's parts: the config sections, the derivation stages' requests and parsing,
the elimination rules, the paraphrase group check, the driver's writes (a resume included),
and how export splits and the report treat derived rows."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from selfinstruct.config import build_config
from selfinstruct.derive import Derivations
from selfinstruct.errors import InputError
from selfinstruct.export.rows import collect_rows, split_rows
from selfinstruct.filters.derivation import ParaphraseGroup, elimination_drop
from selfinstruct.filters.instruction_judge import InstructionJudge
from selfinstruct.pipeline import Pipeline
from selfinstruct.records import Example, Instance, Instruction, Provenance
from selfinstruct.report.html import headline
from selfinstruct.report.numbers import build_report, stage_rows
from selfinstruct.run.store import RunStore
from selfinstruct.stages.base import Draft, Job
from selfinstruct.stages.derived import Derived, read_instruction
from selfinstruct.teachers.base import Completion

ALL_ON = {
    "stages.evolve.enabled": True,
    "stages.paraphrase.enabled": True,
    "stages.invert.enabled": True,
}


def config(**overrides):
    values = {"teacher.base_url": "http://127.0.0.1:9/v1", "teacher.model": "X"}
    return build_config(overrides={**values, **overrides}, environ={})


def stages(tmp_path: Path, api: str = "chat", **overrides):
    return Pipeline(config(**{"teacher.api": api, **overrides}), tmp_path / "unused").stages


def job(text: str, *, ident: str = "i000000", origin="self-instruct", round_=0, drafts=()):
    row = Instruction(
        id=ident, instruction=text, request=0, model="X", max_rouge=0.0, origin=origin,
        round=round_, call="q0",
    )  # fmt: skip
    return Job(instruction=row, rng=random.Random(0), drafts=list(drafts))


# -- config and the sequence ------------------------------------------------------------------


def test_augmentation_is_off_by_default_and_adds_nothing_to_a_run(tmp_path):
    built = stages(tmp_path)
    assert built.names == ["instructions", "classify", "inputs", "outputs"]
    assert not {"evolve", "paraphrase", "invert"} & set(built.templates)
    on = stages(tmp_path, **ALL_ON)
    assert on.names[-3:] == ["evolve", "paraphrase", "invert"]
    assert {"evolve", "paraphrase", "invert"} <= set(on.templates)


def test_bad_augmentation_settings_are_input_errors():
    with pytest.raises(InputError, match="operations"):
        config(**{"stages.evolve.operations": ["deepen", "shorten"]})
    with pytest.raises(InputError, match="rounds"):
        config(**{"stages.evolve.rounds": 0})
    with pytest.raises(InputError, match="rouge_threshold"):
        config(**{"stages.paraphrase.rouge_threshold": 1.5})


# -- the stages inside a job ------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_evolve_asks_once_per_round_with_one_operation_per_instruction(tmp_path, api):
    built = stages(tmp_path, api, **ALL_ON, **{"stages.evolve.rounds": 2})
    evolve = next(stage for stage in built.sequence if stage.name == "evolve")
    answered = [Draft(input="", output="An answer.")]
    first = job("Explain how tides work.", drafts=answered)
    (request,) = evolve.requests(first)
    prompt = request.prompt or request.messages[-1].content
    assert "#Given Prompt#: Explain how tides work." in prompt
    operation = evolve.operation(first)
    assert operation == evolve.operation(job("Explain how tides work.", drafts=answered))
    assert ("Prompt Creator" in prompt or "Creator" in prompt) == (operation == "breadth")
    assert evolve.requests(job("x y z w", round_=1, origin="evolve", drafts=answered))
    assert evolve.requests(job("x y z w", round_=2, origin="evolve", drafts=answered)) == []
    assert evolve.requests(job("x y z w", drafts=[Draft(input="in")])) == []  # no output
    assert evolve.requests(job("x y z w", origin="invert", drafts=answered)) == []

    reply = Completion(text="Sure! Here is the rewritten prompt:\n\nExplain tides in 3 steps.",
                       finish_reason="stop")  # fmt: skip
    evolve.parse(first, [reply])
    (derived,) = first.derived
    assert derived == Derived("evolve", "Explain tides in 3 steps.", round=1, operation=operation)


def test_paraphrase_and_invert_parse_their_replies(tmp_path):
    built = stages(tmp_path, **ALL_ON, **{"stages.paraphrase.k": 2})
    paraphrase, invert = (s for s in built.sequence if s.name in ("paraphrase", "invert"))
    drafts = [Draft(input="", output="Four."), Draft(input="The sky is blue.", output="Blue")]
    work = job("Name the colour in the sentence.", drafts=drafts)
    assert "Write 2 paraphrases" in paraphrase.requests(work)[0].messages[-1].content
    reply = "1. What colour does the sentence name?\n2. Which colour is in the sentence?\n3. X"
    paraphrase.parse(work, [Completion(text=reply, finish_reason="stop")])
    assert [d.instruction for d in work.derived] == [
        "What colour does the sentence name?", "Which colour is in the sentence?",
    ]  # fmt: skip

    (request,) = invert.requests(work)  # the first answered instance with an input
    assert "Input: The sky is blue.\nOutput: Blue" in request.messages[-1].content
    reply = Completion(text="Write a sentence that names a colour.", finish_reason="stop")
    invert.parse(work, [reply])
    inverted = work.derived[-1]
    assert inverted.origin == "invert"
    assert inverted.instance == Instance(input="Blue", output="The sky is blue.")
    assert invert.requests(job("No inputs here at all.", drafts=[Draft("", "x")])) == []


def test_a_cut_or_filtered_reply_is_a_rejection_not_a_candidate():
    assert read_instruction(Completion(text="Explain the", finish_reason="length"))[1] == (
        "output_truncated"
    )
    assert read_instruction(Completion(text="", finish_reason="content_filter"))[1] == (
        "content_filter"
    )
    assert read_instruction(Completion(text="  \n", finish_reason="stop"))[1] == "empty_reply"
    text, problem = read_instruction(
        Completion(text='"Plan a trip."\n\nI hope this helps!', finish_reason="stop")
    )
    assert (text, problem) == ("Plan a trip.", None)
    went_on = " Name the fruit in the list.\nInput: apple, bread\nOutput: apple"
    assert read_instruction(Completion(text=went_on, finish_reason="stop"))[0] == (
        "Name the fruit in the list."
    )
    wrapped = "Rank the cities below\nby population, largest first."
    assert read_instruction(Completion(text=wrapped, finish_reason="stop"))[0] == (
        "Rank the cities below by population, largest first."
    )


# -- the rules ------------------------------------------------------------------------------


def test_the_elimination_rules():
    parent = "Explain how tides work."
    assert elimination_drop("I'm sorry, I can't do that.", parent, evolved=True).reason == (
        "refusal"
    )
    assert elimination_drop("As an AI, no.", parent, evolved=False).reason == "refusal"
    copies = (
        "#Rewritten Prompt#: Explain tides.", "The given prompt asks for tides.",
        "Write the inverse task of this one.", "Give the original task's input.",
    )  # fmt: skip
    for copied in copies:
        assert elimination_drop(copied, parent, evolved=True).reason == "copies_prompt"
    assert elimination_drop("Explain how tides work", parent, evolved=True).reason == (
        "no_information_gain"
    )
    assert elimination_drop("Explain tides.", parent, evolved=True).reason == (
        "no_information_gain"
    )
    assert elimination_drop("Explain tides.", parent, evolved=False) is None  # a paraphrase
    assert elimination_drop("Explain how tides work on Mars.", parent, evolved=True) is None


def test_a_paraphrase_group_drops_what_is_too_close_to_any_member_by_reference_rouge():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    original = "Summarize the article below in three sentences."
    group = ParaphraseGroup(original, threshold=0.8)
    close = "Please summarize the article below in three sentences."
    far = "Write a three-sentence summary of the following article."
    assert scorer.score(original, close)["rougeL"].fmeasure > 0.8
    assert scorer.score(original, far)["rougeL"].fmeasure <= 0.8
    drop = group.judge(close)
    assert drop.reason == "rouge_similar" and drop.details["most_similar"] == original
    assert drop.details["score"] == scorer.score(original, close)["rougeL"].fmeasure
    assert group.judge(far) is None
    group.keep(far)
    assert group.judge("Write a three-sentence summary of the following article!") is not None


# -- the driver: judged, written, resumed ------------------------------------------------------


def example(row: Instruction, number: int, instance: Instance) -> Example:
    return Example(
        id=f"{row.id}-{number}", instruction_id=row.id, instruction=row.instruction,
        input=instance.input, output=instance.output, is_classification=False,
        provenance=Provenance(calls=["q0", f"{row.id}.outputs", f"{row.id}.invert"],
                              models={"outputs": "X", "invert": "X"}),
    )  # fmt: skip


def test_a_run_killed_between_derived_rows_and_examples_resumes_without_duplicates(tmp_path):
    cfg = config(**ALL_ON, num_instructions=10)
    built = Pipeline(cfg, tmp_path / "unused").stages
    out = tmp_path / "run"
    parent = job("Explain how the moon causes tides on Earth.").instruction
    source = Instance(input="Why are there two tides a day?", output="Because of the bulge.")
    orphan = Instruction(
        id="i000001", instruction="Write the question that this answer replies to.",
        request=0, model="X", max_rouge=0.1, call="i000000.invert", origin="invert",
        parent=parent.id, instance=Instance(input=source.output, output=source.input),
    )  # fmt: skip
    store = RunStore.open(out)  # the state a kill leaves: rows written, the example batch not
    store.add_instruction(parent)
    store.add_instruction(orphan)
    store.close()

    store = RunStore.open(out)
    judge = InstructionJudge(cfg.filters)
    for text in store.state.instruction_texts:
        judge.keep(text)
    derivations = Derivations(cfg, built, judge, store)
    assert "i000001" in store.state.with_examples  # rebuilt from its row
    assert [row.id for row in store.state.pending] == [parent.id]

    def rerun():  # the parent's job, run again after the resume
        work = job(parent.instruction, drafts=[Draft(source.input, source.output)])
        work.calls += ["i000000.evolve", "i000000.paraphrase", "i000000.invert"]
        work.derived += [
            Derived("evolve", "Explain how the moon and the sun together cause spring tides.",
                    round=1, operation="deepen"),
            Derived("paraphrase", "Describe the way the moon produces tides on Earth."),
            Derived("invert", "Write the question that this reply answers about tides.",
                    instance=orphan.instance, source=source),
        ]  # fmt: skip
        return derivations.write_job(work, [example(parent, 0, source)])

    queued = rerun()
    assert [row.origin for row in queued] == ["evolve"] and queued[0].parent == parent.id
    assert rerun() == []  # once more (another kill, another resume): nothing twice
    store.close()
    rows = [Instruction.model_validate_json(x) for x in (out / "instructions.jsonl").open()]
    assert [(row.origin, row.parent) for row in rows] == [
        ("self-instruct", None), ("invert", parent.id), ("evolve", parent.id),
    ]  # fmt: skip  no second inversion of the parent
    examples = [Example.model_validate_json(x) for x in (out / "examples.jsonl").open()]
    assert [(e.id, e.origin, e.group) for e in examples] == [
        ("i000001-0", "invert", parent.id),
        ("i000000-0", "self-instruct", ""),
        ("i000000-p1-0", "paraphrase", parent.id),
    ]
    assert examples[1].provenance.calls == ["q0", "i000000.outputs"]  # its own stages only
    assert examples[2].provenance.calls[-1] == "i000000.paraphrase"
    assert examples[0].provenance.calls == ["i000000.invert"]


def test_an_inversion_is_kept_only_while_the_target_has_room(tmp_path):
    cfg = config(**ALL_ON, num_instructions=1)
    built = Pipeline(cfg, tmp_path / "unused").stages
    store = RunStore.open(tmp_path / "run")
    judge = InstructionJudge(cfg.filters)
    derivations = Derivations(cfg, built, judge, store)
    source = Instance(input="A question about tides?", output="An answer about the moon.")
    work = job("Answer the question about tides.", drafts=[Draft(source.input, source.output)])
    store.add_instruction(work.instruction)
    work.derived.append(Derived("invert", "Write a question that this answer replies to.",
                                instance=Instance(input=source.output, output=source.input),
                                source=source))  # fmt: skip
    derivations.write_job(work, [example(work.instruction, 0, source)])
    assert store.state.with_examples == {work.instruction.id}
    assert [row.origin for row in store.state.instructions] == ["self-instruct"]


# -- export and report ----------------------------------------------------------------------


def test_a_split_keeps_a_task_with_its_paraphrases_and_inversion(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = []
    for number in range(20):
        parent = f"i{number:06d}"
        base = dict(input=f"in {number}", output=f"out {number}", is_classification=False,
                    provenance=Provenance())  # fmt: skip
        rows += [
            Example(id=f"{parent}-0", instruction_id=parent, instruction=f"Task {number}", **base),
            Example(id=f"{parent}-p1-0", instruction_id=parent, instruction=f"Job {number}",
                    origin="paraphrase", group=parent, **base),
            Example(id=f"x{number}-0", instruction_id=f"x{number}", instruction=f"Inv {number}",
                    origin="invert", group=parent, **base),
        ]  # fmt: skip
    (run / "examples.jsonl").write_text("".join(row.model_dump_json() + "\n" for row in rows))
    collected, _ = collect_rows(run)
    splits = split_rows(collected, {"train": 0.5, "test": 0.5}, seed=3)
    assert {name: len(part) for name, part in splits.items()} == {"train": 30, "test": 30}
    for part in splits.values():
        numbers = {row.input for row in part}
        assert len(part) == 3 * len(numbers)  # each group whole, in one split

    report = build_report(run)
    assert ("paraphrase", "examples kept", 20) in [
        (row.stage, row.label, row.count) for row in stage_rows_of(run)
    ]
    assert len(report.dataset_instructions) == 40  # paraphrases share their parent's id
    assert ("examples by origin", "self-instruct 20, paraphrase 20, invert 20") in headline(report)


def stage_rows_of(run: Path):
    from selfinstruct.report.numbers import load_run

    return stage_rows(load_run(run))
