"""The run's side of augmentation: a finished job's derived candidates become rows.

The derivation stages (:data:`selfinstruct.stages.DERIVATION_SEQUENCE`, each off by default)
run inside a job and only write candidates (:class:`~selfinstruct.stages.derived.Derived`).
Here, on the driver that owns the pool of kept instructions and the run files:

* **evolved** and **inverted** candidates pass Evol-Instruct's elimination rules, then the
  same verdict as stage-1 candidates (heuristics, then ROUGE-L against every kept
  instruction and the seeds); a kept one is an :class:`Instruction` row with its provenance
  (``origin``, ``parent``, ``round``, ``operation``). An evolved one is returned to be queued
  for the stage sequence (and evolved again until the last round); an inverted one carries
  its one instance and gets its :class:`Example` at once.
* **paraphrases** pass the elimination and heuristic rules and the loose ROUGE-L check
  within their group (the instruction and its kept paraphrases); each kept one becomes
  examples with the job's instances, under the parent's instruction id and group.

Every candidate dropped is a rejection (stage = its origin) with its reason. The job's own
examples, its paraphrases' and its inversion's are written in one batch, after the derived
instruction rows, so a run killed in between resumes without a loss or a duplicate: the
parent is expanded again, a derivation it already has (an evolved or inverted child in
``instructions.jsonl``) is not made twice, and an inverted row without its example gets it
rebuilt from the row when the run opens.

Derived instructions count toward ``num_instructions`` like any other (the target counts
instructions with examples, of every origin; paraphrases share their parent's id and add
none): a run with augmentation reaches its target sooner. An inversion is kept only while
the target has room, so a finished run still holds exactly the target.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.config import RunConfig
from selfinstruct.filters.derivation import ParaphraseGroup, elimination_drop
from selfinstruct.filters.heuristics import first_drop
from selfinstruct.filters.instruction_judge import InstructionJudge
from selfinstruct.records import Example, Instruction, Origin, Provenance
from selfinstruct.run.store import RunStore
from selfinstruct.stages import Job, Stages
from selfinstruct.stages.derived import DERIVATION_STAGES, Derived

__all__ = ["Derivations", "inverted_example"]


def inverted_example(row: Instruction, prompt_sha: str = "") -> Example:
    """An inverted instruction's one example, rebuilt from its row alone."""
    if row.instance is None:
        raise ValueError(f"instruction {row.id} has no instance to rebuild its example from")
    return Example(
        id=f"{row.id}-0",
        instruction_id=row.id,
        instruction=row.instruction,
        input=row.instance.input,
        output=row.instance.output,
        is_classification=False,
        provenance=Provenance(
            models={"invert": row.model},
            prompts={"invert": prompt_sha} if prompt_sha else {},
            calls=[row.call] if row.call else [],
        ),
        origin="invert",
        group=row.parent or "",
    )


