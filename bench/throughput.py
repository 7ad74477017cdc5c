"""Teacher throughput against a loopback scripted OpenAI server: ``python bench/throughput.py``.

Three measurements, each against a :class:`ScriptedOpenAIServer` in a *separate process*
(so this process's CPU time is the client's alone):

1. **throughput**: server latency ``L`` per request, unlimited server parallelism, the
   :class:`OpenAITeacher` driven with ``C`` requests at once (fixed and adaptive limit):
   requests/s against the ideal ``C / L``; goal >= 95%;
2. **CPU per request** with ``L = 0``: process CPU time / requests for a bare ``AsyncOpenAI``
   loop (the SDK alone), ``OpenAITeacher.complete`` (SDK + teacher) and the whole pipeline
   (``selfinstruct.pipeline.Pipeline`` with the scripted Self-Instruct responder);
   the differences are the teacher's and the pipeline's own cost;
3. **routing**: two endpoints of different latency; least-in-flight routing should split the
   requests in inverse proportion to latency.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import openai

# the scripted test server lives in tests/support (not in the installed package)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selfinstruct.config import RunConfig
from selfinstruct.teachers import Message, Request
from selfinstruct.teachers.openai import REQUESTS_PER_CLIENT, OpenAIConfig, OpenAITeacher

REQUEST = Request(stage="outputs", messages=(Message("user", "Name a colour."),), max_tokens=16)


def _serve(latency_s: float, self_instruct: bool, conn: Connection) -> None:
    from tests.support import openai_server
    from tests.support.openai_server import ScriptedOpenAIServer
    from tests.support.scripted_teacher import SelfInstructResponder

    # The scripted server writes headers and body in two sends; with Nagle's algorithm on,
    # the body waits for the client's delayed ACK (~40 ms on Linux) and every request looks
    # 40 ms slower than ``latency_s``. Real servers set TCP_NODELAY; so does the benchmark.
    openai_server._Handler.disable_nagle_algorithm = True

    responder = SelfInstructResponder() if self_instruct else None
    with ScriptedOpenAIServer(responder, latency_s=latency_s) as server:
        conn.send(server.base_url)
        conn.recv()  # until told to stop
        conn.send(sum(1 for r in server.requests if r.path != "/v1/models"))


@contextmanager
def server(latency_s: float, *, self_instruct: bool = False) -> Iterator[tuple[str, list[int]]]:
    """A scripted server in a child process; yields its URL and (after exit) [requests served]."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(latency_s, self_instruct, child), daemon=True)
    process.start()
    served: list[int] = []
    try:
        yield str(parent.recv()), served
    finally:
        parent.send("stop")
        served.append(int(parent.recv()))
        process.join(timeout=10)


def teacher(urls: list[str], concurrency: int, adaptive: bool) -> OpenAITeacher:
    config = OpenAIConfig.model_validate(
        {"base_url": urls, "model": "m", "max_concurrency": concurrency,
         "adaptive_concurrency": adaptive, "timeout_s": 30}
    )  # fmt: skip
    return OpenAITeacher(config)


