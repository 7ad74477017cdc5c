"""``--executor ray`` on a real 2-node Ray cluster on 127.0.0.1, against the scripted server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from selfinstruct.config import build_config
from selfinstruct.errors import InputError
from selfinstruct.pipeline import run_pipeline
from selfinstruct.records import TeacherCall
from tests.integration.helpers import max_pairwise_rouge, read_run, rows
from tests.integration.kill_harness import FILES, SoakResult, audit, complete_lines
from tests.ray.cluster import LocalCluster
from tests.ray.sockets import descendants, listening_addresses
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]


def ray_config(server: ScriptedOpenAIServer, target: int, address: str | None, **more: object):
    """Two workers of 0.6 CPU on nodes of 1 CPU: never both on one node, so one per node."""
    overrides = {
        "teacher.base_url": [server.base_url],
        "num_instructions": target,
        "executor.kind": "ray",
        "executor.ray_address": address,
        "executor.workers": 2,
        "executor.worker_cpus": 0.6,
        **more,
    }
    return build_config(None, overrides, environ={})


def assert_valid(out: Path, target: int) -> dict:
    """Every line valid, ids unique, exactly the target, stage-1 novelty kept, calls traceable."""
    run = read_run(out)
    instructions, examples = run["instructions"], run["examples"]
    assert len({row.id for row in instructions}) == len(instructions)
    assert len({row.id for row in examples}) == len(examples)
    assert len({row.instruction_id for row in examples}) == target
    assert max_pairwise_rouge([row.instruction for row in instructions]) <= 0.7
    calls = rows(out / "requests.jsonl", TeacherCall)
    assert len({call.id for call in calls}) == len(calls)
    known = {call.id for call in calls}
    assert all(set(row.provenance.calls) <= known for row in examples)
    return run


@pytest.mark.timeout(120)
def test_every_ray_address_is_on_loopback(cluster: LocalCluster):
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        gcs = ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
    assert len(nodes) == 2
    assert {node["NodeManagerAddress"] for node in nodes} == {"127.0.0.1"}
    assert gcs.startswith("127.0.0.1:")
    listening = listening_addresses(descendants(os.getpid()) - {os.getpid()})
    assert listening, "found no Ray process listening"
    assert {host for host, _ in listening} <= {"127.0.0.1"}, listening


@pytest.mark.timeout(240)
def test_pipeline_runs_jobs_on_both_nodes(cluster: LocalCluster, tmp_path: Path):
    out = tmp_path / "run"
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.02) as server:
        result = run_pipeline(ray_config(server, 30, cluster.address), out)
    assert result.status == "complete"
    run = assert_valid(out, 30)
    executor = run["manifest"].executor
    assert executor["kind"] == "ray" and executor["ray_version"] == "2.60.0"
    assert executor["address"] == cluster.address
    nodes = executor["nodes"]
    assert len(nodes) == 2 and all(node["jobs"] > 0 for node in nodes.values()), nodes
    jobs_requests = sum(node["requests"] for node in nodes.values())
    stage_one = run["manifest"].counts.requests["instructions"]
    assert jobs_requests + stage_one == sum(run["manifest"].counts.requests.values())


@pytest.mark.timeout(240)
def test_resume_moves_between_local_and_ray(cluster: LocalCluster, tmp_path: Path):
    out = tmp_path / "run"
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        local = build_config(None, {"teacher.base_url": [server.base_url], "num_instructions": 8})
        assert run_pipeline(local, out).status == "complete"
        assert read_run(out)["manifest"].executor == {"kind": "local"}
        before = complete_lines(out / "examples.jsonl")
        assert run_pipeline(ray_config(server, 16, cluster.address), out).status == "complete"
        assert (out / "examples.jsonl").read_bytes().startswith(before)
        assert read_run(out)["manifest"].executor["kind"] == "ray"
        local24 = local.model_copy(update={"num_instructions": 24})
        assert run_pipeline(local24, out).status == "complete"
    assert_valid(out, 24)


@pytest.mark.timeout(300)
def test_a_worker_node_lost_mid_run_still_reaches_the_target(
    cluster: LocalCluster, tmp_path: Path
):
    out = tmp_path / "run"
    worker = cluster.workers[0]
    removed = threading.Event()

    def remove_when_started() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            path = out / "examples.jsonl"
            if path.exists() and path.read_text().count("\n") >= 15:
                cluster.remove_worker(worker)
                removed.set()  # the lost actor cannot restart: the head has 0.4 CPU left
                return
            time.sleep(0.05)

    remover = threading.Thread(target=remove_when_started, daemon=True)
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.15) as server:
        remover.start()  # the run must outlast Ray noticing the loss (tests.ray.cluster)
        result = run_pipeline(ray_config(server, 80, cluster.address), out)
    remover.join(timeout=10)
    assert removed.is_set(), "the run ended before the node was removed"
    assert result.status == "complete"
    run = assert_valid(out, 80)
    executor = run["manifest"].executor
    assert executor["lost_job_attempts"] >= 1, executor  # jobs in flight there were redone
    assert worker.node_id in executor["nodes"], executor  # it had done jobs before
    assert len(executor["nodes"]) == 2, executor


@pytest.mark.timeout(300)
def test_driver_sigkilled_mid_run_resumes_without_loss_or_duplicates(
    cluster: LocalCluster, tmp_path: Path
):
    out = tmp_path / "run"
    target = 40
    with ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.05) as server:
        args = [
            sys.executable, "-m", "selfinstruct", "generate", "--executor", "ray",
            "--ray-address", cluster.address, "--base-url", server.base_url,
            "-n", str(target), "--out", str(out), "-q",
        ]  # fmt: skip
        env = {**os.environ, "OPENAI_API_KEY": "sk-soak-SECRET"}
        first = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            path = out / "examples.jsonl"
            if path.exists() and path.read_text().count("\n") >= 10:
                break
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        first.send_signal(signal.SIGKILL)
        first.wait()
        snapshot = {name: complete_lines(out / name) for name in FILES}
        second = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    result = SoakResult(kills=1, resumes=1, target=target, final_exit=second.returncode)
    audit(out, [snapshot], result)
    assert result.ok, (result.summary(), result.problems)
    assert_valid(out, target)
    assert read_run(out)["manifest"].executor["kind"] == "ray"


@pytest.mark.timeout(240)
def test_failed_requests_are_rows_not_a_failed_run(cluster: LocalCluster, tmp_path: Path):
    out = tmp_path / "run"
    server = ScriptedOpenAIServer(
        SelfInstructResponder(), fault_rate=0.1, fault_kinds=("500", "malformed"), seed=3
    )
    with server:
        config = ray_config(
            server, 20, cluster.address,
            **{"teacher.max_retries": 0, "max_consecutive_failures": 100},
        )  # fmt: skip
        result = run_pipeline(config, out)
    assert result.status == "complete"
    run = assert_valid(out, 20)
    nodes = run["manifest"].executor["nodes"]
    failed = [call for call in rows(out / "requests.jsonl", TeacherCall) if call.error]
    assert sum(node["failed_requests"] for node in nodes.values()) >= 1
    assert Counter(call.stage for call in failed).keys() - {"instructions"}
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.timeout(120)
def test_workers_ray_cannot_place_fail_in_one_line(cluster: LocalCluster, tmp_path: Path):
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        config = ray_config(server, 5, cluster.address, **{
            "executor.worker_cpus": 4, "executor.start_timeout_s": 5,
        })  # fmt: skip
        with pytest.raises(InputError, match=r"fewer than 2 workers of 4\.0 CPU each"):
            run_pipeline(config, tmp_path / "run")
    examples = tmp_path / "run" / "examples.jsonl"
    assert not examples.exists() or not examples.read_text()
