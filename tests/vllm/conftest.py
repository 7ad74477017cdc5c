"""Fixtures for the tests marked ``vllm``: they need vLLM itself (``make test-vllm`` sets it up).

The model is a Hugging Face checkpoint made from the embedded SmolLM2 GGUF (vLLM cannot load
the GGUF): ``$SELFINSTRUCT_VLLM_CHECKPOINT`` when set, else built once under the venv.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.vllm.make_checkpoint import MARKER, build

#: settings that keep a CPU run small and offline; the tests set them when the caller has not
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


@pytest.fixture(scope="session", autouse=True)
def offline_cpu_env() -> None:
    """Nothing from a hub, a small KV cache, idle OpenMP threads that sleep (children inherit)."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def checkpoint(offline_cpu_env: None) -> Path:
    """A HF checkpoint of the embedded SmolLM2-135M-Instruct (about 260 MB, built once)."""
    given = os.environ.get("SELFINSTRUCT_VLLM_CHECKPOINT")
    path = Path(given) if given else Path(sys.prefix) / "checkpoints" / "smollm2-135m-instruct"
    if not (path / MARKER).is_file():
        from selfinstruct.teachers.model_file import embedded_model_path

        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, embedded_model_path())
    return path
