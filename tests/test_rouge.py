"""The ROUGE-L index decides and scores exactly as rouge-score does (property tests)."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from selfinstruct.filters import rouge_bounds, rouge_index, rouge_postings, rouge_score
from selfinstruct.filters.base import Drop
from selfinstruct.filters.rouge import (
    Nearest,
    RougeIndex,
    RougeNovelty,
    fmeasure,
    rouge_l_f,
    tokenize,
)

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

# A small vocabulary so that overlaps (and near-threshold ties) happen often, plus pieces
# that tokenize oddly: non-ASCII letters vanish and split words, CJK gives no token, case
# folds, punctuation-only text is empty, and lower() can turn non-ASCII into ASCII.
WORDS = ["a", "b", "c", "the", "cat", "dog", "x1", "2", "write", "list", "poem", "café",
         "don't", "Straße", "İ", "\u212a", "你好", "!!", "...", "A", "THE", "ß", "é"]  # fmt: skip
SEPARATORS = [" ", "  ", ", ", ".", "-", "\n", "\t", "/"]

word_texts = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=14
).map(lambda parts: "".join(w + s for w, s in parts))
any_texts = st.one_of(word_texts, st.text(max_size=30))
thresholds = st.one_of(
    st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.7, 0.7, 0.9, 1.0]),
    st.floats(min_value=0.0, max_value=1.0),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_f(candidate: str, kept: str) -> float:
    """What Alpaca/Self-Instruct compute: rouge-score, the new text as the target."""
    return SCORER.score(candidate, kept)["rougeL"].fmeasure


def reference_most_similar(candidate: str, kept: list[str]) -> tuple[float, int]:
    best, best_i = 0.0, -1
    for i, text in enumerate(kept):
        score = reference_f(candidate, text)
        if score > best:
            best, best_i = score, i
    return best, best_i


def text_with_lcs(common: int, extra_a: int, extra_b: int) -> tuple[str, str]:
    """Two texts whose LCS is exactly `common` tokens, of lengths common + extra_*."""
    shared = [f"w{i}" for i in range(common)]
    a = shared + [f"a{i}" for i in range(extra_a)]
    b = shared + [f"b{i}" for i in range(extra_b)]
    return " ".join(a), " ".join(b)


# -- tokenizer and score ---------------------------------------------------------------------


@FAST
@given(st.text(max_size=60))
def test_tokenize_matches_rouge_score(text: str) -> None:
    assert tokenize(text) == SCORER._tokenizer.tokenize(text)


def test_tokenize_examples() -> None:
    assert tokenize("Café, don't!") == ["caf", "don", "t"]
    assert tokenize("你好 !!") == []
    assert tokenize("\u212aelvin") == ["kelvin"]  # the Kelvin sign lowercases to "k"


@FAST
@given(any_texts, any_texts)
def test_rouge_l_f_matches_rouge_score_both_ways(a: str, b: str) -> None:
    expected = reference_f(a, b)
    assert rouge_l_f(tokenize(a), tokenize(b)) == expected
    assert rouge_l_f(tokenize(b), tokenize(a)) == expected
    assert reference_f(b, a) == expected


@pytest.mark.parametrize(
    ("lcs", "m", "n", "expected"),
    [
        (21, 23, 37, 0.6999999999999998),  # 2L/(m+n) == 0.7, rounds down: not similar
        (7, 7, 13, 0.7000000000000001),  # 2L/(m+n) == 0.7, rounds up: similar
        (7, 9, 11, 0.7000000000000001),
        (14, 18, 22, 0.7000000000000001),
        (35, 41, 59, 0.6999999999999998),
    ],
)
def test_ties_round_like_the_reference(lcs: int, m: int, n: int, expected: float) -> None:
    kept, candidate = text_with_lcs(lcs, n - lcs, m - lcs)
    assert reference_f(candidate, kept) == expected == fmeasure(lcs, n, m)
    index = RougeIndex(0.7)
    index.add(kept)
    assert index.most_similar(candidate) == (expected, 0)
    assert index.is_novel(candidate) is (expected <= 0.7)
    assert (index.find_similar(candidate) is None) is (expected <= 0.7)


# -- the index against the reference ---------------------------------------------------------


@FAST
@given(st.lists(any_texts, max_size=25), thresholds)
def test_greedy_dedup_matches_reference(texts: list[str], threshold: float) -> None:
    index, greedy = RougeIndex(threshold), RougeIndex(threshold)
    kept: list[str] = []
    for text in texts:
        score, nearest = reference_most_similar(text, kept)
        similar = score > threshold
        assert index.is_novel(text) is not similar
        found = index.find_similar(text)
        assert found == ((score, nearest) if similar else None)
        assert greedy.find_or_add(text) == found
        added, got_score, got_nearest = index.add_if_novel(text)
        assert (added, got_score, got_nearest) == (not similar, score, nearest)
        if added:
            kept.append(text)
    assert [index.text(i) for i in range(len(index))] == kept
    assert [greedy.text(i) for i in range(len(greedy))] == kept


@FAST
@given(st.lists(any_texts, max_size=20), any_texts)
def test_most_similar_is_the_exact_maximum(kept: list[str], candidate: str) -> None:
    index = RougeIndex()
    for text in kept:
        index.add(text)
    assert index.most_similar(candidate) == reference_most_similar(candidate, kept)


def test_first_index_wins_ties() -> None:
    index = RougeIndex()
    for text in ["x y z", "a b c d", "a b c d", "d c b a"]:
        index.add(text)
    assert index.most_similar("a b c e") == (0.75, 1)
    assert index.find_similar("a b c d") == (1.0, 1)


def test_empty_and_tokenless_texts_never_block() -> None:
    index = RougeIndex(0.0)
    for text in ["", "!!!", "你好", "é"]:
        assert index.add_if_novel(text) == (True, 0.0, -1)
    assert index.is_novel("anything at all")
    assert index.most_similar("") == (0.0, -1)
    assert len(index) == 4 and index.text(1) == "!!!"


def test_threshold_one_keeps_everything_and_zero_rejects_any_overlap() -> None:
    one = RougeIndex(1.0)
    one.add("same text")
    assert one.is_novel("same text")
    zero = RougeIndex(0.0)
    zero.add("one shared word")
    assert not zero.is_novel("word")
    assert zero.is_novel("nothing in common")


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_threshold_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError):
        RougeIndex(bad)


def test_repeated_tokens_count_as_a_multiset() -> None:
    index = RougeIndex()
    index.add("the the the the cat")
    candidate = "the cat the the the"
    assert index.most_similar(candidate) == reference_most_similar(
        candidate, ["the the the the cat"]
    )


def _random_corpus(rng: random.Random, size: int) -> list[str]:
    """Texts from a 40-word vocabulary with a few long ones and many near-duplicates."""
    vocab = [f"w{i}" for i in range(40)] + ["the", "a", "of"] * 5
    texts: list[str] = []
    for _ in range(size):
        if texts and rng.random() < 0.3:
            words = rng.choice(texts).split()
            for _ in range(rng.randint(1, 3)):
                if words and rng.random() < 0.5:
                    del words[rng.randrange(len(words))]
                else:
                    words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
        else:
            length = rng.choice([1, 2, 3, 5, 8, 12, 20, 40, 300])
            words = [rng.choice(vocab) for _ in range(length)]
        texts.append(" ".join(words))
    return texts


def _brute_force_kept(texts: list[str], threshold: float) -> list[tuple[bool, float, int]]:
    """The greedy rule with rouge_l_f (itself checked against rouge-score above)."""
    kept_tokens: list[list[str]] = []
    kept_index: list[int] = []
    out = []
    for text in texts:
        tokens = tokenize(text)
        best, best_i = 0.0, -1
        for j, other in enumerate(kept_tokens):
            score = rouge_l_f(tokens, other)
            if score > best:
                best, best_i = score, j
        similar = best > threshold
        out.append((not similar, best, best_i) if similar else (True, 0.0, -1))
        if not similar:
            kept_tokens.append(tokens)
            kept_index.append(len(kept_index))
    return out


def _fast_kept(texts: list[str], threshold: float) -> list[tuple[bool, float, int]]:
    index = RougeIndex(threshold)
    out = []
    for text in texts:
        found = index.find_similar(text)
        if found is None:
            index.add(text)
            out.append((True, 0.0, -1))
        else:
            out.append((False, *found))
    return out


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.85])
def test_many_texts_across_rebuilds(threshold: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rouge_index, "_FIRST_REBUILD", 8)  # rebuilds at 8, 32, 128 kept texts...
    texts = _random_corpus(random.Random(threshold), 700)
    assert _fast_kept(texts, threshold) == _brute_force_kept(texts, threshold)


def test_saturated_lengths_and_tuple_sequences(monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts longer than the packed length field, over the code-point vocabulary limit, and
    every posting sorted and bisected."""
    monkeypatch.setattr(rouge_index, "_CAP", 7)
    monkeypatch.setattr(rouge_postings, "_MAX_CODE_POINT", 30)
    monkeypatch.setattr(rouge_postings, "SORT_MIN", 1)
    monkeypatch.setattr(rouge_postings, "_STARTS_MAX", 5)
    texts = _random_corpus(random.Random(1), 400)
    assert _fast_kept(texts, 0.7) == _brute_force_kept(texts, 0.7)
    index = RougeIndex()
    for text in texts[:60]:
        index.add(text)
    for candidate in texts[60:80]:
        assert index.most_similar(candidate) == reference_most_similar(candidate, texts[:60])


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.5, 0.7, 0.77, 0.99, 1.0])
def test_integer_bounds_match_their_definitions(threshold: float) -> None:
    bounds = rouge_bounds.Bounds(threshold)
    margin = Fraction(threshold) - Fraction(1, 10**9)  # t'
    for s in range(1, 120):  # need(s): least L >= 1 with 2L > t' * s
        assert bounds.need(s) == next(L for L in range(1, s + 2) if margin * s < 2 * L)
    for v in range(1, 40):  # max_total(v): largest s with need(s) <= v (unbounded at t=0)
        top = bounds.max_total(v)
        if margin <= 0:
            assert top >= 2**40
        else:
            assert bounds.need(top) <= v < bounds.need(top + 1)
    for m in range(1, 40):
        admissible = [n for n in range(1, 200) if bounds.need(m + n) <= min(m, n)]
        shortest = min(admissible, default=m + 1)
        assert bounds.shortest_partner(m) == shortest
        expected_prefix = m - bounds.need(m + shortest) + 1 if admissible else 0
        assert bounds.prefix_len(m) == expected_prefix
        assert 0 <= bounds.short_len(m) <= bounds.core_len(m) <= bounds.prefix_len(m)


