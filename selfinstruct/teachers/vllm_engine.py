"""The in-process vLLM engine: its settings (:class:`VllmConfig`), starting and stopping it
on whatever device vLLM finds.

- :func:`check_platform` asks vLLM which device it runs on (CUDA, ROCm, CPU, XPU, TPU…) and
  refuses only when it found none.
- :func:`engine_args` turns the teacher config into ``vllm.LLM`` arguments, with CPU defaults
  that start on a 24 GB machine: eager mode (no minute-long torch.compile warm-up) and a 2 GiB
  KV cache instead of a share of all memory.
- :func:`load_engine` builds the ``LLM``; when it fails, the one-line error carries the
  engine's real reason, which vLLM's engine process only logs to stderr.
- :func:`shutdown_engine` stops the engine's processes; it also runs at interpreter exit for
  an engine nobody closed.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import re
import sys
import threading
from collections import deque
from types import TracebackType
from typing import Any, Literal

from pydantic import Field

from selfinstruct.errors import TeacherUnavailable
from selfinstruct.teachers.base import Api, TeacherSettings
from selfinstruct.teachers.batching import one_line

NO_DEVICE_HINT = (
    "the vllm teacher found no device vLLM can run on (vLLM detected no platform: a CUDA or "
    "ROCm GPU, or vLLM's CPU build): use the local teacher, or --base-url with a vLLM server"
)
#: the KV cache on CPU when neither teacher.kv_cache_gib nor VLLM_CPU_KVCACHE_SPACE says
DEFAULT_CPU_KV_CACHE_GIB = 2.0
GIB = 1 << 30

# "ValueError: ..." or "torch.OutOfMemoryError: ..." as a traceback's last line prints it,
# maybe after vLLM's log prefix "(EngineCore pid=1) ERROR 12-01 10:00:00 [core.py:1] "
_EXCEPTION_LINE = re.compile(r"(?:^|\s)(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception)): (.+)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# vLLM's wordings when the real error stayed in the engine processes' log: "See root cause
# above", "See stack trace (above) for the root cause"
_SEE_ABOVE = re.compile(r"root cause above|\(above\) for the root cause", re.IGNORECASE)
#: engines loaded and not yet shut down, by id: stopped at interpreter exit if still here
_LIVE_ENGINES: dict[int, Any] = {}
_ENGINE_LOGS: dict[int, StderrTail] = {}


class VllmConfig(TeacherSettings):
    """The in-process vLLM teacher: vLLM's CUDA build on a GPU, or its CPU build (vllm-cpu)."""

    kind: Literal["vllm"] = Field(default="vllm", description="The in-process vLLM engine.")
    api: Api = Field(
        default="completions", description="completions (a prompt) or chat (the model's template)."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs one model is split over.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="Share of GPU memory vLLM may take."
    )
    max_model_len: int | None = Field(
        default=None, description="Context length (unset: the model's own)."
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="Skip CUDA graphs/torch.compile (starts in seconds); unset: on CPU only.",
    )
    kv_cache_gib: float | None = Field(
        default=None,
        gt=0,
        description="KV-cache size in GiB; unset: vLLM's own sizing on a GPU, 2 GiB on CPU.",
    )


def check_platform() -> str:
    """The device type vLLM will use (``"cuda"``, ``"cpu"``…); refuses when it found none."""
    try:
        from vllm.platforms import current_platform

        device = str(current_platform.device_type or "")
        unspecified = current_platform.is_unspecified()
    except Exception as exc:
        raise TeacherUnavailable(f"vLLM could not detect its device: {one_line(exc)}") from None
    if unspecified or not device:
        raise TeacherUnavailable(NO_DEVICE_HINT)
    return device


