"""Paraphrase expansion (Unnatural Instructions): k rewordings of an instruction that share
its instances.

After a job's outputs, one request asks for ``stages.paraphrase.k`` paraphrases (a numbered
list, parsed like stage 1's). They ride back on the job as :class:`Derived` candidates; the
run checks them against the instruction and each other with the loose
``stages.paraphrase.rouge_threshold`` and writes each kept one as examples with the job's
instances, in the job's group.
"""

from __future__ import annotations

from typing import ClassVar

from selfinstruct.config_sections import ParaphraseStageConfig
from selfinstruct.stages.base import Job, StageContext, Template, one_line, request_seed
from selfinstruct.stages.derived import Derived
from selfinstruct.stages.instructions import parse_task_list
from selfinstruct.teachers.base import Completion, Request


class ParaphraseStage:
    """Adds up to ``k`` paraphrase candidates to ``job.derived``."""

    name: ClassVar[str] = "paraphrase"
    #: derive only from instances that passed the instance filters (and the judge, if on)
    after_instance_filters: ClassVar[bool] = True
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "paraphrase", frozenset({"instruction", "k"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]
        settings = context.settings
        assert isinstance(settings, ParaphraseStageConfig)
        self.k = settings.k

    def requests(self, job: Job) -> list[Request]:
        if job.instruction.origin not in ("self-instruct", "evolve") or not job.answered():
            return []
        job.prompts[self.name] = self.prompt.sha
        instruction = one_line(job.instruction.instruction)
        return [self.prompt.request(seed=request_seed(job.rng), instruction=instruction, k=self.k)]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        if not completions:
            return
        (completion,) = completions
        if completion.finish_reason == "content_filter":
            job.reject(self.name, "content_filter", "")
            return
        items = parse_task_list(completion.text, truncated=completion.finish_reason == "length")
        texts: list[str] = []
        for item in (one_line(item) for item in items):
            if item and item not in texts:
                texts.append(item)
        if not texts:
            job.reject(self.name, "unparseable", completion.text[:1000])
        job.derived += [Derived(origin="paraphrase", instruction=text) for text in texts[: self.k]]
