"""The ``ray`` executor, ``vllm`` engine: stage 2-3 requests answered by Ray Data LLM engines.

Jobs run in the driver's event loop (their prompts and parsing are a small share of the
work here); each request they send is gathered with the others in flight (up to
``executor.vllm.max_rows`` requests, or whatever came within ``flush_s``) into one Ray Data
dataset that goes through Ray Data LLM's vLLM engine processor: ``concurrency`` engine
replicas placed by Ray on the cluster's accelerators (``accelerator_type``; a replica may span
a tensor/pipeline-parallel group through ``engine_kwargs``), continuous batching inside each.
A row that fails inside vLLM (a prompt too long for the model, say) comes back as that
request's error — a row-level failure, recorded in ``requests.jsonl`` — never a failed run
(``should_continue_on_error``).

Ray Data starts the engines for every dataset it runs, so each gathered batch pays the model
load: this engine suits large runs with big batches. Stage 1 stays with the driver's own
teacher (``teacher:``), e.g. a ``vllm serve`` endpoint or OpenAI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from typing import Any

from selfinstruct.errors import InputError, TeacherError
from selfinstruct.executors.base import ExecutorContext
from selfinstruct.executors.ray_cluster import RayConnection, connect, ray_version
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction, TeacherCall, Usage
from selfinstruct.stages import Job
from selfinstruct.teachers.base import Completion, Request, Teacher
from selfinstruct.teachers.batching import Coalescer


def engine_row(request: Request) -> dict[str, Any]:
    """One request as a Ray Data LLM row: ``messages`` (chat) or ``prompt``, and sampling."""
    sampling: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if request.stop:
        sampling["stop"] = list(request.stop)
    if request.seed is not None:
        sampling["seed"] = request.seed
    row: dict[str, Any] = {"sampling_params": sampling}
    if request.messages is not None:
        row["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    else:
        row["prompt"] = request.prompt
    return row


class RayVLLMExecutor:
    """Jobs here, their requests through Ray Data LLM vLLM engines (see the module docstring)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.settings = context.config.executor
        self.engine = self.settings.vllm
        if not self.engine.model_source:
            raise InputError("the vllm engine needs a model", field="executor.vllm.model_source")
        self.connection: RayConnection | None = None
        self.address: str | None = None
        self.processors: dict[bool, Any] = {}  # by "chat template on"
        self.counts: Counter[str] = Counter()
        self.coalescer: Coalescer[Request, Completion] = Coalescer(
            self._run_batch,
            max_items=self.engine.max_rows,
            max_wait_s=self.engine.flush_s,
            max_running=1,
            name="Ray Data LLM",
        )

    async def start(self, jobs: JobRunner) -> None:
        self.connection = connect(self.settings)
        self.address = self.connection.address
        engine_model = self.engine.model_source
        models = dict(jobs.models) | {stage.name: engine_model for stage in jobs.sequence}
        self.jobs = dataclasses.replace(jobs, send=self._send, models=models)

    def slots(self, teacher: Teacher) -> int:
        """Enough jobs in flight to fill one gathered batch."""
        return max(teacher.max_concurrency, self.engine.batch_size * self.engine.concurrency)

    async def expand(self, row: Instruction) -> tuple[Job, list[Instance]]:
        job = self.jobs.new_job(row)
        return job, await self.jobs.run(job)

    async def _send(
        self, stage: str, request: Request, call_id: str, serves: Any
    ) -> Completion:
        self.context.check_budget()
        started = time.monotonic()
        call = {"id": call_id, "stage": stage, "model": self.engine.model_source,
                "serves": list(serves)}  # fmt: skip
        try:
            completion = await self.coalescer.submit(request)
        except TeacherError as exc:
            self.counts["failed_requests"] += 1
            elapsed = time.monotonic() - started
            self.context.record_call(
                TeacherCall(**call, usage=Usage(), latency_s=elapsed, error=str(exc)[:500])
            )
            raise
        self.counts["requests"] += 1
        self.context.record_call(
            TeacherCall(**call, usage=completion.usage, finish_reason=completion.finish_reason,
                        latency_s=time.monotonic() - started, text=completion.text)
        )  # fmt: skip
        return completion

    async def _run_batch(self, requests: list[Request]) -> list[Completion | BaseException]:
        return await asyncio.to_thread(self._generate, requests)

    def _generate(self, requests: list[Request]) -> list[Completion | BaseException]:
        """One Ray Data run over ``requests`` (chat and completions apart), in request order."""
        import ray

        results: list[Completion | BaseException] = [TeacherError("no answer")] * len(requests)
        for chat in (True, False):
            indexes = [k for k, r in enumerate(requests) if (r.messages is not None) == chat]
            if not indexes:
                continue
            rows = [{"request": k, **engine_row(requests[k])} for k in indexes]
            started = time.monotonic()
            out = self._processor(chat)(ray.data.from_items(rows)).take_all()
            elapsed = time.monotonic() - started
            self.counts["datasets"] += 1
            for row in out:
                results[int(row["request"])] = self._completion(row, elapsed / len(rows))
        return results

    def _completion(self, row: dict[str, Any], latency_s: float) -> Completion | BaseException:
        error = row.get("__inference_error__")
        if error:
            return TeacherError(f"vLLM (Ray Data LLM): {str(error)[:300]}")
        usage = Usage(prompt_tokens=int(row.get("num_input_tokens") or 0),
                      completion_tokens=int(row.get("num_generated_tokens") or 0))  # fmt: skip
        reason = row.get("finish_reason") or "stop"
        text = str(row.get("generated_text") or "")
        model = self.engine.model_source
        return Completion(text, str(reason), usage=usage, model=model, latency_s=latency_s)

    def _processor(self, chat: bool) -> Any:
        if chat not in self.processors:
            import ray.data
            from ray.data.llm import build_processor, vLLMEngineProcessorConfig

            quiet = ray.data.DataContext.get_current()  # the run's own progress line stays
            quiet.enable_progress_bars = quiet.print_on_execution_start = False
            logging.getLogger("ray.data").setLevel(logging.WARNING)

            cpus = self.engine.stage_cpus
            bundles = self.engine.placement_bundles
            config = vLLMEngineProcessorConfig(
                model_source=self.engine.model_source,
                engine_kwargs=self.engine.engine_kwargs,
                concurrency=self.engine.concurrency,
                batch_size=self.engine.batch_size,
                accelerator_type=self.engine.accelerator_type,
                placement_group_config={"bundles": bundles} if bundles else None,
                log_engine_metrics=False,
                should_continue_on_error=True,
                chat_template_stage={"enabled": chat, "num_cpus": cpus},
                tokenize_stage=False,
                detokenize_stage=False,
            )
            self.processors[chat] = build_processor(
                config,
                preprocess_map_kwargs={"num_cpus": cpus},
                postprocess_map_kwargs={"num_cpus": cpus},
            )
        return self.processors[chat]

    def stats(self) -> dict[str, Any]:
        return {
            "kind": "ray",
            "engine": "vllm",
            "ray_version": ray_version(),
            "address": self.address,
            "model": self.engine.model_source,
            "replicas": self.engine.concurrency,
            **dict(self.counts),
        }

    async def aclose(self) -> None:
        await self.coalescer.aclose()
        if self.connection is not None:
            await asyncio.to_thread(self.connection.close)
            self.connection = None