def engine_args(config: VllmConfig, *, seed: int | None, device: str) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` from the teacher config, for ``device``."""
    on_cpu = device == "cpu"
    kwargs: dict[str, Any] = {
        "model": config.model,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enforce_eager": on_cpu if config.enforce_eager is None else config.enforce_eager,
    }
    if config.max_model_len is not None:
        kwargs["max_model_len"] = config.max_model_len
    kv_cache_gib = config.kv_cache_gib
    if kv_cache_gib is None and on_cpu and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        kv_cache_gib = DEFAULT_CPU_KV_CACHE_GIB  # else vLLM's CPU backend wants 90% of RAM
    if kv_cache_gib is not None:  # on CPU a set VLLM_CPU_KVCACHE_SPACE still wins (vLLM's rule)
        kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * GIB)
    if on_cpu:
        # vLLM 0.32's CPU worker dies ("CPU Generator does not use offset") when a request
        # with its own seed has its prefill split across steps: never split prefills there.
        kwargs["enable_chunked_prefill"] = False
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


class StderrTail:
    """Pass file descriptor 2 through a pipe, keeping its last lines, while inside the block.

    vLLM's engine processes inherit descriptor 2 and log why they failed there; the ``LLM``
    constructor only says "Engine core initialization failed. See root cause above". Child
    processes keep writing into the pipe after the block, so a daemon thread forwards it to
    the real stderr until the last of them exits.
    """

    def __init__(self, keep_lines: int = 400) -> None:
        self.lines: deque[str] = deque(maxlen=keep_lines)
        self._restore_fd: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StderrTail:
        try:
            sys.stderr.flush()
            self._restore_fd = os.dup(2)
            forward_fd = os.dup(2)
            read_fd, write_fd = os.pipe()
        except (OSError, ValueError):  # no usable descriptor 2: run without a tail
            return self
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(
            target=self._pump, args=(read_fd, forward_fd), name="vllm-stderr", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._restore_fd is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self._restore_fd, 2)
        os.close(self._restore_fd)
        self._restore_fd = None
        if exc is not None and self._thread is not None:
            self._thread.join(timeout=3)  # the failed engine's last words, once it has exited

    def _pump(self, read_fd: int, forward_fd: int) -> None:
        partial = b""
        try:
            while chunk := os.read(read_fd, 65536):
                with contextlib.suppress(OSError):
                    os.write(forward_fd, chunk)
                *complete, partial = (partial + chunk).split(b"\n")
                self.lines.extend(line.decode("utf-8", "replace") for line in complete)
                partial = partial[-8192:]
        finally:
            if partial:
                self.lines.append(partial.decode("utf-8", "replace"))
            os.close(read_fd)
            os.close(forward_fd)


def root_cause(exc: BaseException, log_lines: Any = ()) -> str:
    """One line saying why the engine failed: the engine process's own exception when vLLM
    only points at its log, else the innermost exception of the chain."""
    if _SEE_ABOVE.search(str(exc)):
        for line in reversed(list(log_lines)):
            match = _EXCEPTION_LINE.search(_ANSI.sub("", line).strip())
            if match:
                return f"{match[1]}: {match[2]}"
    inner = exc
    while inner.__cause__ is not None and not isinstance(inner, TeacherUnavailable):
        inner = inner.__cause__
    return one_line(inner)


def load_engine(vllm: Any, kwargs: dict[str, Any]) -> Any:
    """``vllm.LLM(**kwargs)``, or :class:`TeacherUnavailable` with the real reason in one line.
    The engine is shut down at interpreter exit unless :func:`shutdown_engine` ran first."""
    tail = StderrTail()
    try:
        with tail:
            llm = vllm.LLM(**kwargs)
    except Exception as exc:
        gc.collect()  # whatever half-started engine is left: its finalizers stop its processes
        raise TeacherUnavailable(
            f"vLLM could not load {kwargs.get('model')}: {root_cause(exc, tail.lines)}"
        ) from None
    _LIVE_ENGINES[id(llm)] = llm
    _ENGINE_LOGS[id(llm)] = tail  # the engine processes keep writing into it
    return llm


def engine_failure(llm: Any, exc: BaseException) -> str:
    """One line saying why a running engine failed (its processes' log names the reason)."""
    return root_cause(exc, _ENGINE_LOGS[id(llm)].lines if id(llm) in _ENGINE_LOGS else ())


def shutdown_engine(llm: Any) -> None:
    """Stop the engine's processes and free its memory; safe to call twice."""
    _LIVE_ENGINES.pop(id(llm), None)
    _ENGINE_LOGS.pop(id(llm), None)
    engine = getattr(llm, "llm_engine", None)
    client = getattr(engine, "engine_core", None)
    shutdown = getattr(client, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(Exception):
            shutdown()
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@atexit.register
def _shutdown_live_engines() -> None:
    for llm in list(_LIVE_ENGINES.values()):
        shutdown_engine(llm)
