"""A scripted teacher for the three Self-Instruct stages, for :class:`ScriptedOpenAIServer`.

It reads the request the way a model would (what does the prompt end with?) and answers in
kind, deterministically (a hash of the request seeds its RNG):

* stage 1 (``Task N:`` continuation or a chat "numbered list" request): new tasks made of
  random words — novel by ROUGE-L — plus, on purpose, a near-copy and a verbatim copy of
  demonstrations, a too-short one, a blacklisted one and a "Write a program" one, so every
  filter gets exercised;
* classification identification (``Is it classification?``): Yes iff the task says "Classify";
* output-first inputs (``Class label:``): two labels with an input each;
* input-first inputs (``Input:``): one or two inputs, sometimes ``<noinput>``;
* outputs (``Output:``, or a chat request that is none of the above): an answer, now and then
  ``N/A`` so the instance filters have something to drop.

Use it as ``ScriptedOpenAIServer(SelfInstructResponder())``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from tests.support.openai_server import Kind, Reply, prompt_text

VERBS = (
    "Explain", "Describe", "Summarize", "List", "Compare", "Rewrite", "Suggest", "Outline",
    "Evaluate", "Translate", "Estimate", "Define", "Critique", "Plan", "Rank", "Invent",
)  # fmt: skip
WORDS = (
    "river", "mountain", "budget", "harvest", "engine", "theory", "garden", "poem", "ledger",
    "orbit", "violin", "recipe", "glacier", "market", "tunnel", "lantern", "protocol", "canyon",
    "festival", "algebra", "copper", "meadow", "sonnet", "harbor", "pigment", "reactor",
    "voyage", "clinic", "quartz", "thimble", "saddle", "archive", "kettle", "meteor", "parable",
    "cipher", "orchard", "beacon", "pendulum", "galaxy", "mosaic", "anthem", "ferry", "walnut",
    "compass", "tariff", "fossil", "legend", "magnet", "nectar", "oyster", "prairie", "quiver",
    "raven", "sapphire", "tundra", "umbrella", "vessel", "wheat", "yeast", "zephyr", "atlas",
    "bramble", "cactus", "dune", "ember", "fjord", "grotto", "hamlet", "iris", "jasmine",
    "kiosk", "lagoon", "marble", "nomad", "opal", "pylon", "quarry", "rapids", "summit",
    "thistle", "utopia", "valley", "willow", "axle", "bison", "cobalt", "delta", "estuary",
    "falcon", "geyser",
)  # fmt: skip
ADJECTIVES = (
    "quiet", "bright", "ancient", "rapid", "gentle", "hidden", "curious", "frozen", "golden",
    "narrow", "distant", "humble", "fragile", "vivid", "brave", "clever", "hollow", "steady",
)  # fmt: skip
LABELS = ("Positive", "Negative", "Neutral")


class SelfInstructResponder:
    """Callable responder: ``(kind, body) -> Reply``. Thread-safe (no shared mutable state)."""

    def __init__(self, classification_share: float = 0.25, tasks_per_reply: int = 8) -> None:
        self.classification_share = classification_share
        self.tasks_per_reply = tasks_per_reply

    def __call__(self, kind: Kind, body: dict[str, Any]) -> Reply:
        prompt = prompt_text(kind, body).rstrip()
        rng = random.Random(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest())
        if re.search(r"Task \d+:$", prompt) or "numbered list" in prompt:
            return self._tasks(prompt, rng, numbered=not prompt.endswith(":"))
        if prompt.endswith("Is it classification?"):
            task = prompt.splitlines()[-2] if len(prompt.splitlines()) > 1 else ""
            return Reply(text=" Yes" if "Classify" in task else " No")
        if prompt.endswith("Class label:"):
            first, second = rng.sample(LABELS, 2)
            text = (
                f" {first}\nInput: {_phrase(rng, 8)}.\n\n"
                f"Class label: {second}\nInput: {_phrase(rng, 9)}."
            )
            return Reply(text=text)
        if prompt.endswith("Input:"):
            if rng.random() < 0.2:
                return Reply(text=" <noinput>")
            return Reply(text=f" {_phrase(rng, 10)}.")
        return self._output(rng)

    def _tasks(self, prompt: str, rng: random.Random, numbered: bool) -> Reply:
        tasks = [self._task(rng) for _ in range(self.tasks_per_reply)]
        demos = re.findall(r"^(?:Task )?\d+[.:] (.+)$", prompt, flags=re.MULTILINE)
        if demos:
            tasks[1] = demos[0].rstrip(".?!") + " in detail."  # near-copy: ROUGE-L rejects it
            tasks[5] = demos[-1]  # a verbatim copy: the exact-duplicate filter rejects it
        tasks[2] = "Do it now."  # too short
        tasks[3] = f"Draw a picture of a {rng.choice(WORDS)} at dawn."  # blacklisted
        tasks[4] = f"Write a program that sorts {rng.choice(WORDS)} records by date."
        if numbered:
            text = "Sure! Here are some tasks:\n" + "\n".join(
                f"{i}. {task}" for i, task in enumerate(tasks, start=1)
            )
        else:
            start = int(re.findall(r"Task (\d+):$", prompt)[0])
            text = (
                " "
                + tasks[0]
                + "".join(
                    f"\nTask {start + i}: {task}" for i, task in enumerate(tasks[1:], start=1)
                )
            )
        return Reply(text=text)

    def _task(self, rng: random.Random) -> str:
        if rng.random() < self.classification_share:
            return (
                f"Classify the {rng.choice(WORDS)} {_phrase(rng, 4)} review as "
                f"Positive, Negative or Neutral."
            )
        verb = rng.choice(VERBS)
        return f"{verb} the {rng.choice(ADJECTIVES)} {_phrase(rng, rng.randint(6, 10))}."

    def _output(self, rng: random.Random) -> Reply:
        if rng.random() < 0.05:
            return Reply(text=" N/A")
        return Reply(text=f" {_phrase(rng, rng.randint(8, 20)).capitalize()}.")


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))