def test_batched_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates verified in one rapidfuzz call and numpy, as for large candidate sets."""
    monkeypatch.setattr(rouge_index, "_BATCH", 0)
    texts = _random_corpus(random.Random(2), 400)
    assert _fast_kept(texts, 0.7) == _brute_force_kept(texts, 0.7)


def test_vectorized_fmeasure_is_bit_equal() -> None:
    for m in range(1, 40):
        pairs = [(lcs, n) for n in range(1, 40) for lcs in range(min(m, n) + 1)]
        lcs, n = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        expected = [fmeasure(a, b, m) for a, b in pairs]
        assert rouge_score.fmeasures(lcs, n, m).tolist() == expected


def test_rouge_novelty_filter() -> None:
    novelty = RougeNovelty(threshold=0.7)
    assert novelty.name == "rouge"
    assert novelty.filter("Write a poem about the sea.") is None
    novelty.index.add("Write a poem about the sea.")
    drop = novelty.filter("write a poem about the sea")
    assert drop == Drop(
        "rouge_similar", {"score": 1.0, "most_similar": "Write a poem about the sea."}
    )
    assert novelty.filter("Summarize this article in two sentences.") is None
    assert len(novelty.index) == 1  # filter never adds


def test_rouge_novelty_judge_gives_the_drop_and_the_nearest() -> None:
    novelty = RougeNovelty(threshold=0.7, floor=0.3)
    assert novelty.judge("Write a poem about the sea.") == (None, Nearest(0.0, -1, True))
    assert novelty.add("Write a poem about the sea.") == 0
    drop, nearest = novelty.judge("write a poem about the sea")
    assert drop == novelty.filter("write a poem about the sea")
    assert drop == Drop(
        "rouge_similar", {"score": 1.0, "most_similar": "Write a poem about the sea."}
    )
    assert nearest == Nearest(1.0, 0, True)
    drop, nearest = novelty.judge("Write a story about the sea.")  # F = 5/6 > 0.7
    assert drop is not None and nearest == Nearest(5 / 6, 0, True)
    drop, nearest = novelty.judge("Write a long essay on the sea.")  # F = 4/7: novel, exact
    assert drop is None and nearest == Nearest(fmeasure(4, 6, 7), 0, True)
    drop, nearest = novelty.judge("Summarize this article in two sentences.")
    assert drop is None and nearest == Nearest(0.0, -1, False)  # below the floor
    assert len(novelty.index) == 1  # judge never adds


# -- nearest neighbour without a full scan ---------------------------------------------------

floors = st.sampled_from([0.0, 0.2, 0.3, 0.5, 0.7])


@FAST
@given(st.lists(any_texts, max_size=25), any_texts, thresholds, floors)
def test_nearest_is_exact_above_the_floor(
    kept: list[str], candidate: str, threshold: float, floor: float
) -> None:
    index = RougeIndex(threshold, floor)
    for text in kept:
        index.add(text)
    expected = reference_most_similar(candidate, kept)
    score, nearest, exact = index.nearest(candidate)
    assert index.counts.scanned == 0
    trivial = index.floor == 0.0 or not kept or not tokenize(candidate)  # max F 0 is exact
    assert exact is (expected[0] > index.floor or trivial)
    if exact:
        assert (score, nearest) == expected
    else:  # a lower bound, from a real kept text
        assert score <= expected[0] <= index.floor
        assert nearest < 0 or reference_f(candidate, kept[nearest]) == score
    # the decision is the same as without a floor
    assert index.is_novel(candidate) is (expected[0] <= threshold)


def _synthetic_instructions(rng: random.Random, count: int) -> list[str]:
    """Instruction-like texts: a verb, then 3-9 words, 40% from 10 glue words and the rest
    from 3,000 content words of Zipf-like frequency (so common words are very common)."""
    verbs = ["write", "explain", "list", "describe", "summarize", "classify", "give", "find"]
    glue = ["the", "a", "of", "to", "in", "for", "and", "with", "about", "on"]
    nouns = [f"n{i}" for i in range(3000)]
    weights = list(np.cumsum([1 / (i + 1) for i in range(len(nouns))]))
    texts = []
    for _ in range(count):
        size = rng.randint(3, 9)
        content = rng.choices(nouns, cum_weights=weights, k=size)
        words = [rng.choice(verbs)]
        words += [rng.choice(glue) if rng.random() < 0.4 else word for word in content]
        texts.append(" ".join(words))
    return texts


def test_nearest_at_100k_kept_texts_verifies_few_of_them() -> None:
    """The pipeline's case: 100K kept instructions, then novel candidates' nearest kept
    text. Exact above the floor, with a small number of exact LCS computations each."""
    rng = random.Random(10)
    index = RougeIndex(0.7, floor=0.5)
    for text in _synthetic_instructions(rng, 100_000):
        index.add(text)
    queries = _synthetic_instructions(random.Random(11), 200)
    before = index.counts.lcs, index.counts.candidates
    results = [index.nearest(query) for query in queries]
    lcs = index.counts.lcs - before[0]
    candidates = index.counts.candidates - before[1]
    assert index.counts.scanned == 0
    assert lcs / len(queries) < 500  # ~100 here; a full scan would be 100,000
    assert candidates / len(queries) < 3_000  # ~600 here
    assert sum(result.exact for result in results) > len(queries) // 2
    for query, result in zip(queries[:20], results[:20], strict=True):
        score, nearest = index.most_similar(query)  # a full scan, the reference here
        if result.exact:
            assert (result.score, result.index) == (score, nearest)
        else:
            assert result.score <= score <= 0.5
