"""Root verb and its direct-object noun of an instruction, by an offline word-list heuristic.

The Self-Instruct paper (Figure 2) parses each instruction with the Berkeley Neural Parser and
takes the verb closest to the root and its first direct noun object. No parser model is
available offline here, so this module approximates it with word lists:

1. Split the instruction into sentences (at ``.``, ``!``, ``?``, ``;`` or a newline) and
   look at them in order until one gives a verb.
2. In a sentence, drop polite or framing openers (``please``, ``can you``, ``I want you to``,
   ``your task is to``, ``help me`` ...), and a leading subordinate clause up to its first
   comma (``Given a list of numbers, find ...``, ``If ..., ``, ``Using ..., ``).
3. The verb is the first word left if it is in :data:`VERBS` (about 250 common imperative
   verbs; a few phrasal verbs such as ``come up with`` count as one). A sentence that
   starts with a question word or auxiliary (``what``, ``how``, ``is``, ``does`` ...) is a
   *question*; anything else gives no verb.
4. The noun is the head of the first noun phrase after the verb: skip determiners,
   pronouns, numbers and adjectives (a word list plus the suffixes ``-ous -ful -ive -able
   -ible -ical -est -less``), take the following words up to a preposition, conjunction,
   relative or question word, ``-ing``/``-ly`` word or punctuation, and keep the last of
   them (``a Python function that ...`` -> ``function``). Plurals are reduced by suffix
   rules (``stories`` -> ``story``, ``sentences`` -> ``sentence``).

Limits: words that are both nouns and verbs are read as verbs when they come first
(``Answer the question`` is right, ``Rate ...`` too, but a sentence starting with a noun such
as ``List of ...`` is read as the verb *list*); verbs missing from the list and imperatives
buried after a long preamble give no verb; compound heads can pick the wrong word
(``a cover letter`` -> ``letter`` is right, ``a Python script file`` -> ``file`` is not what a
parser would say); plural reduction is a handful of suffix rules, not a lemmatizer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

QUESTION = "(question)"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


VERBS = _words(
    """
    act add address adjust advertise advise analyse analyze annotate announce answer
    apologize apply arrange articulate ask assess assign assume bake balance boil brainstorm
    break build calculate capitalize carry categorise categorize change check choose cite
    clarify classify clean close coach code collect combine come compare compile complete
    compose compress compute conclude condense construct continue contrast convert convince
    cook copy correct count craft create critique debug decide decode decrypt define delete
    demonstrate derive describe design detect determine develop devise diagnose discuss
    distinguish divide document draft draw edit elaborate eliminate encode encrypt enumerate
    estimate evaluate examine expand explain explore express extract figure fill find finish
    fix flag follow format formulate gather generate get give group guess guide help
    highlight hint identify illustrate imagine implement improve include indicate infer
    insert interpret introduce invent investigate invite join judge justify keep label
    lengthen list locate look make manage map mark match measure mention merge modify name
    narrate normalize note offer optimize order organise organize outline output paraphrase
    parse perform persuade pick pitch plan play point polish predict prepare present pretend
    print prioritize produce program promote pronounce proofread propose prove provide
    publish pull put quote rank rate read rearrange recall recite recognize recommend record
    reduce refactor reformat refute remove render reorder rephrase replace reply report
    represent request research resolve respond restate restructure retell return reverse
    review revise reword rewrite rhyme roleplay round route say scale schedule score search
    select sell send separate set shorten show shuffle simplify simulate sketch solve sort
    specify spell split start state suggest sum summarise summarize supply support swap tag
    take talk tell test think tidy train transcribe transform translate trim turn underline
    unscramble update use validate verify visualize work write
    """
)

# Phrasal verbs counted as one verb: first word -> the particles that may follow it.
PHRASAL: dict[str, tuple[tuple[str, ...], ...]] = {
    "boil": (("down",),),
    "break": (("down",),),
    "carry": (("out",),),
    "come": (("up", "with"),),
    "figure": (("out",),),
    "fill": (("in",), ("out",)),
    "find": (("out",),),
    "list": (("out",),),
    "look": (("up",),),
    "make": (("up",),),
    "point": (("out",),),
    "pull": (("out",),),
    "put": (("together",),),
    "set": (("up",),),
    "sum": (("up",),),
    "think": (("of",), ("about",)),
    "work": (("out",),),
    "write": (("down",), ("out",)),
}

QUESTION_WORDS = _words(
    """
    what how why who whom whose when where which is are was were am do does did can could
    should would will shall may might has have had
    """
)

FILLERS = _words(
    "please kindly now then also just simply briefly quickly first next finally so ok okay and"
)

# Openers dropped before the verb, longest first.
OPENERS = tuple(
    tuple(opener.split())
    for opener in sorted(
        [
            "can you", "could you", "would you", "will you", "would you please",
            "i want you to", "i would like you to", "i need you to", "i'd like you to",
            "you need to", "you should", "you must", "you have to", "you will", "you are to",
            "your task is to", "the task is to", "your job is to", "the goal is to",
            "help me", "help me to", "let's", "let us", "try to", "be sure to",
            "make sure to", "remember to", "i want to", "i need to",
        ],
        key=lambda text: -len(text.split()),
    )
)  # fmt: skip

# A leading clause of these is skipped up to its first comma.
CLAUSE_STARTS = _words(
    "given if for using based assuming in from as with after before considering "
    "starting suppose imagine when"
)

DETERMINERS = _words(
    """
    a an the this that these those some any each every all few several many more most much
    me us him her them it my your our their its his one two three four five six seven eight
    nine ten eleven twelve twenty hundred thousand first second third another other such
    both either neither no own i you we they she he
    """
)

ADJECTIVES = _words(
    """
    following given short long new good best better simple brief creative funny different
    possible main top random unique appropriate suitable correct interesting original
    detailed catchy fictional hypothetical famous popular common single multiple same
    similar specific particular proper personal professional formal informal positive
    negative healthy clear concise complete full quick small large big great little old
    young high low key basic general important real sample example fun cool nice short
    unusual appropriate relevant main whole entire next last final previous certain
    various related potential alternative persuasive informative descriptive
    """
)

STOPS = _words(
    """
    of to in on at for about with by from into onto over under between among through as
    than and or but nor so yet that which who whom whose what why how when where whether
    if is are was were be been being will would can could should may might must do does
    did has have had not based using yes
    """
)

# Nouns that end in -ly, so are not taken for adverbs.
LY_NOUNS = _words(
    "reply family assembly supply butterfly monopoly anomaly rally jelly belly ally italy july "
    "bully melody comedy remedy strategy poetry"
)

_ADJ_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "ical", "est", "less")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*(?:%|(?:-[a-z]+)+)?|[a-z0-9]+(?:['’-][a-z0-9]+)*|[^\sa-z0-9]")
_NUMBER_WORDS = _words(
    "one two three four five six seven eight nine ten eleven twelve twenty hundred thousand "
    "half single double"
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_NOUN_WINDOW = 6
_INVARIANT = _words("news series species means lens gas canvas alias atlas chaos")
_LEADING_MARKS = frozenset(",$'\"(")


@dataclass(frozen=True)
class VerbNoun:
    """``verb`` is a verb from :data:`VERBS`, :data:`QUESTION`, or None; ``noun`` may be None.

    For a question, ``noun`` is its opening word (``what``, ``how``, ``is`` ...)."""

    verb: str | None
    noun: str | None = None


def tokens(text: str) -> list[str]:
    """Lowercased words (with inner apostrophes and hyphens) and punctuation marks."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def singular(word: str) -> str:
    """A plural noun reduced by suffix rules (not a lemmatizer)."""
    if len(word) <= 3 or not word.endswith("s") or word in _INVARIANT:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is", "ics", "ous", "'s")):
        return word
    return word[:-1]


