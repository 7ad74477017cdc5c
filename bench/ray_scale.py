"""How the ``ray`` executor's http engine scales with worker processes, in one run.

``python bench/ray_scale.py [--jobs 300] [--workers 1,2]``: a zero-latency scripted
OpenAI-compatible server (Self-Instruct answers) in a separate process; a local Ray (one node,
loopback) started once; then for each worker count N a fresh set of N Ray actors
(:class:`~selfinstruct.executors.ray_worker.JobWorker`, one process each) runs the same
``--jobs`` kept instructions through stages 2-3 and the instance filters, all submitted at
once from the driver, which receives every job's rows and teacher calls, as in a run. Each
actor's teacher keeps ``--concurrency`` requests in flight. Measured after a warm-up
(the actors built, their teachers started): rows (examples) per second and jobs per second
for each N, and their ratio to N = 1 — the goal is >= 0.8 x N while N is within the cores
(the server and the driver need CPU too: their CPU seconds are printed beside).

Stage 1 is not measured: it stays on the driver in every run, so it is the same cost at
any N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import server

from selfinstruct.config import build_config
from selfinstruct.executors import ExecutorContext
from selfinstruct.executors.ray_cluster import prepare_environment
from selfinstruct.executors.ray_http import RayHttpExecutor
from selfinstruct.executors.ray_worker import call_namer
from selfinstruct.jobs import JobRunner
from selfinstruct.pipeline import Pipeline
from selfinstruct.records import Instruction, TeacherCall
from selfinstruct.stages import DEFAULT_SEQUENCE

TASKS = [
    "Write a short poem about {}.", "Summarize the main idea of {} in one sentence.",
    "List three facts about {}.", "Classify the sentiment of a review about {}.",
    "Explain {} to a ten-year-old.", "Give an example sentence that uses the word {}.",
]  # fmt: skip
TOPICS = ["rivers", "bread", "trains", "winter", "chess", "bees", "glass", "maps", "salt"]


def instructions(count: int) -> list[Instruction]:
    rows = []
    for k in range(count):
        text = TASKS[k % len(TASKS)].format(f"{TOPICS[k % len(TOPICS)]} #{k}")
        rows.append(Instruction(id=f"i{k:06d}", instruction=text, request=0, model="m",
                                max_rouge=0.0))  # fmt: skip
    return rows


async def measure(base_url: str, workers: int, jobs: int, concurrency: int) -> dict[str, float]:
    """Rows/s and jobs/s of ``workers`` actors over ``jobs`` instructions (after a warm-up)."""
    config = build_config(None, {
        "teacher.base_url": [base_url], "teacher.model": "scripted-model",
        "teacher.max_concurrency": concurrency, "teacher.probe_capabilities": False,
        "teacher.adaptive_concurrency": False,
        "executor.kind": "ray", "executor.workers": workers, "executor.worker_cpus": 0.5,
    }, environ={})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(config, Path(tmp) / "run")  # builds the stages; writes nothing
    calls: list[TeacherCall] = []
    new_call_id = call_namer()

    prompt_sha256 = {name: t.sha256 for name, t in pipeline.stages.templates.items()}
    context = ExecutorContext(
        config, pipeline.seeds, DEFAULT_SEQUENCE, prompt_sha256,
        calls.append, new_call_id, lambda: None,
    )  # fmt: skip
    executor = RayHttpExecutor(context)
    models = dict.fromkeys(pipeline.stages.names, "scripted-model")
    runner = JobRunner((pipeline.stages.first.name, pipeline.stages.first.prompt.sha),
                       pipeline.stages.sequence, config.filters, models, config.seed,
                       None, new_call_id)  # type: ignore[arg-type]  # fmt: skip
    await executor.start(runner)
    try:
        rows = instructions(jobs + 4 * workers)
        warm, timed = rows[: 4 * workers], rows[4 * workers :]
        await asyncio.gather(*(executor.expand(row) for row in warm))
        calls.clear()
        started, cpu = time.perf_counter(), time.process_time()
        done = await asyncio.gather(*(executor.expand(row) for row in timed))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await executor.aclose()
    examples = sum(len(kept) for _, kept in done)
    return {"wall_s": wall, "rows_per_s": examples / wall, "jobs_per_s": jobs / wall,
            "requests_per_s": len(calls) / wall, "examples": examples,
            "driver_cpu_s": cpu}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight per actor")
    args = parser.parse_args()
    counts = [int(part) for part in args.workers.split(",")]
    prepare_environment(None)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    os.environ["RAY_TMPDIR"] = ray_tmp
    import ray

    ray.init(address="local", num_cpus=max(4, 2 * max(counts)), include_dashboard=False,
             object_store_memory=200 * 2**20, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    print(f"ray {ray.__version__}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"{args.jobs} jobs, {args.concurrency} requests in flight per actor, "
          "zero-latency server in its own process")  # fmt: skip
    results: dict[int, dict[str, float]] = {}
    try:
        for workers in counts:  # a fresh server each time: its CPU time is this part's
            with server(0.0, self_instruct=True) as (base_url, served):
                results[workers] = asyncio.run(
                    measure(base_url, workers, args.jobs, args.concurrency)
                )
            results[workers]["server_cpu_s"] = served[0]["cpu"]
    finally:
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    base = results[counts[0]]["rows_per_s"] / counts[0]
    for workers, result in results.items():
        ratio = result["rows_per_s"] / base
        print(f"workers={workers}: {result['rows_per_s']:.1f} rows/s, "
              f"{result['jobs_per_s']:.1f} jobs/s, {result['requests_per_s']:.1f} requests/s, "
              f"{result['examples']} rows in {result['wall_s']:.1f} s; "
              f"speed-up x{ratio:.2f} (goal >= {0.8 * workers:.1f}); CPU s: driver "
              f"{result['driver_cpu_s']:.1f}, server {result['server_cpu_s']:.1f} (whole life), "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
