"""Rules for derived instructions (evolved, paraphrased, inverted) before the stage-1 rules.

Evol-Instruct's elimination rules (WizardLM, section 3.3), each a :class:`Drop` reason:

* ``refusal``: the teacher declined ("Sorry, I cannot ...");
* ``copies_prompt``: the rewrite copies the rewriting prompt's own words ("#Rewritten
  Prompt#", "given prompt", "the inverse task", "the original task" ...);
* ``no_information_gain``: an evolved instruction whose words are all words of its parent
  (the same task, or a part of it);
* too short: the stage-1 heuristic ``too_short`` (applied with the others by the judge).

A paraphrase group (:class:`ParaphraseGroup`) holds an instruction and its kept paraphrases:
a paraphrase whose ROUGE-L F against any of them is above the (loose) threshold is dropped
as ``rouge_similar``.
"""

from __future__ import annotations

import re

from selfinstruct.filters.base import Drop
from selfinstruct.filters.rouge_score import rouge_l_f, tokenize

__all__ = ["ParaphraseGroup", "elimination_drop"]

_REFUSAL_RE = re.compile(
    r"\b(?:sorry|apologi[sz]e)\b"
    r"|^(?:i\s+(?:cannot|can't|can not|won't|am unable|am not able)|as an ai)\b",
    re.IGNORECASE,
)
_PROMPT_WORDS_RE = re.compile(
    r"#\s*(?:the\s+)?(?:given|rewritten|created)\s+prompt\s*#"
    r"|\b(?:given|rewritten|created)\s+prompt\b"
    r"|\b(?:inverse|inverted|reverse|reversed|original)\s+task\b",
    re.IGNORECASE,
)


def elimination_drop(candidate: str, parent: str, *, evolved: bool) -> Drop | None:
    """The first elimination rule that drops ``candidate`` (written from ``parent``), or None.
    ``no_information_gain`` applies to evolved candidates only."""
    text = candidate.strip()
    if _REFUSAL_RE.search(text):
        return Drop("refusal")
    if match := _PROMPT_WORDS_RE.search(text):
        return Drop("copies_prompt", {"words": match.group(0)})
    if evolved:
        words = set(tokenize(text))
        if words <= set(tokenize(parent)):
            return Drop("no_information_gain", {"parent": parent})
    return None


class ParaphraseGroup:
    """An instruction and the paraphrases of it kept so far."""

    reason = "rouge_similar"

    def __init__(self, instruction: str, threshold: float) -> None:
        self.threshold = threshold
        self.texts = [instruction]
        self._tokens = [tokenize(instruction)]

    def judge(self, text: str) -> Drop | None:
        """``rouge_similar`` when the F against a member is above the threshold (the first
        member reaching the highest F is named), else None. Looks only: see :meth:`keep`."""
        tokens = tokenize(text)
        best, nearest = -1.0, 0
        for position, member in enumerate(self._tokens):
            score = rouge_l_f(tokens, member)
            if score > best:
                best, nearest = score, position
        if best > self.threshold:
            return Drop(self.reason, {"score": best, "most_similar": self.texts[nearest]})
        return None

    def keep(self, text: str) -> None:
        self.texts.append(text)
        self._tokens.append(tokenize(text))
