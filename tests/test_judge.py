"""The judge's reply parser, its ranking decisions, the sequence it joins, and the
preference/ranked layouts built from its ratings."""

from __future__ import annotations

import random

import pytest

from selfinstruct.config import RunConfig, build_config
from selfinstruct.errors import InputError
from selfinstruct.export.core import export_rows
from selfinstruct.export.options import ExportOptions
from selfinstruct.export.preference import FEWER_THAN_TWO, TIED
from selfinstruct.export.rows import Row
from selfinstruct.records import Instruction
from selfinstruct.seeds import load_seeds
from selfinstruct.stages import build_stages
from selfinstruct.stages.base import Draft, Job
from selfinstruct.stages.judge import JudgeStage, parse_judgement
from selfinstruct.teachers.base import Completion

from .conftest import SEEDS


@pytest.mark.parametrize(
    ("reply", "score", "rationale"),
    [
        ("Rationale: Correct and concise.\nScore: 9", 9, "Correct and concise."),
        ("The answer is wrong.\n\n**Score:** 2/10", 2, "The answer is wrong."),
        (" Good but long. Rating: 7 out of 10.", 7, "Good but long."),
        ("I would give it 8/10 because it is right.", 8, "I would give it because it is right."),
        ("10", 10, ""),
        ("**6**", 6, ""),
        ("Score: 7.5", 8, ""),
        ("Scores vary: first I thought Score: 3, but on reflection Score: 5", 5, None),
    ],
)
def test_parse_judgement_reads_a_score_and_a_rationale(reply, score, rationale):
    parsed = parse_judgement(reply)
    assert parsed is not None and parsed[0] == score
    if rationale is not None:
        assert parsed[1] == rationale


@pytest.mark.parametrize(
    "reply", ["", "I cannot rate this.", "Score: 0", "Score: 11", "It has 3 steps and 4 errors."]
)
def test_parse_judgement_refuses_replies_without_a_score_from_1_to_10(reply):
    assert parse_judgement(reply) is None


def _stage(min_score: int = 6) -> JudgeStage:
    config = RunConfig.model_validate(
        {"seeds": str(SEEDS), "stages": {"judge": {"enabled": True, "min_score": min_score}}}
    )
    stages = build_stages(config, load_seeds(SEEDS), lambda stage: "chat")
    (judge,) = [stage for stage in stages.sequence if stage.name == "judge"]
    assert isinstance(judge, JudgeStage)
    return judge


def _job(*drafts: Draft) -> Job:
    row = Instruction(id="i1", instruction="Say hi.", request=0, model="m", max_rouge=0.0)
    return Job(instruction=row, rng=random.Random(0), drafts=list(drafts))


def _replies(*texts: str) -> list[Completion]:
    return [Completion(text, "stop", model="judge-model") for text in texts]


def test_the_judge_joins_the_sequence_only_when_enabled():
    seeds = load_seeds(SEEDS)
    off = build_stages(RunConfig.model_validate({"seeds": str(SEEDS)}), seeds, lambda s: "chat")
    assert off.names == ["instructions", "classify", "inputs", "outputs"]
    assert _stage() is not None  # enabled: the last stage of the sequence


def test_best_candidate_wins_ties_keep_sample_order_unreadable_ones_go_last():
    judge = _stage()
    draft = Draft("x", output="a", candidates=["a", "b", "c", "d"])
    job = _job(draft)
    assert len(judge.requests(job)) == 4
    judge.parse(job, _replies("Score: 7", "Score: 9", "no idea", "Score: 9"))
    assert draft.output == "b" and draft.judge is not None and draft.judge.score == 9
    assert draft.judge.model == "judge-model"
    assert [(c.output, c.judge.score if c.judge else None) for c in draft.ranked] == [
        ("b", 9), ("d", 9), ("a", 7), ("c", None),
    ]  # fmt: skip
    assert job.rejections == []


def test_low_scores_and_unreadable_replies_drop_the_draft_with_their_reason():
    judge = _stage(min_score=6)
    low, unreadable, kept = Draft("x", "low"), Draft("y", "unreadable"), Draft("z", "kept")
    job = _job(low, unreadable, kept)
    judge.parse(job, _replies("Off-task.\nScore: 3", "hmm", "Score: 6"))
    assert job.drafts == [kept] and kept.judge is not None and kept.ranked == []
    (first, second) = job.rejections
    assert (first.stage, first.reason, first.candidate) == ("judge", "judge_low_score", "x -> low")
    assert first.details["score"] == 3 and first.details["rationale"] == "Off-task."
    assert first.details["model"] == "judge-model"
    assert (second.reason, second.details["reply"]) == ("unparseable", "hmm")