async def drive(t: OpenAITeacher, requests: int) -> tuple[float, float]:
    """Run ``requests`` completions through ``t`` (all submitted at once) after a warm-up;
    wall s, CPU s."""
    # warm up: open the connections and let an adaptive limit ramp up (slow start from 8)
    await asyncio.gather(*(t.complete(REQUEST) for _ in range(2 * t.max_concurrency)))
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(t.complete(REQUEST) for _ in range(requests)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def bare(url: str, concurrency: int, requests: int) -> tuple[float, float]:
    """The SDK alone: ``requests`` chat completions, ``concurrency`` at a time (same sharding)."""
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        for _ in range(-(-concurrency // REQUESTS_PER_CLIENT))
    ]
    messages: list[dict[str, str]] = [{"role": "user", "content": "Name a colour."}]
    remaining = requests

    async def worker(client: openai.AsyncOpenAI) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await client.chat.completions.create(
                model="m",
                messages=messages,
                max_tokens=16,
                temperature=0.7,
                top_p=1.0,  # type: ignore[arg-type]
            )

    await clients[0].chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    result = time.perf_counter() - wall, time.process_time() - cpu
    for client in clients:
        await client.close()
    return result


async def with_teacher(t: OpenAITeacher, requests: int) -> tuple[float, float]:
    try:
        return await drive(t, requests)
    finally:
        await t.aclose()


def pipeline_cpu(url: str, instructions: int) -> tuple[int, float, float]:
    """The whole pipeline for ``instructions`` tasks: (teacher requests, wall s, CPU s)."""
    from selfinstruct.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        config = RunConfig.model_validate(
            {"num_instructions": instructions,
             "teacher": {"base_url": [url], "model": "m", "max_concurrency": 32}}
        )  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(Pipeline(config, out, quiet=True).run())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        requests = sum(1 for _ in (out / "requests.jsonl").open())
    return requests, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--cpu-requests", type=int, default=600)
    parser.add_argument("--instructions", type=int, default=100)
    args = parser.parse_args()
    c, lat = args.concurrency, args.latency
    ideal = c / lat
    print(f"python {platform.python_version()}, openai {openai.__version__}, "
          f"{mp.cpu_count()} CPUs, {platform.machine()}")  # fmt: skip

    print(
        f"\n1. throughput: C={c}, L={lat:g}s, {args.requests} requests, ideal C/L = {ideal:.0f}/s"
    )
    print(
        f"   {'limit':<10} {'req/s':>8} {'ratio':>7} {'CPU ms/req':>11} "
        f"{'latency ms':>11} {'in flight':>9}"
    )
    for adaptive in (False, True):
        with server(lat) as (url, _):
            t = teacher([url], c, adaptive)
            wall, cpu = asyncio.run(with_teacher(t, args.requests))
        rate = args.requests / wall
        name = "adaptive" if adaptive else "fixed"
        seen = float(t.endpoint_stats()[url]["mean_latency_s"]) * 1000  # as the client saw it
        print(
            f"   {name:<10} {rate:8.1f} {rate / ideal:7.3f} "
            f"{1000 * cpu / args.requests:11.2f} {seen:11.1f} {rate * seen / 1000:9.1f}"
        )

    n = args.cpu_requests
    print(f"\n2. CPU per request, L=0, C={c} ({n} requests; client process CPU only)")
    with server(0.0) as (url, _):
        _, bare_cpu = asyncio.run(bare(url, c, n))
        _, teacher_cpu = asyncio.run(with_teacher(teacher([url], c, False), n))
        _, adaptive_cpu = asyncio.run(with_teacher(teacher([url], c, True), n))
    with server(0.0, self_instruct=True) as (url, _):
        p_requests, p_wall, p_cpu = pipeline_cpu(url, args.instructions)
    per = {
        "bare AsyncOpenAI loop (SDK only)": 1000 * bare_cpu / n,
        "OpenAITeacher.complete, fixed limit": 1000 * teacher_cpu / n,
        "OpenAITeacher.complete, adaptive": 1000 * adaptive_cpu / n,
        f"Pipeline, {args.instructions} tasks ({p_requests} requests)": 1000 * p_cpu / p_requests,
    }
    for name, ms in per.items():
        print(f"   {name:<44} {ms:6.2f} ms/req")
    sdk = per["bare AsyncOpenAI loop (SDK only)"]
    ours_teacher = per["OpenAITeacher.complete, adaptive"] - sdk
    ours_pipeline = 1000 * p_cpu / p_requests - per["OpenAITeacher.complete, adaptive"]
    print(f"   => teacher's own code (teacher - bare)      {ours_teacher:6.2f} ms/req")
    print(f"   => pipeline's own code (pipeline - teacher) {ours_pipeline:6.2f} ms/req"
          f"   (prompts, parsing, ROUGE-L filter, store; {p_wall:.1f}s wall)")  # fmt: skip

    print("\n3. routing: two endpoints, L=0.05s and L=0.2s, C=8, 320 requests")
    with server(0.05) as (fast, fast_served), server(0.2) as (slow, slow_served):
        t = teacher([fast, slow], 8, False)
        wall, _ = asyncio.run(with_teacher(t, 320))
    fast_n, slow_n = fast_served[0], slow_served[0]
    print(
        f"   fast {fast_n} requests, slow {slow_n}: ratio {fast_n / max(1, slow_n):.2f} "
        f"(latency ratio 4); {321 / wall:.0f} req/s vs ideal {4 / 0.05 + 4 / 0.2:.0f}/s"
    )


if __name__ == "__main__":
    sys.exit(main())
