"""The pipeline through the ``openai`` teacher against llama.cpp's own OpenAI-compatible server.

A real server nobody here wrote, serving the embedded SmolLM2-135M model on 127.0.0.1: it
ignores ``n``, answers a list prompt with HTTP 500 and serves one request at a time, and the
pipeline must work anyway, on the chat and on the completions API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli

from .helpers import read_run

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (make install)")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from selfinstruct.teachers.local import embedded_model_path

    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", str(port),
        "--model", str(embedded_model_path()), "--model_alias", "smollm2", "--n_ctx", "2048",
    ]  # fmt: skip
    # llama.cpp logs a lot while loading: a file, not a pipe nobody reads (it would block).
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("w")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # as `make serve` runs it
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start within 60 s")
    try:
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_pipeline_against_llama_cpp_server(tmp_path, llama_server, api):
    out = tmp_path / api
    # keep the smoke test short on 2 cores: fewer demos, one instance, short answers
    args = [
        "generate", "--base-url", llama_server, "--api", api, "-n", "3", "--out", str(out),
        "-q", "--seed", "3",
        "--set", "classify_demos=6", "--set", "max_instances_per_instruction=1",
        "--set", "stages.inputs.sampling.max_tokens=48",
        "--set", "stages.outputs.sampling.max_tokens=96",
        "--set", "stages.instructions.sampling.max_tokens=256",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = read_run(out)
    assert len({row.instruction_id for row in run["examples"]}) == 3
    assert len(run["examples"]) >= 3
    assert run["manifest"].status == "complete"
    assert run["manifest"].usage["instructions"].completion_tokens > 0
    assert all(row.provenance.models["instructions"] == "smollm2" for row in run["examples"])
    # the probe's record: llama.cpp's server ignores n, refuses a list of prompts, and a seed
    # does not fix its reply (it differs after another prompt and on a repeat)
    capabilities = run["manifest"].endpoints[llama_server]["capabilities"]
    assert capabilities["n"] is False and capabilities["list_prompts"] is False, capabilities
    assert capabilities["seed"] is False, capabilities


def test_structured_outputs_against_llama_cpp_server(tmp_path, llama_server):
    """llama.cpp's server takes a schema as ``{"type": "json_object", "schema": ...}``: the
    probe finds that form, the stages ask for JSON and every reply follows the schema."""
    from selfinstruct.records import ClassifyReply, TeacherCall

    out = tmp_path / "structured"
    args = [
        "generate", "--base-url", llama_server, "--api", "chat", "-n", "2", "--out", str(out),
        "-q", "--seed", "3",
        "--set", "classify_demos=6", "--set", "max_instances_per_instruction=1",
        "--set", "stages.outputs.sampling.max_tokens=96",
        "--set", "stages.instructions.sampling.max_tokens=256",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = read_run(out)
    manifest = run["manifest"]
    capabilities = manifest.endpoints[llama_server]["capabilities"]
    assert capabilities["json_object_schema"] is True, capabilities
    modes = manifest.stage_modes
    assert modes == {"instructions": "structured", "classify": "structured", "inputs": "structured"}
    assert len({row.instruction_id for row in run["examples"]}) == 2
    calls = [TeacherCall.model_validate_json(line) for line in (out / "requests.jsonl").open()]
    for call in calls:
        if call.stage == "classify":
            ClassifyReply.model_validate_json(call.text or "")  # grammar-constrained
        if call.stage in ("instructions", "inputs"):
            assert (call.text or "").lstrip().startswith("{"), call.text
