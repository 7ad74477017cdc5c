"""Benchmark the exact ROUGE-L dedup against the reference method (Alpaca's).

    python bench/dedup.py [--corpus PATH] [--field instruction] [--reference-prefix 2000]
                          [--rows 30000] [--scale 100000,1000000] [--seed 0]

1. Reference vs fast on the same prefix: rouge-score's ``_score_lcs`` against every kept
   row (what Alpaca's ``generate_instruction.py`` does, in one process) and
   ``RougeIndex``; the kept sets must be IDENTICAL (exit 1 otherwise).
2. The fast index on the whole corpus (rows/s).
3. Scaling: the fast index on synthetic corpora of the sizes in ``--scale`` (time, peak
   memory of the index in that run).

Without ``--corpus`` the corpus is synthetic: instruction-like sentences from templates, a
Zipf-weighted vocabulary, a long tail of made-up names, and near-duplicates made by editing
earlier rows (synonyms, dropped/inserted words, changed numbers), all from a seeded RNG.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rouge_score import rouge_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selfinstruct.datafiles import iter_rows
from selfinstruct.dedup import field_text
from selfinstruct.filters.rouge import RougeIndex

# -- the synthetic corpus -------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


NOUNS = _words("""
account actor adventure advice age airport album algorithm animal answer apartment app
apple architect army art article artist assignment atom audience author award baby
backpack bakery balloon banana band bank battery beach bean bear bed bee bicycle bill bird
birthday blanket blog boat body book border bottle box brain bread bridge brother browser
budget bug building bus business butterfly button cabin cake calendar camera campaign
candle candidate canyon car card career carpet castle cat cathedral cell chair champion
channel chapter character cheese chef chemical chess child chocolate choir church cinema
circle city class classroom client climate clock cloud club coach coast coffee coin
college colony comedy comet command committee community company compass competition
computer concert conference contract cookie country course court cousin cow crew crime
crop crowd culture cup currency customer cycle dam dance database daughter debate decision
degree dentist desert design dessert device diagram diet dinner dinosaur director disease
doctor document dog dolphin door dragon drawing dream dress drink driver drum eagle earth
earthquake economy editor egg election electricity elephant email emergency employee
engine engineer environment equation error essay event exam exercise experiment expert
factory family farm farmer fashion feather festival field film finger fire fish flag
flight flood floor flower flute folder forest fork fossil fountain fox friend frog fruit
function furniture galaxy game garage garden gate gene ghost gift giraffe glacier glass
goal gold government grammar grandmother graph grass guitar habit hammer harbor harvest
hat health heart helicopter hero highway history hobby holiday honey horse hospital hotel
house hurricane idea insect instrument interview invention island jacket jewel job joke
journal journey judge jungle kangaroo key keyboard king kitchen kite knife knight ladder
lake lamp language laptop law lawyer leader leaf lecture lemon lesson letter library lion
list lizard lock machine magazine magnet manager map market marriage meal medicine meeting
melody memory menu message metal method microscope migration mirror model molecule money
monkey moon mountain mouse movie muscle museum mushroom music mystery nation neighbor
nest network newspaper night novel nurse ocean octopus office onion opera orange orchestra
owl oxygen package painter painting palace pancake paper parade parent park parrot party
passenger password pattern peace pen pencil penguin pepper phone photo physics piano
picnic pilot pirate pizza planet plant plastic player playground poem poet police policy
pollution pond population potato president printer prison problem professor program
project protein puzzle pyramid queen question rabbit radio railway rain recipe refrigerator
religion report restaurant review revolution rice river road robot rocket roof room rose
rule sailor salad sandwich satellite scarf school science scientist season secret seed
sensor server shadow shark sheep ship shoe shop singer sister skeleton sky slogan snake
snow soccer software soil soldier song soup spaceship speech spider spoon sport spring
stadium star statue storm story strategy street student submarine subway sugar suitcase
summer sun supermarket surgeon survey sweater symphony table tablet teacher team
technology telescope temple tennis tent theater theory ticket tiger tomato tool tooth
tornado tourist tower town toy tractor tradition traffic train treasure tree trip truck
tunnel turtle umbrella universe university vaccine valley vegetable vehicle village
violin virus volcano volunteer wallet war warrior watch water wave weather website
wedding whale wheel wind window winter wizard wolf worker workshop writer yard zebra zoo
""")
ADJS = _words("""
abandoned ancient angry anxious artificial automatic average beautiful best big bitter
bizarre blue brave brief bright brilliant broken busy calm careful cheap cheerful chemical
classic clean clever cold colorful comfortable common complex confident cozy crazy
creative crowded cruel curious cute dangerous dark deep delicious difficult digital dirty
distant domestic dramatic dry dusty eager early easy efficient elegant empty endless
enormous entire environmental essential exciting expensive experimental famous fancy fast
fictional financial flexible foreign formal fragile free fresh friendly frozen funny
future generous gentle giant global golden good graceful green grumpy happy hard
healthy heavy helpful hidden historical hollow honest hot huge humble hungry icy
imaginary important independent industrial informal innocent intelligent interesting
invisible jealous joyful kind large lazy legal little local lonely long loud lovely
lucky magical main medical medieval mental mighty modern musical mysterious narrow
national natural nervous new noisy normal old online orange organic original outdoor
peaceful perfect personal persuasive pink plastic playful polite political popular
positive powerful practical precious private professional proud public purple quick
quiet rare raw real red regional remote rich romantic rough round rural sad safe salty
scary scientific secret serious sharp short shy silent silly simple sleepy slow small
smart smooth social soft solar sour spicy square strange strict strong successful
sudden sunny super sweet tall technical temporary tiny traditional tropical typical ugly
unique unusual urban useful vast virtual visual warm weak wealthy weird wet white wild
wise wooden yellow young
""")
VERBS = _words("""
analyze answer arrange bake balance borrow build calculate carry change choose clean climb
collect compare compose count create cut decorate defend deliver describe design destroy
develop discover draw drive earn eat explain explore feed fill find fix fly follow grow
guess help hide identify imagine improve invent join judge keep kick learn lift listen
manage measure mix move observe open organize paint pick plan plant play predict prepare
protect publish push read recommend repair replace rescue review ride save sell send
share shop sing solve sort steal study summarize support teach test throw track train
translate travel trust understand update visit wash watch win write
""")


def _phrases(text: str) -> list[str]:
    return [" ".join(phrase.split()) for phrase in text.split("|")]


PREPS = _words("in on near under behind inside beside across from with without for during after")
SLOT_WORDS = {
    "prep": PREPS,
    "genre": _words("""poem story essay haiku limerick song review letter speech dialogue report
        blog post tweet riddle fable sonnet ballad script summary recipe advertisement"""),
    "aud": _words("""children teenagers beginners experts parents engineers teachers tourists
        students scientists investors nurses farmers retirees programmers"""),
    "lang": _words("French Spanish German Italian Japanese Chinese Portuguese Russian Korean"),
    "code_lang": _words("Python JavaScript Java C++ Go Rust SQL Ruby TypeScript Bash PHP Kotlin"),
    "code_verb": _words("returns computes counts finds checks sorts removes reverses merges"),
    "cverb": _words("return compute count find check sort remove reverse merge convert"),
    "code_obj": _phrases(
        """the largest element|the number of vowels|the factorial|the average value|all prime
        numbers|the longest word|duplicate entries|the sum of even numbers|the median|the
        second smallest value|every palindrome|the total number of lines"""
    ),
    "code_in": _phrases(
        """a list of integers|a string|two sorted arrays|a dictionary|a text file|a matrix|a
        linked list|a binary tree|a CSV file|a JSON object|a sentence|a URL"""
    ),
    "pron": ["he", "she", "they"],
}
TASKS = [
    "Write a {adj} {genre} about {topic}.",
    "Write a {genre} that explains {topic} to {aud}.",
    "Generate a list of {n} {nps} that {verb} {np}.",
    "Explain {topic} to {aud}.",
    "Explain why {nps} {verb} {nps2}.",
    "Compare {np} and {np2} in terms of {nps}.",
    "Given {np}, {verb} {np2} that {verb2}s {np3}.",
    "{Verb} {np} for {np2} {prep} {place}.",
    "Translate the following {genre} about {topic} into {lang}.",
    "Give me {n} tips for {vbg} {np}.",
    "Classify the following {nps} as {adj} or {adj2}.",
    "Summarize the main arguments for {vbg} {nps}.",
    "Describe {np} in {n} sentences.",
    "Suggest {n} names for {np} that {verb2}s {nps}.",
    "Rewrite the following sentence about {topic} to sound more {adj}.",
    "Create a {adj} slogan for {np} in {place}.",
    "Make a plan to {verb} {np} before {np2} {verb2}s.",
    "Find the {adj}est {noun} in the following list of {nps}.",
    "Tell me about {topic}.",
    "List the pros and cons of {vbg} {np}.",
    "Design a {adj} experiment to test whether {nps} {verb} {nps2}.",
    "Come up with {n} questions to ask {name} about {topic}.",
    "Outline a {n}-step guide for {vbg} {np} {prep} {np2}.",
    "Propose a {adj} solution for {np} that {verb2}s {nps}.",
    "Identify the {noun} of {np} and explain its role in {topic}.",
    "Draft an email to {name} asking about {topic}.",
    "Predict what happens when {np} {verb2}s {np2}.",
    "Detect whether the following {genre} is {adj} or {adj2}.",
]
QUESTIONS = [
    "What is the {adj}est way to {verb} {np}?",
    "Why do {nps} {verb} {nps2}?",
    "How can I {verb} {np} without {vbg} {np2}?",
    "Where is the best place to {verb} {nps} in {place}?",
    "Who was the first person to {verb} {np}?",
    "What are the main differences between {nps} and {nps2}?",
    "Is it {adj} to {verb} {np} {prep} {np2}?",
    "When should I {verb} {np}?",
    "How does {np} affect {topic}?",
    "What would happen if {nps} could {verb} {nps2}?",
    "Which {noun} is more {adj}: {np} or {np2}?",
    "How do I {verb} {np} for {aud}?",
]
WORD_PROBLEMS = [
    "{Name} has {n} {nps}. {Name2} gives {name} {n2} more {nps2} from {np}. How many {nps} "
    "and {nps2} does {name} have now?",
    "{Name} buys {n} {nps} for {n2} dollars each at {np} in {place} and sells them for {n3} "
    "dollars each. How much profit does {pron} make?",
    "A {noun} in {place} holds {n} {nps}. If {n2} of them {verb} {np} every day, how many "
    "days until the {noun} is empty?",
    "{Name} is {n} years old and {verb}s {nps}. {Name2} is {n2} years older than {name}. How "
    "old will {name2} be in {n3} years?",
    "There are {n} {nps} in {np}. {Name} {verb}s {n2} of them and {name2} {verb2}s {n3} "
    "{prep} {np2}. How many are left?",
]
CODE_TASKS = [
    "Write a {code_lang} function that takes {code_in} of {nps} and {code_verb} {code_obj}.",
    "Implement a {code_lang} program to {cverb} {code_obj} of the {nps} in {code_in}.",
    "Fix the bug in this {code_lang} code that should {cverb} {code_obj} for {np}.",
    "How would you {cverb} {code_obj} of {code_in} describing {nps} in {code_lang}?",
    "Create a {code_lang} class for {np} with a method that {code_verb} {code_obj}.",
]
ROLEPLAYS = [
    "You are {np} from {place}. {Verb} {np2} and explain how you would {verb2} {np3}.",
    "Pretend to be {name}, a {adj} {noun}. Tell {aud} about {topic}.",
    "Imagine you are {vbg} {np} in {place}. Describe what you see.",
]
OPENERS = ["", "", "", "", "Please ", "Can you ", "I want you to ", "Your task is to ",
           "Quickly ", "Now "]  # fmt: skip
TAILS = [
    " Use no more than {n} words.", " Keep it {adj}.", " Make it suitable for {aud}.",
    " Include at least {n} examples.", " Answer in {lang}.", " Use a {adj} tone.",
    " Explain your reasoning.", " Format the answer as a table.", " Do not mention {np}.",
    " Focus on {np}.", " Start with a {adj} title.",
]  # fmt: skip
SYLLABLES = _words("""ka lo mi ra ven tor sel an bri do fe gan hu is jo ke lu mar nor pe qui ros su
ti zel vo ha ny em ul ar""")
SYNONYMS = {
    "write": "compose", "generate": "create", "list": "enumerate", "explain": "describe",
    "give": "provide", "find": "identify", "short": "brief", "tips": "suggestions",
    "best": "greatest", "improve": "enhance", "about": "on", "main": "primary",
    "make": "produce", "new": "novel", "create": "design", "big": "large", "small": "little",
}  # fmt: skip
FILLERS = ["please", "briefly", "also", "carefully", "quickly", "now", "really", "just", "the"]
TAIL_WORDS = 60000  # coined nouns (and names); fewer coined adjectives and verbs
ZIPF = 1.1
NAME_ZIPF = 0.8  # names and places: flatter, as in real text
NEAR_DUPLICATES = 0.15  # share of rows that edit an earlier row
EXACT_DUPLICATES = 0.02  # share of rows that repeat an earlier row verbatim


class Synthesizer:
    """Deterministic instruction-like rows (seeded RNG) with realistic near-duplicates.

    Fresh rows come from a small grammar over Zipf-weighted word lists (~600 nouns, ~250
    adjectives, ~130 verbs) plus a long tail of made-up names and places and random
    numbers: tasks, questions, word problems, code requests and role-play prompts. About
    15% of rows are 1-3 word edits of a recent row (synonyms, dropped or inserted words,
    changed numbers and names) and 2% repeat one verbatim.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = rng = random.Random(seed)
        # Common words first, in a seeded random order, then a long tail of coined words,
        # so that the vocabulary grows with the corpus the way real text does (Heaps' law).
        self.nouns = rng.sample(NOUNS, len(NOUNS)) + self._coins(TAIL_WORDS, "")
        self.adjs = rng.sample(ADJS, len(ADJS)) + self._coins(TAIL_WORDS // 4, "ic")
        self.verbs = rng.sample(VERBS, len(VERBS)) + self._coins(TAIL_WORDS // 8, "ate")
        self.names = self._coins(TAIL_WORDS, "", capitalize=True)
        self.places = self._coins(TAIL_WORDS // 2, "", capitalize=True)
        self._cum: dict[tuple[int, float], list[float]] = {}
        self.recent: list[str] = []

    def _coins(self, n: int, suffix: str, *, capitalize: bool = False) -> list[str]:
        words = {self._coin() + suffix for _ in range(n)}
        words = sorted(w.capitalize() if capitalize else w for w in words)
        return self.rng.sample(words, len(words))

    def _coin(self) -> str:
        k = self.rng.choice((2, 3, 3, 3, 4))
        return "".join(self.rng.choice(SYLLABLES) for _ in range(k))

    def z(self, items: list[str], exponent: float = ZIPF) -> str:
        """A Zipf-weighted pick (weight 1/rank**exponent), like word frequencies in text."""
        cum = self._cum.get((len(items), exponent))
        if cum is None:
            weights = ((r + 1) ** -exponent for r in range(len(items)))
            cum = self._cum[len(items), exponent] = list(itertools.accumulate(weights))
        return self.rng.choices(items, cum_weights=cum)[0]

    def fill(self, template: str) -> str:
        """Fill a template's slots; a slot named twice gets the same words both times."""
        return template.format_map(_Slots(self))

    def np(self) -> str:
        """A noun phrase: determiner, 0-2 adjectives, a noun, sometimes a prepositional phrase."""
        rng = self.rng
        words = [rng.choice(("a", "the", "the", "my", "this", "every", "some", "our"))]
        for _ in range(rng.choice((0, 1, 1, 1, 2))):
            words.append(self.z(self.adjs))
        words.append(self.z(self.nouns))
        if rng.random() < 0.3:
            words += [self.z(PREPS), "the", self.z(self.nouns)]
        return " ".join(words)

    def nps(self) -> str:
        adj = self.z(self.adjs) + " " if self.rng.random() < 0.6 else ""
        return adj + self.z(self.nouns) + "s"

    def topic(self) -> str:
        rng, z = self.rng, self.z
        kind = rng.random()
        if kind < 0.3:
            return self.nps()
        if kind < 0.5:
            return f"the {z(self.nouns)} of {self.np()}"
        if kind < 0.7:
            return f"how {self.nps()} {z(self.verbs)} {self.nps()}"
        if kind < 0.85:
            return f"{z(self.verbs)}ing {self.np()} in {z(self.places, NAME_ZIPF)}"
        return f"the history of {self.nps()} in {z(self.places, NAME_ZIPF)}"

    def fresh(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.45:
            text = rng.choice(OPENERS) + self.fill(rng.choice(TASKS))
        elif kind < 0.65:
            text = self.fill(rng.choice(QUESTIONS))
        elif kind < 0.77:
            text = self.fill(rng.choice(WORD_PROBLEMS))
        elif kind < 0.9:
            text = self.fill(rng.choice(CODE_TASKS))
        else:
            text = self.fill(rng.choice(ROLEPLAYS))
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            text += self.fill(rng.choice(TAILS))
        return text

    def edit(self, text: str) -> str:
        """A near-duplicate: 1-3 word-level edits of an earlier row."""
        rng = self.rng
        words = text.split()
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            i = rng.randrange(len(words))
            bare = words[i].strip(".,?").lower()
            if op < 0.3 and bare in SYNONYMS:
                words[i] = SYNONYMS[bare]
            elif op < 0.5 and len(words) > 4:
                del words[i]
            elif op < 0.7:
                words.insert(i, rng.choice(FILLERS))
            elif op < 0.85:
                words[i] = str(rng.randint(2, 99)) if bare.isdigit() else words[i].upper()
            else:
                words[i] = self.z(self.nouns)
        return " ".join(words)

    def rows(self, n: int) -> Iterator[str]:
        """n rows, the same for the same seed."""
        rng, recent = self.rng, self.recent
        for _ in range(n):
            r = rng.random()
            if recent and r < EXACT_DUPLICATES:
                text = rng.choice(recent)
            elif recent and r < EXACT_DUPLICATES + NEAR_DUPLICATES:
                text = self.edit(rng.choice(recent))
            else:
                text = self.fresh()
            if len(recent) < 20000:
                recent.append(text)
            else:
                recent[rng.randrange(20000)] = text
            yield text


class _Slots(dict):
    """Template slots, filled on first use: ``{np}``, ``{np2}``, ``{verb}``, ``{n}``, ..."""

    def __init__(self, synth: Synthesizer) -> None:
        super().__init__()
        self.s = synth

    def __missing__(self, key: str) -> object:
        if key[0].isupper():  # {Name} is {name}, capitalized
            value = str(self[key.lower()])
            return value[:1].upper() + value[1:]
        s, z, rng = self.s, self.s.z, self.s.rng
        base = key.rstrip("0123456789")
        if base == "np":
            value: object = s.np()
        elif base == "nps":
            value = s.nps()
        elif base == "topic":
            value = s.topic()
        elif base == "noun":
            value = z(s.nouns)
        elif base in ("adj", "verb"):
            value = z(s.adjs if base == "adj" else s.verbs)
        elif base == "vbg":
            value = z(s.verbs) + "ing"
        elif base in ("name", "place"):
            value = z(s.names if base == "name" else s.places, NAME_ZIPF)
        elif base == "n":
            value = rng.choice((rng.randint(2, 12), rng.randint(2, 100), rng.randint(2, 1000)))
        else:
            value = z(SLOT_WORDS[base])
        self[key] = value
        return value


# -- the two methods --------------------------------------------------------------------------


def reference_dedup(texts: list[str], threshold: float) -> list[int]:
    """Alpaca's generate_instruction.py rule in one process: rouge-score's ``_score_lcs`` of
    the new text against every kept one, reject iff the maximum F > threshold."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept_tokens: list[list[str]] = []
    kept: list[int] = []
    for i, text in enumerate(texts):
        tokens = scorer._tokenizer.tokenize(text)
        scores = [rouge_scorer._score_lcs(tokens, other).fmeasure for other in kept_tokens]
        if max(scores, default=0.0) <= threshold:
            kept_tokens.append(tokens)
            kept.append(i)
    return kept


def fast_dedup(texts: Iterable[str], threshold: float) -> list[int]:
    index = RougeIndex(threshold)
    kept: list[int] = []
    for i, text in enumerate(texts):
        if index.find_or_add(text) is None:
            kept.append(i)
    return kept


def timed(function: Callable[[], list[int]]) -> tuple[list[int], float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


# -- runs ---------------------------------------------------------------------------------


def load_corpus(path: Path | None, field: str, rows: int, seed: int) -> tuple[str, list[str]]:
    if path is None:
        return f"synthetic (seed {seed})", list(Synthesizer(seed).rows(rows))
    return str(path), [field_text(row, field, path, line) for line, row in iter_rows(path)]


def scale_run(size: int, seed: int, threshold: float) -> dict[str, float]:
    """One scaling point, run in a fresh process so its peak memory is its own."""
    rows = list(Synthesizer(seed).rows(size))
    before = _peak_rss_mb()
    kept, seconds = timed(lambda: fast_dedup(rows, threshold))
    peak = _peak_rss_mb()
    return {"rows": size, "kept": len(kept), "seconds": seconds, "peak_mb": peak,
            "index_mb": peak - before}  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _scale_in_subprocess(size: int, seed: int, threshold: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--scale-one", str(size), "--seed", str(seed),
               "--threshold", str(threshold)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.scale_one:
        print(json.dumps(scale_run(args.scale_one, args.seed, args.threshold)))
        return 0
    name, texts = load_corpus(args.corpus, args.field, args.rows, args.seed)
    prefix = texts[: args.reference_prefix]
    t = args.threshold
    print(f"corpus: {name}, {len(texts):,} rows; threshold {t}; {os.cpu_count()} cores")
    print(f"{'':28}{'rows':>10}{'kept':>10}{'seconds':>10}{'rows/s':>10}")
    ref_kept, ref_s = timed(lambda: reference_dedup(prefix, t))
    _row("reference (rouge-score)", len(prefix), len(ref_kept), ref_s)
    fast_kept, fast_s = timed(lambda: fast_dedup(prefix, t))
    _row("RougeIndex, same prefix", len(prefix), len(fast_kept), fast_s)
    identical = ref_kept == fast_kept
    verdict = "IDENTICAL" if identical else "DIFFERENT"
    print(f"kept sets: {verdict}; speed-up on the prefix: {ref_s / fast_s:,.0f}x")
    whole_kept, whole_s = timed(lambda: fast_dedup(texts, t))
    _row("RougeIndex, whole corpus", len(texts), len(whole_kept), whole_s)
    if args.scale:
        print("scaling (synthetic rows, each size in a fresh process):")
        header = f"{'rows':>10}{'kept':>10}{'seconds':>10}{'rows/s':>10}{'peak MB':>10}"
        print(f"{'':28}{header}{'index MB':>10}")
        for size in args.scale:
            point = _scale_in_subprocess(size, args.seed, t)
            memory = (point["peak_mb"], point["index_mb"])
            _row("RougeIndex", size, int(point["kept"]), point["seconds"], memory)
    return 0 if identical else 1


def _row(label: str, rows: int, kept: int, seconds: float, memory: tuple[float, ...] = ()) -> None:
    line = f"{label:28}{rows:>10,}{kept:>10,}{seconds:>10.2f}{rows / seconds:>10,.0f}"
    print(line + "".join(f"{mb:>10,.0f}" for mb in memory), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="JSONL, JSON list or Parquet file")
    parser.add_argument("--field", default="instruction", help="text field of --corpus rows")
    parser.add_argument("--rows", type=int, default=30000, help="synthetic corpus size")
    parser.add_argument("--reference-prefix", type=int, default=2000)
    parser.add_argument("--scale", type=_sizes, default=[100_000, 1_000_000],
                        help="comma-separated synthetic sizes ('' for none)")  # fmt: skip
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    return parser


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