def test_min_score_out_of_range_is_an_input_error():
    with pytest.raises(InputError, match="min_score"):
        build_config(overrides={"stages.judge.min_score": 11}, environ={})


def _row(rid: str, *candidates: tuple[str, int | None]) -> Row:
    output, score = candidates[0] if candidates else ("o", None)
    return Row(rid, rid, "Do it.", "", output, judge_score=score, candidates=candidates)


def test_preference_rows_pair_best_and_worst_and_skip_what_cannot_be_a_pair():
    rows = [
        _row("a", ("best", 9), ("mid", 7), ("worst", 3)),
        _row("b", ("same", 8), ("same", 4)),  # one distinct text
        _row("c", ("x", 7), ("y", 7)),  # tied
        _row("d", ("x", 8), ("y", None)),  # one rated
        _row("e"),  # not sampled
    ]
    result = export_rows(rows, ExportOptions(layout="preference"))
    assert result.tables[""] == [
        {"prompt": "Do it.", "chosen": "best", "rejected": "worst",
         "score_chosen": 9, "score_rejected": 3},
    ]  # fmt: skip
    assert result.skipped == {FEWER_THAN_TWO: 3, TIED: 1}
    ranked = export_rows(rows, ExportOptions(layout="ranked")).tables[""]
    assert ranked[0]["completions"] == ["best", "mid", "worst"]
    assert ranked[1] == {"prompt": "Do it.", "completions": ["x", "y"], "scores": [7, 7]}


def test_a_preference_export_with_no_pair_says_what_it_needs():
    with pytest.raises(InputError, match=r"stages\.outputs\.samples"):
        export_rows([_row("e")], ExportOptions(layout="preference"))


def test_judge_score_column_only_when_the_run_has_scores():
    plain = export_rows([_row("e")], ExportOptions(layout="alpaca")).tables[""]
    assert "judge_score" not in plain[0]
    scored = export_rows([_row("a", ("o", 7)), _row("e")], ExportOptions(layout="messages"))
    assert [row["judge_score"] for row in scored.tables[""]] == [7, None]


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_shipped_judge_prompts_render_the_rated_answer(api):
    from selfinstruct.config_sections import SamplingConfig
    from selfinstruct.prompts import default_prompt_path, load_template

    (template,) = JudgeStage.templates
    loaded = load_template(default_prompt_path("judge", api), set(template.placeholders))
    request = loaded.request("judge", api, SamplingConfig(), instruction="Add.", input="2 2",
                             output="4")  # fmt: skip
    text = request.prompt or "\n".join(m.content for m in request.messages or ())
    assert "Task: Add.\nInput: 2 2\nAnswer: 4" in text
    assert request.temperature == 0.0
    if api == "chat":
        assert request.messages is not None and request.messages[0].role == "system"
    else:
        assert text.endswith("Rationale:")


def test_every_layout_has_a_dataset_card_description():
    from selfinstruct.export.hub import _LAYOUT_FIELDS
    from selfinstruct.export.layouts import LAYOUTS

    assert set(_LAYOUT_FIELDS) == set(LAYOUTS)


def test_instance_filters_drop_bad_samples_and_keep_the_first_good_one_as_output():
    from selfinstruct.config_sections import FilterConfig
    from selfinstruct.jobs import JobRunner

    async def never(*args):  # the filters send nothing
        raise AssertionError("no request expected")

    runner = JobRunner(("instructions", "sha"), (), FilterConfig(), {}, 0, never, str)
    mixed = Draft("in", output="N/A", candidates=["N/A", "good", "in", "better"])
    hopeless = Draft("x", output="N/A", candidates=["N/A", ""])
    job = _job(mixed, hopeless)
    job.answered_by = "outputs"
    runner.apply_instance_filters(job)
    assert job.drafts == [mixed]
    assert (mixed.output, mixed.candidates) == ("good", ["good", "better"])
    reasons = [(r.reason, r.candidate, r.details.get("sample")) for r in job.rejections]
    assert reasons == [
        ("placeholder_output", "in -> N/A", True),
        ("input_equals_output", "in -> in", True),
        ("empty_output", "x -> ", True),  # the other samples of the hopeless draft
        ("placeholder_output", "x -> N/A", None),  # its output, as any instance
    ]