def _is_adjective(word: str) -> bool:
    return word in ADJECTIVES or (len(word) > 5 and word.endswith(_ADJ_SUFFIXES))


def _is_number(word: str) -> bool:
    return word[0].isdigit() or word.split("-")[0] in _NUMBER_WORDS


def _strip_openers(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        while words and words[0] in FILLERS:
            words = words[1:]
            changed = True
        for opener in OPENERS:
            if tuple(words[: len(opener)]) == opener:
                words = words[len(opener) :]
                changed = True
                break
    return words


def _skip_clause(words: list[str]) -> list[str]:
    if words and words[0] in CLAUSE_STARTS and "," in words:
        return words[words.index(",") + 1 :]
    return words


def _is_adverb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ly") and "-" not in word and word not in LY_NOUNS


def _noun_after(words: list[str]) -> str | None:
    """Head of the first noun phrase in ``words`` (see the module docstring)."""
    phrase: list[str] = []
    for word in words[:_NOUN_WINDOW]:
        if not phrase:
            if word in _LEADING_MARKS or word in DETERMINERS or _is_number(word):
                continue
            if _is_adjective(word) or _is_adverb(word):
                continue
            if word.endswith("ed") and len(word) > 4:
                continue
        if not word[0].isalnum() or word in STOPS or word in DETERMINERS or _is_adverb(word):
            break
        if phrase and word.endswith(("ing", "ed")):
            break
        phrase.append(word)
    heads = [word for word in phrase if not _is_adjective(word) and not _is_number(word)]
    if not heads:
        return None
    return singular(heads[-1])


def _phrasal(verb: str, rest: list[str]) -> tuple[str, list[str]]:
    """``verb`` with its particles (``come up with``) and the words after them."""
    for particles in PHRASAL.get(verb, ()):
        if tuple(rest[: len(particles)]) == particles:
            return " ".join((verb, *particles)), rest[len(particles) :]
    # "find and fix the bug": the object belongs to both verbs
    if len(rest) > 1 and rest[0] in ("and", "or") and rest[1] in VERBS:
        return verb, rest[2:]
    return verb, rest


def verb_noun(instruction: str) -> VerbNoun:
    """The instruction's root verb and direct-object noun, by the heuristic above."""
    for sentence in _SENTENCE.split(instruction):
        words = _strip_openers(_skip_clause(_strip_openers(tokens(sentence))))
        if not words:
            continue
        first = words[0]
        if first in VERBS:
            verb, rest = _phrasal(first, words[1:])
            return VerbNoun(verb, _noun_after(rest))
        opener = first.split("'")[0]  # what's -> what
        if opener in QUESTION_WORDS:
            return VerbNoun(QUESTION, opener)
    return VerbNoun(None)


@dataclass
class VerbNounTable:
    """Counts over many instructions: verbs, nouns per verb, questions and unparsed ones."""

    total: int
    verbs: Counter[str]
    nouns: dict[str, Counter[str]]
    questions: Counter[str]
    unparsed: int

    def top(self, verbs: int = 20, nouns: int = 4) -> list[tuple[str, int, list[tuple[str, int]]]]:
        """``[(verb, count, [(noun, count), ...]), ...]`` for the most common verbs."""
        return [
            (verb, count, self.nouns[verb].most_common(nouns))
            for verb, count in self.verbs.most_common(verbs)
        ]


def verb_noun_table(instructions: Iterable[str]) -> VerbNounTable:
    verbs: Counter[str] = Counter()
    nouns: dict[str, Counter[str]] = {}
    questions: Counter[str] = Counter()
    unparsed = total = 0
    for text in instructions:
        total += 1
        found = verb_noun(text)
        if found.verb is None:
            unparsed += 1
        elif found.verb == QUESTION:
            questions[found.noun or "?"] += 1
        else:
            verbs[found.verb] += 1
            bucket = nouns.setdefault(found.verb, Counter())
            if found.noun is not None:
                bucket[found.noun] += 1
    return VerbNounTable(total, verbs, nouns, questions, unparsed)