class Derivations:
    """Judges finished jobs' derived candidates against the run's pool and writes the rows."""

    def __init__(
        self, config: RunConfig, stages: Stages, judge: InstructionJudge, store: RunStore
    ) -> None:
        self.target = config.num_instructions
        self.paraphrase_threshold = config.stages.paraphrase.rouge_threshold
        self.judge = judge
        self.store = store
        #: the derivation stages' template shas, as provenance records them
        self.prompt_shas = {
            name: template.sha256[:16]
            for name, template in stages.templates.items()
            if name in DERIVATION_STAGES
        }
        self.invert_sha = self.prompt_shas.get("invert", "")
        state = store.state
        #: (parent id, origin) of every evolved or inverted child already written
        self.children = {(row.parent, row.origin) for row in state.instructions if row.parent}
        unfinished = [row for row in state.pending if row.origin == "invert" and row.instance]
        store.add_examples([inverted_example(row, self.invert_sha) for row in unfinished])

    def write_job(self, job: Job, examples: Sequence[Example]) -> list[Instruction]:
        """Write a finished job's rows: the derived instructions kept, then the job's examples
        with the derived examples (one batch), then every rejection. Returns the evolved
        instructions to queue for the stage sequence."""
        queued: list[Instruction] = []
        examples = [_own(example, job, self.prompt_shas) for example in examples]
        batch = list(examples)
        if examples:
            group = ParaphraseGroup(job.instruction.instruction, self.paraphrase_threshold)
            room = self.target - len(self.store.state.with_examples) - 1
            for candidate in job.derived:
                if candidate.origin == "paraphrase":
                    batch += self._paraphrase(job, candidate, group, examples)
                elif (job.instruction.id, candidate.origin) in self.children:
                    continue  # made before a resume: not twice
                elif candidate.origin == "evolve":
                    queued += self._instruction(job, candidate)
                elif room > 0 and self._source_kept(job, candidate, examples):
                    for row in self._instruction(job, candidate):
                        batch.append(inverted_example(row, self.invert_sha))
                        room -= 1
        self.store.add_examples(batch)
        self.store.add_rejections(job.rejections)
        return queued

    def _instruction(self, job: Job, candidate: Derived) -> list[Instruction]:
        """The candidate as a kept Instruction row (written), or [] with its rejection."""
        parent = job.instruction
        text = candidate.instruction
        drop = elimination_drop(text, parent.instruction, evolved=candidate.origin == "evolve")
        decision = None if drop is not None else self.judge.decide(text)
        if decision is None or decision.drop is not None:
            why = drop if decision is None else decision.drop
            assert why is not None
            operation = {"operation": candidate.operation} if candidate.operation else {}
            job.reject(candidate.origin, why.reason, text, {**operation, **why.details})
            return []
        state = self.store.state
        row = Instruction(
            id=f"i{len(state.instructions):06d}",
            instruction=text,
            request=parent.request,
            model=job.models.get(candidate.origin, parent.model),
            max_rouge=decision.score,
            most_similar=decision.nearest,
            call=_call_of(job, candidate.origin),
            origin=candidate.origin,
            parent=parent.id,
            round=candidate.round,
            operation=candidate.operation,
            instance=candidate.instance,
        )
        self.judge.keep(text)
        self.store.add_instruction(row)
        self.children.add((parent.id, candidate.origin))
        return [row]

    def _paraphrase(
        self, job: Job, candidate: Derived, group: ParaphraseGroup, examples: Sequence[Example]
    ) -> list[Example]:
        """Examples of a kept paraphrase (the job's instances), or [] with its rejection."""
        text = candidate.instruction
        drop = elimination_drop(text, job.instruction.instruction, evolved=False)
        drop = drop or first_drop(self.judge.rules, text) or group.judge(text)
        if drop is not None:
            job.reject("paraphrase", drop.reason, text, drop.details)
            return []
        group.keep(text)
        number = len(group.texts) - 1
        provenance = _with_stage(job, "paraphrase", examples[0].provenance)
        return [
            example.model_copy(
                update={
                    "id": f"{example.instruction_id}-p{number}-{position}",
                    "instruction": text,
                    "origin": "paraphrase",
                    "group": example.instruction_id,
                    "provenance": provenance,
                }
            )
            for position, example in enumerate(examples)
        ]

    def _source_kept(self, job: Job, candidate: Derived, examples: Sequence[Example]) -> bool:
        """Whether the instance an inversion turned around passed the instance filters."""
        source = candidate.source
        pairs = {(example.input, example.output) for example in examples}
        if source is not None and (source.input, source.output) in pairs:
            return True
        job.reject("invert", "source_instance_dropped", candidate.instruction)
        return False


def _call_of(job: Job, stage: Origin) -> str:
    """The id of the job's (last) call for ``stage``: ``<instruction>.<stage>`` or ``~N``."""
    base = f"{job.instruction.id}.{stage}"
    calls = [call for call in job.calls if call.split("~")[0] == base]
    return calls[-1] if calls else ""


def _own(example: Example, job: Job, prompt_shas: dict[str, str]) -> Example:
    """A job's example with its instruction's origin and the provenance of the stages that
    made it: the job's provenance also lists the job's derivation stages, which made other
    rows; an evolved instruction's examples name the evolve call, model and template that
    wrote the instruction."""
    provenance, row = example.provenance, job.instruction
    mine = f"{row.id}."
    models = {k: v for k, v in provenance.models.items() if k not in DERIVATION_STAGES}
    prompts = {k: v for k, v in provenance.prompts.items() if k not in DERIVATION_STAGES}
    if row.origin == "evolve":
        models["evolve"], prompts["evolve"] = row.model, prompt_shas.get("evolve", "")
    calls = [
        call
        for call in provenance.calls
        if not (call.startswith(mine) and _stage_of(call) in DERIVATION_STAGES)
    ]
    own = Provenance(models=models, prompts=prompts, calls=calls)
    return example.model_copy(update={"provenance": own, "origin": row.origin})


def _with_stage(job: Job, stage: Origin, provenance: Provenance) -> Provenance:
    """``provenance`` plus the job's call, model and template for a derivation ``stage``."""
    call = _call_of(job, stage)
    return Provenance(
        models={**provenance.models, stage: job.models.get(stage, "")},
        prompts={**provenance.prompts, stage: job.prompts.get(stage, "")},
        calls=[*provenance.calls, *([call] if call else [])],
    )


def _stage_of(call: str) -> str:
    """``i000012.paraphrase~2`` -> ``paraphrase`` (a job's call ids name their stage)."""
    parts = call.split("~")[0].split(".")
    return parts[1] if len(parts) > 1 else ""
