"""Stage-1 instruction heuristics and stage-2/3 instance filters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.config_sections import DEFAULT_BLACKLIST, FilterConfig
from selfinstruct.filters.base import Drop, Remembers, TextFilter
from selfinstruct.filters.heuristics import (
    BannedPrefix,
    BlacklistedWord,
    ExactDuplicate,
    NonAsciiStart,
    StartsWithPunctuation,
    TooLong,
    TooShort,
    build_instruction_filters,
    first_drop,
    normalize,
)
from selfinstruct.filters.instances import filter_instances, instance_drop
from selfinstruct.filters.instruction_judge import Decision, InstructionJudge
from selfinstruct.filters.rouge import DEFAULT_REPORT_FLOOR, fmeasure
from selfinstruct.records import Instance

CONFIG = FilterConfig()


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


# ------------------------------------------------------------------ length rules


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("", True),
        ("   ", True),
        ("Write", True),
        ("Write a poem", True),  # 3 words: the paper rejects <= 3
        ("Write a short poem", False),  # 4 words: kept
        ("Write  a\tshort\npoem", False),  # words are text.split()
        ("  Write a poem  ", True),
    ],
)
def test_too_short_boundary(text: str, dropped: bool) -> None:
    drop = TooShort(4).filter(text)
    assert (drop is not None) is dropped
    if drop is not None:
        assert drop.reason == "too_short"
        assert drop.details == {"words": len(text.split()), "min_words": 4}


@pytest.mark.parametrize(("n", "dropped"), [(1, False), (149, False), (150, False), (151, True)])
def test_too_long_boundary(n: int, dropped: bool) -> None:
    drop = TooLong(150).filter(words(n))
    assert (drop is not None) is dropped
    if drop is not None:
        assert drop == Drop("too_long", {"words": n, "max_words": 150})


def test_length_rules_follow_the_config() -> None:
    config = FilterConfig(min_words=2, max_words=5)
    assert first_drop(build_instruction_filters(config), "Summarize it") is None
    assert first_drop(build_instruction_filters(config), "Summarize").reason == "too_short"
    assert first_drop(build_instruction_filters(config), words(6)).reason == "too_long"


# -------------------------------------------------------------------- blacklist


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Describe the image in detail.", "image"),
        ("Describe the IMAGE in detail.", "image"),
        ("Look at these Images and describe them.", "images"),
        ("Go to the store and buy milk.", "go to"),
        ("You should go  to bed early tonight.", "go to"),  # any whitespace inside a phrase
        ("Please draw a cat for me.", "draw"),
        ("Open the file named notes.txt.", "file"),
        ("Plot the data on a chart.", "plot"),
        ("Compose some music for a wedding.", "music"),
        ("Explain this flowchart step by step.", "flowchart"),
        ("Summarize the video (about cats).", "video"),
        ("Image: describe what you see here.", "image"),
        ("Describe what is in the picture.", "picture"),
    ],
)
def test_blacklist_matches_whole_words(text: str, word: str) -> None:
    assert BlacklistedWord(DEFAULT_BLACKLIST).filter(text) == Drop(
        "blacklisted_word", {"word": word}
    )


@pytest.mark.parametrize(
    "text",
    [
        "Imagine you are a pirate and introduce yourself.",  # "imagine" is not "image"
        "Give an example of imagery in poetry.",
        "Explain what a graphic designer does.",  # not "graph"
        "Describe the profile of a good manager.",  # not "file"
        "Explain how to drawback a bow.",  # not "draw"
        "Describe the plotline of Hamlet.",  # not "plot"
        "Name a famous musical.",  # not "music"
        "Where should I go tonight to relax?",  # "go" alone is not "go to"
        "Describe a good topic to write about.",  # "go to" not across a word boundary
        "List three maple trees.",  # "map" inside "maple"
    ],
)
def test_blacklist_ignores_words_containing_a_keyword(text: str) -> None:
    assert BlacklistedWord(DEFAULT_BLACKLIST).filter(text) is None


def test_blacklist_one_pass_check_agrees_with_each_keyword_in_order() -> None:
    """The single alternation the filter tries first finds a keyword iff some keyword's own
    pattern does; the reported word is still the first in list order."""
    rng = random.Random(7)
    words = [*DEFAULT_BLACKLIST, "c++", "go to", "a.b"]
    rule = BlacklistedWord(words)
    pieces = [*words, "imagine", "topic", "go", "abc++", "maple", "draws", "!", "(", "\n"]
    for _ in range(3000):
        chosen = [rng.choice(pieces) for _ in range(6)]
        cased = [p.upper() if rng.random() < 0.2 else p for p in chosen]
        text = "".join(p + rng.choice([" ", "", "  ", ".", "-"]) for p in cased)
        first = next((w for w, pattern in rule.patterns if pattern.search(text)), None)
        expected = None if first is None else Drop("blacklisted_word", {"word": first})
        assert rule.filter(text) == expected, text


def test_blacklist_escapes_keywords_and_handles_punctuation_edges() -> None:
    rule = BlacklistedWord(["c++", "a.b", "  "])
    assert rule.filter("Write it in C++ please.") == Drop("blacklisted_word", {"word": "c++"})
    assert rule.filter("Write it in abc++ now.") is None
    assert rule.filter("axb is not a.b") == Drop("blacklisted_word", {"word": "a.b"})
    assert rule.filter("axb only") is None


def test_blacklist_reports_the_first_configured_word() -> None:
    rule = BlacklistedWord(["graph", "image"])
    assert rule.filter("Turn the image into a graph.") == Drop(
        "blacklisted_word", {"word": "graph"}
    )


# --------------------------------------------------------------- prefix and start


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("Write a program that sorts a list.", True),
        ("write a PROGRAM to add numbers", True),
        ("  Write a program to add numbers", True),
        ("Write a  program to add numbers", True),
        ("Write a poem about programs.", False),
        ("Please write a program to add numbers.", False),
    ],
)
def test_banned_prefix(text: str, dropped: bool) -> None:
    drop = BannedPrefix(["Write a program"]).filter(text)
    assert (drop is not None) is dropped
    if drop is not None:
        assert drop == Drop("banned_prefix", {"prefix": "Write a program"})


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("- Write a poem about rain.", True),
        ('"Write a poem about rain."', True),
        ("(a) Write a poem about rain.", True),
        ("#1 Write a poem about rain.", True),
        ("...and then write a poem.", True),
        ("Write a poem about rain.", False),
        ("2024 was a leap year; explain.", False),
        ("", False),
        ("«Écris» un poème.", False),  # not ASCII punctuation (the non-ASCII rule takes it)
    ],
)
def test_starts_with_punctuation(text: str, dropped: bool) -> None:
    drop = StartsWithPunctuation().filter(text)
    assert (drop is not None) is dropped
    if drop is not None:
        assert drop.reason == "starts_with_punctuation"
        assert drop.details == {"char": text.lstrip()[0]}


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("Écris un poème sur la pluie.", True),
        ("写一首诗。", True),
        ("🍂 Write a haiku about autumn.", True),
        ("“Write” a haiku.", True),
        ("Write a haiku about café culture.", False),  # only the first character counts
        ("", False),
    ],
)
def test_non_ascii_start(text: str, dropped: bool) -> None:
    drop = NonAsciiStart().filter(text)
    assert (drop is not None) is dropped
    if drop is not None:
        assert drop == Drop("non_ascii_start", {"char": text[0]})


# ------------------------------------------------------------------- duplicates


def test_exact_duplicate_normalizes_case_and_whitespace() -> None:
    rule = ExactDuplicate()
    rule.add("Write a poem about the sea.")
    assert rule.filter("write a POEM  about\tthe sea.") == Drop(
        "exact_duplicate", {"duplicate_of": "Write a poem about the sea."}
    )
    assert rule.filter("  Write a poem about the sea.  ") is not None
    assert rule.filter("Write a poem about the sea") is None  # punctuation counts
    assert rule.filter("Write a poem about the lake.") is None


def test_exact_duplicate_filter_does_not_remember() -> None:
    rule = ExactDuplicate()
    assert rule.filter("Name a fruit please.") is None
    assert rule.filter("Name a fruit please.") is None
    rule.add("Name a fruit please.")
    assert rule.filter("Name a fruit please.") is not None


def test_exact_duplicate_reports_the_first_spelling() -> None:
    rule = ExactDuplicate(["Name a Fruit.", "name a fruit."])
    assert rule.filter("NAME A FRUIT.").details == {"duplicate_of": "Name a Fruit."}


def test_normalize() -> None:
    assert normalize("  Hello\n\tWORLD  ") == "hello world"


# ------------------------------------------------------------ building the chain


def test_build_instruction_filters_order_and_protocols() -> None:
    filters = build_instruction_filters(CONFIG)
    assert [rule.name for rule in filters] == [
        "too_short",
        "too_long",
        "starts_with_punctuation",
        "non_ascii_start",
        "banned_prefix",
        "exact_duplicate",
        "blacklisted_word",
    ]
    assert all(isinstance(rule.name, str) and callable(rule.filter) for rule in filters)
    remembering = [rule for rule in filters if isinstance(rule, Remembers)]
    assert [rule.name for rule in remembering] == ["exact_duplicate"]


def _remember(filters: list[TextFilter], text: str) -> None:
    for rule in filters:
        if isinstance(rule, Remembers):
            rule.add(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Write a poem", "too_short"),
        (words(151), "too_long"),
        ("- Write a poem about the sea.", "starts_with_punctuation"),
        ("Écris un poème sur la mer.", "non_ascii_start"),
        ("Write a program that reverses a string.", "banned_prefix"),
        ("Give three tips for staying healthy.", "exact_duplicate"),
        ("Describe the image below in two sentences.", "blacklisted_word"),
        ("Imagine a world without money; describe it.", None),
        ("Sort 3, 1, 2 in ascending order.", None),
    ],
)
def test_first_drop_through_the_default_chain(text: str, reason: str | None) -> None:
    filters = build_instruction_filters(CONFIG)
    _remember(filters, "Give three tips for staying healthy.")
    drop = first_drop(filters, text)
    assert (drop.reason if drop else None) == reason


def test_first_drop_reports_the_cheapest_rule_first() -> None:
    filters = build_instruction_filters(CONFIG)
    assert first_drop(filters, "- image").reason == "too_short"
    assert first_drop(filters, "- Describe the image please.").reason == "starts_with_punctuation"


def test_first_drop_with_no_rules_keeps_everything() -> None:
    assert first_drop([], "anything") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_heuristics_never_raise(text: str) -> None:
    drop = first_drop(build_instruction_filters(CONFIG), text)
    assert drop is None or isinstance(drop, Drop)


# -------------------------------------------------------------- instance filters


def inst(source: str, output: str) -> Instance:
    return Instance(input=source, output=output)


def reasons(dropped: list[tuple[Instance, Drop]]) -> list[str]:
    return [drop.reason for _, drop in dropped]


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        (inst("2 + 2", ""), "empty_output"),
        (inst("2 + 2", "  \n "), "empty_output"),
        (inst("", "N/A"), "placeholder_output"),
        (inst("", "none."), "placeholder_output"),
        (inst("", " None "), "placeholder_output"),
        (inst("", "<nooutput>"), "placeholder_output"),
        (inst("", "..."), "placeholder_output"),
        (inst("", "-"), "placeholder_output"),
        (inst("", "NaN"), "placeholder_output"),
        (inst("hello", "hello"), "input_equals_output"),
        (inst("  hello ", "hello\n"), "input_equals_output"),
        (inst("Translate this:", "hello"), "ends_with_colon"),
        (inst("The list:", "1, 2, 3"), "ends_with_colon"),
        (inst("", "Here are three tips:"), "ends_with_colon"),
        (inst("", "Here are three tips:  \n"), "ends_with_colon"),
        (inst("", "4"), None),
        (inst("Hello", "Bonjour"), None),
        (inst("", "Nonetheless, it works."), None),
        (inst("Time: 3:30", "afternoon"), None),
        (inst("", "None of the above"), None),
    ],
)
def test_instance_drop_rules(instance: Instance, reason: str | None) -> None:
    drop = instance_drop(instance, CONFIG)
    assert (drop.reason if drop else None) == reason


def test_input_equals_output_needs_a_nonempty_input() -> None:
    assert instance_drop(inst("", "hello"), CONFIG) is None


def test_placeholders_follow_the_config() -> None:
    config = FilterConfig(placeholder_outputs=["TBD"])
    assert instance_drop(inst("", "tbd."), config) == Drop("placeholder_output", {"output": "tbd."})
    assert instance_drop(inst("", "N/A"), config) is None


def test_ends_with_colon_names_the_field() -> None:
    assert instance_drop(inst("List:", "a"), CONFIG) == Drop("ends_with_colon", {"field": "input"})
    assert instance_drop(inst("a", "List:"), CONFIG) == Drop("ends_with_colon", {"field": "output"})


def test_filter_instances_keeps_good_instances_in_order() -> None:
    instances = [inst("3, 1, 2", "1, 2, 3"), inst("", "A poem."), inst("b, a", "a, b")]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == instances
    assert dropped == []


def test_filter_instances_empty_list() -> None:
    assert filter_instances([], CONFIG) == ([], [])


def test_conflicting_outputs_drop_every_instance_with_that_input() -> None:
    instances = [
        inst("Is 9 prime?", "No"),
        inst("Is 7 prime?", "Yes"),
        inst("Is 9 prime?", "Yes"),
        inst(" Is 9 prime? ", "No"),
    ]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == [inst("Is 7 prime?", "Yes")]
    assert [item for item, _ in dropped] == [instances[0], instances[2], instances[3]]
    assert reasons(dropped) == ["conflicting_outputs"] * 3
    assert dropped[0][1].details == {"input": "Is 9 prime?", "outputs": ["No", "Yes"]}


def test_empty_inputs_never_conflict() -> None:
    instances = [inst("", "Roses are red."), inst("", "The sky is wide.")]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == instances and dropped == []


def test_duplicate_instance_keeps_the_first() -> None:
    instances = [
        inst("", "Hi."),
        inst("x", "y"),
        inst("", "Hi."),
        inst("x ", " y"),
        inst("", "Hi."),
    ]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == [inst("", "Hi."), inst("x", "y")]
    assert reasons(dropped) == ["duplicate_instance"] * 3
    assert [drop.details["duplicate_of"] for _, drop in dropped] == [0, 1, 0]


def test_a_bad_output_does_not_create_a_conflict() -> None:
    # the empty and placeholder outputs are dropped first, so "cat" is the only answer left
    instances = [inst("c-a-t", ""), inst("c-a-t", "cat"), inst("c-a-t", "N/A")]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == [inst("c-a-t", "cat")]
    assert reasons(dropped) == ["empty_output", "placeholder_output"]


def test_same_output_repeated_is_a_duplicate_not_a_conflict() -> None:
    instances = [inst("2+2", "4"), inst("2+2", "4"), inst("3+3", "6")]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == [inst("2+2", "4"), inst("3+3", "6")]
    assert reasons(dropped) == ["duplicate_instance"]


def test_combined_rules_report_each_drop_in_list_order() -> None:
    instances = [
        inst("Translate: hola", "hello"),  # ends_with_colon? no: "hola" ends the input
        inst("apple", "apple"),  # input_equals_output
        inst("", ""),  # empty_output
        inst("Is it red?", "Yes"),  # conflicting
        inst("", "none"),  # placeholder_output
        inst("Is it red?", "No"),  # conflicting
        inst("Give a list:", "a, b"),  # ends_with_colon
        inst("Translate: hola", "hello"),  # duplicate
        inst("", "A fine answer."),  # kept
    ]
    kept, dropped = filter_instances(instances, CONFIG)
    assert kept == [inst("Translate: hola", "hello"), inst("", "A fine answer.")]
    assert reasons(dropped) == [
        "input_equals_output",
        "empty_output",
        "conflicting_outputs",
        "placeholder_output",
        "conflicting_outputs",
        "ends_with_colon",
        "duplicate_instance",
    ]
    assert [item for item, _ in dropped] == [instances[i] for i in (1, 2, 3, 4, 5, 6, 7)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            inst,
            st.sampled_from(["", "a", "b", " a", "x:"]),
            st.sampled_from(["", "a", "b", "N/A", "c:", "d", " d"]),
        ),
        max_size=12,
    )
)
def test_filter_instances_partitions_the_input(instances: list[Instance]) -> None:
    kept, dropped = filter_instances(instances, CONFIG)
    assert len(kept) + len(dropped) == len(instances)
    keys = [(item.input.strip(), item.output.strip()) for item in kept]
    assert len(set(keys)) == len(keys)
    outputs: dict[str, set[str]] = {}
    for source, target in keys:
        if source:
            outputs.setdefault(source, set()).add(target)
    assert all(len(values) == 1 for values in outputs.values())
    assert all(instance_drop(item, CONFIG) is None for item in kept)


# -- stage 1's verdict in one call ------------------------------------------------------------


def test_instruction_judge_heuristics_come_first_and_are_not_scored() -> None:
    judge = InstructionJudge(CONFIG)
    judge.keep("Write a poem about the sea.")
    assert judge.decide("Write a poem.") == Decision(
        Drop("too_short", {"words": 3, "min_words": 4}), 0.0, None, False
    )
    # an exact duplicate is caught by the heuristic before the ROUGE-L rule
    assert judge.decide("write a  POEM about the sea.").drop == Drop(
        "exact_duplicate", {"duplicate_of": "Write a poem about the sea."}
    )


def test_instruction_judge_rouge_verdicts_and_nearest() -> None:
    judge = InstructionJudge(CONFIG, floor=0.3)
    for seed in ["Write a poem about the sea.", "Give three tips for staying healthy."]:
        judge.keep(seed)
    similar = judge.decide("Write a short poem about the sea.")  # LCS 6 of 6 and 7 tokens
    score = fmeasure(6, 6, 7)
    assert similar == Decision(
        Drop("rouge_similar", {"score": score, "most_similar": "Write a poem about the sea."}),
        score,
        "Write a poem about the sea.",
        True,
    )
    novel = judge.decide("Give three reasons for learning a new language.")  # LCS 3: F 3/7
    healthy = "Give three tips for staying healthy."
    assert novel == Decision(None, fmeasure(3, 6, 8), healthy, True)
    far = judge.decide("Summarize this article in two sentences.")
    assert far.drop is None and not far.exact and far.score <= 0.3
    assert len(judge) == 2  # decide never remembers


def test_the_reporting_floor_comes_from_the_config_and_never_changes_a_decision() -> None:
    assert CONFIG.rouge_nearest_floor == DEFAULT_REPORT_FLOOR
    seeds = ["Write a poem about the sea.", "Give three tips for staying healthy."]
    texts = ["Give three reasons for learning a new language.", "Write a short poem about the sea."]
    verdicts = {}
    for floor in (0.3, 0.7):
        judge = InstructionJudge(FilterConfig(rouge_nearest_floor=floor))
        for seed in seeds:
            judge.keep(seed)
        verdicts[floor] = [judge.decide(text) for text in texts]
    low, high = verdicts[0.3], verdicts[0.7]
    assert low[0] == Decision(None, fmeasure(3, 6, 8), seeds[1], True)  # F 0.43 > floor 0.3
    assert high[0] == Decision(None, 0.0, None, False)  # not looked for at the threshold
    assert low[1] == high[1] and low[1].drop is not None  # the same drop, the same score


def test_instruction_judge_keep_remembers_in_every_stateful_rule() -> None:
    judge = InstructionJudge(FilterConfig(rouge_threshold=1.0))  # ROUGE-L never drops
    text = "Describe the water cycle in simple words."
    assert judge.decide(text).drop is None
    judge.keep(text)
    assert judge.decide(text.upper()).drop == Drop("exact_duplicate", {"duplicate_of": text})
    assert judge.decide(text + " Now.").score == fmeasure(7, 7, 8)
