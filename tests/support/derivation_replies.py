"""The scripted teacher's answers for the derivation stages (evolve, paraphrase, invert).

:class:`~tests.support.scripted_teacher.SelfInstructResponder` dispatches here on the
``X-Selfinstruct-Stage`` header. The task being rewritten is read from the prompt (its
``#Given Prompt#:`` or ``Task:`` line); each reply is drawn from an RNG seeded by the request,
and some are bad on purpose so that every elimination rule and filter gets exercised:

* ``evolve``: a refusal, a copy of the task (no information gain), a reply that copies the
  prompt's words, a near-copy (ROUGE-L), a too-short one, else a new, longer task that keeps
  the task's first words (sometimes after a chat preamble);
* ``paraphrase``: a numbered list of k paraphrases, the first a near-copy (over the loose
  threshold), the others reworded enough to be kept;
* ``invert``: a refusal, one naming "the inverse task", else a natural new instruction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

WORDS = (
    "lantern", "harbor", "cobalt", "meadow", "quartz", "falcon", "sonnet", "tundra", "ember",
    "violin", "ledger", "orchard", "beacon", "mosaic", "glacier", "prairie", "reactor", "nectar",
    "compass", "fjord", "saddle", "pylon", "raven", "walnut", "thistle", "estuary", "grotto",
    "cipher", "delta", "zephyr", "kiosk", "axle", "opal", "bramble", "geyser", "nomad",
)  # fmt: skip
SYNONYMS = ("Describe", "Explain", "Summarize", "Outline", "Discuss", "Present")


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _last(pattern: str, prompt: str) -> str:
    found = re.findall(pattern, prompt, flags=re.MULTILINE)
    return found[-1].strip() if found else "Describe the task"


def evolve(prompt: str, rng: random.Random) -> str:
    given = _last(r"#Given Prompt#:[ \t]*(.*)$", prompt)
    head = " ".join(given.rstrip(".?!").split()[:3])
    roll = rng.random()
    if roll < 0.08:
        return "I'm sorry, but I cannot make this task any harder."
    if roll < 0.16:
        return given
    if roll < 0.24:
        return f"#Rewritten Prompt#: {given.rstrip('.')} using {_phrase(rng, 6)} as a guide."
    if roll < 0.32:
        return given.rstrip(".?!") + " briefly."
    if roll < 0.36:
        return "Make it harder."
    task = f"{head} {_phrase(rng, 8)}, and justify each step with {_phrase(rng, 5)}."
    return f"Sure! Here is the rewritten prompt:\n\n{task}" if roll < 0.5 else task


def paraphrase(prompt: str, rng: random.Random) -> str:
    given = _last(r"^Task:[ \t]*(.*)$", prompt)
    asked = re.search(r"(\d+) (?:paraphrases|other ways)", prompt)
    k = int(asked.group(1)) if asked else 3
    words = given.rstrip(".?!").split()
    rest = " ".join(words[1:])
    items = [f"Please {given[:1].lower()}{given[1:]}"]  # a near-copy: over the loose threshold
    for number in range(1, k):
        verb = SYNONYMS[(number + rng.randrange(len(SYNONYMS))) % len(SYNONYMS)]
        if number % 2:
            items.append(f"Could you {verb.lower()} {rest}?")
        else:
            items.append(f"I would like you to {verb.lower()} {rest}, please.")
    if prompt.rstrip().endswith("1."):  # a completions prompt opened item 1
        return " " + "\n".join(
            item if number == 0 else f"{number + 1}. {item}" for number, item in enumerate(items)
        )
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))


def invert(prompt: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return "Sorry, I cannot turn this task around."
    if roll < 0.2:
        return f"Write the inverse task of the {_phrase(rng, 4)} example."
    return f"Given the answer below, write the {_phrase(rng, 7)} request that it answers."


#: stage -> (prompt, rng) -> reply text
DERIVATION_REPLIES: dict[str, Callable[[str, random.Random], str]] = {
    "evolve": evolve,
    "paraphrase": paraphrase,
    "invert": invert,
}
