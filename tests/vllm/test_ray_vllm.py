"""``--executor ray --set executor.engine=vllm`` on vLLM's CPU build: stages 2-3 answered by
Ray Data LLM's vLLM engine processor (one engine replica, a 1-CPU placement group), stage 1
by the scripted server; every line valid, provenance names the engine's model."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from selfinstruct.config import build_config
from selfinstruct.executors.ray_cluster import prepare_environment
from selfinstruct.pipeline import run_pipeline
from selfinstruct.records import TeacherCall
from tests.integration.helpers import read_run, rows
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

prepare_environment(None)  # before Ray is first imported
pytest.importorskip("vllm", reason="needs vLLM: run `make test-vllm`")
pytest.importorskip("ray.data.llm", reason="needs Ray Data LLM: pip install 'selfinstruct[ray]'")
pytestmark = [pytest.mark.vllm, pytest.mark.ray]


@pytest.mark.timeout(900)
def test_pipeline_with_ray_data_llm_vllm_engine(checkpoint: Path, tmp_path: Path):
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    os.environ["RAY_TMPDIR"] = ray_tmp
    out = tmp_path / "run"
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        config = build_config(None, {
            "teacher.base_url": [server.base_url], "num_instructions": 2,
            "executor.kind": "ray", "executor.engine": "vllm",
            "executor.vllm.model_source": str(checkpoint),
            "executor.vllm.engine_kwargs": {"enforce_eager": True, "max_model_len": 2048},
            "executor.vllm.placement_bundles": [{"CPU": 1}],
            "executor.vllm.batch_size": 16, "executor.vllm.flush_s": 1.0,
        }, environ={})  # fmt: skip
        try:
            result = run_pipeline(config, out)
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.status == "complete", result.stop_reason
    run = read_run(out)
    executor = run["manifest"].executor
    assert executor["engine"] == "vllm" and executor["requests"] > 0, executor
    assert executor["datasets"] >= 2  # at least one Ray Data run per later stage wave
    calls = rows(out / "requests.jsonl", TeacherCall)
    engine = [call for call in calls if call.stage != "instructions"]
    assert engine and all(call.model == str(checkpoint) for call in engine)
    assert all(call.usage.prompt_tokens > 0 for call in engine if call.error is None)
    assert run["examples"]
    for example in run["examples"]:  # every stage after stage 1 answered by the engine
        later = {m for stage, m in example.provenance.models.items() if stage != "instructions"}
        assert later == {str(checkpoint)}, example.provenance.models
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
