"""A scripted teacher for the Self-Instruct stages, for :class:`ScriptedOpenAIServer`.

It knows which stage a request serves from the request itself (the ``X-Selfinstruct-Stage``
header, or a Batch API line's ``custom_id``: see :func:`request_stage`), never from the
wording of the prompts, and answers in kind, deterministically (a hash of the request seeds
its RNG):

* ``instructions``: new tasks made of random words (novel by ROUGE-L) as a ``Task N:``
  continuation when the prompt ends that way, else as a numbered list, plus, on purpose, a
  near-copy and a verbatim copy of demonstrations, a too-short one, a blacklisted one and a
  "Write a program" one, so every filter gets exercised;
* ``classify``: Yes iff the task (the prompt's second-to-last line) says "Classify";
* ``inputs``: two labels with an input each when the prompt ends with ``Class label:``
  (output-first), else one input, sometimes ``<noinput>``;
* ``outputs``: an answer, now and then ``N/A`` so the instance filters have something to drop;
  with ``n`` > 1, that many different answers (a server honouring ``n``);
* ``evolve``, ``paraphrase``, ``invert``: see :mod:`tests.support.derivation_replies`;
* ``judge``: ``Rationale: ...`` then ``Score: N``, N from 1 to 10 by a hash of the rated answer
  (so every sample of one answer gets the same score and about a third score below 6), and
  now and then a reply with no score at all;
* any other stage (or none): :data:`GENERIC_REPLY`, unless ``extra`` has a handler for it:
  ``SelfInstructResponder(extra={"shout": lambda kind, body: Reply(text="HEY")})``.

With ``schema_forms=("json_schema",)`` (or ``"json_object"``, llama-cpp-python's form) it
honours a JSON schema in ``response_format`` as vLLM does: the same content as JSON
(``{"tasks"}``, ``{"is_classification"}``, ``{"instances"}``, the probe's ``{"ok"}``).

Use it as ``ScriptedOpenAIServer(SelfInstructResponder())``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.support.derivation_replies import DERIVATION_REPLIES
from tests.support.openai_server import Kind, Reply, prompt_text, request_stage
from tests.support.scripted_json import dumps, item_fields, requested_schema

#: what a stage the responder does not know gets
GENERIC_REPLY = " OK."

#: a handler for one stage: ``(kind, body) -> Reply`` (or a plain string)
StageHandler = Callable[[Kind, dict[str, Any]], "Reply | str"]

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

    def __init__(
        self,
        classification_share: float = 0.25,
        tasks_per_reply: int = 8,
        extra: Mapping[str, StageHandler] | None = None,
        schema_forms: tuple[str, ...] = (),
    ) -> None:
        self.classification_share = classification_share
        self.tasks_per_reply = tasks_per_reply
        self.extra = dict(extra or {})
        self.schema_forms = schema_forms

    def __call__(self, kind: Kind, body: dict[str, Any], stage: str | None = None) -> Reply:
        stage = stage or request_stage()
        handler = self.extra.get(stage or "")
        if handler is not None:
            answer = handler(kind, body)
            return Reply(text=answer) if isinstance(answer, str) else answer
        prompt = prompt_text(kind, body).rstrip()
        rng = random.Random(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest())
        schema = requested_schema(body, self.schema_forms)
        if schema is not None:
            return self._json(schema, prompt, rng)
        if stage == "instructions":
            return self._tasks(prompt, rng, numbered=not re.search(r"Task \d+:$", prompt))
        if stage == "classify":
            task = prompt.splitlines()[-2] if len(prompt.splitlines()) > 1 else ""
            return Reply(text=" Yes" if "Classify" in task else " No")
        if stage == "inputs":
            return self._inputs(prompt, rng)
        if stage == "outputs":
            reply = self._output(rng)
            more = tuple(self._output(rng).text for _ in range(int(body.get("n") or 1) - 1))
            return Reply(text=reply.text, more_texts=more)
        if stage == "judge":
            return self._judgement(prompt)
        if stage in DERIVATION_REPLIES:  # evolve, paraphrase, invert
            return Reply(text=DERIVATION_REPLIES[stage](prompt, rng))
        return Reply(text=GENERIC_REPLY)

    def _judgement(self, prompt: str) -> Reply:
        answers = re.findall(r"^Answer: (.*)$", prompt, flags=re.MULTILINE)
        answer = answers[-1] if answers else prompt
        digest = hashlib.sha256(answer.encode()).digest()
        if digest[1] < 8:  # about 3%: a reply the judge stage cannot read
            return Reply(text=" I cannot rate this answer.")
        score = (2, 3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 10)[digest[0] % 12]
        return Reply(text=f" The answer is plausible but terse.\nScore: {score}")
    def _json(self, schema: dict[str, Any], prompt: str, rng: random.Random) -> Reply:
        """A structured answer: what the schema's properties ask for."""
        fields = set(schema.get("properties", {}))
        if fields == {"tasks"}:
            return Reply(text=dumps({"tasks": self._task_list(prompt, rng)}))
        if fields == {"is_classification"}:
            task = [line for line in prompt.splitlines() if line.startswith("Task: ")][-1:]
            return Reply(text=dumps({"is_classification": any("Classify" in t for t in task)}))
        if fields == {"instances"} and "label" in item_fields(schema, "instances"):
            first, second = rng.sample(LABELS, 2)
            pairs = [(first, _phrase(rng, 8) + "."), (second, _phrase(rng, 9) + ".")]
            instances = [{"label": label, "input": text} for label, text in pairs]
            return Reply(text=dumps({"instances": instances}))
        if fields == {"instances"}:
            text = "" if rng.random() < 0.2 else f"{_phrase(rng, 10)}."
            return Reply(text=dumps({"instances": [{"input": text}]}))
        if fields == {"ok"}:  # the capability probe
            return Reply(text=dumps({"ok": True}))
        return Reply(text=dumps({}))

    def _inputs(self, prompt: str, rng: random.Random) -> Reply:
        if prompt.endswith("Class label:"):
            first, second = rng.sample(LABELS, 2)
            text = (
                f" {first}\nInput: {_phrase(rng, 8)}.\n\n"
                f"Class label: {second}\nInput: {_phrase(rng, 9)}."
            )
            return Reply(text=text)
        if rng.random() < 0.2:
            return Reply(text=" <noinput>")
        return Reply(text=f" {_phrase(rng, 10)}.")

    def _tasks(self, prompt: str, rng: random.Random, numbered: bool) -> Reply:
        tasks = self._task_list(prompt, rng)
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

    def _task_list(self, prompt: str, rng: random.Random) -> list[str]:
        """New tasks, with a near-copy, a verbatim copy, a too-short, a blacklisted and a
        "Write a program" one among them."""
        tasks = [self._task(rng) for _ in range(self.tasks_per_reply)]
        demos = re.findall(r"^(?:Task )?\d+[.:] (.+)$", prompt, flags=re.MULTILINE)
        shown = re.findall(r'^\{"tasks": \[.*\]\}$', prompt, flags=re.MULTILINE)
        demos = json.loads(shown[0])["tasks"] if shown else demos  # the structured prompt
        if demos:
            tasks[1] = demos[0].rstrip(".?!") + " in detail."  # near-copy: ROUGE-L rejects it
            tasks[5] = demos[-1]  # a verbatim copy: the exact-duplicate filter rejects it
        tasks[2] = "Do it now."  # too short
        tasks[3] = f"Draw a picture of a {rng.choice(WORDS)} at dawn."  # blacklisted
        tasks[4] = f"Write a program that sorts {rng.choice(WORDS)} records by date."
        return tasks

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
