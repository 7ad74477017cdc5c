"""Teacher and whole-pipeline throughput against a loopback scripted OpenAI server.

``python bench/throughput.py [--part teacher|pipeline|all]``. Every measurement runs against a
:class:`ScriptedOpenAIServer` in a *separate process* (so the client's CPU time is its own):

**pipeline** (the whole tool, from outside): ``selfinstruct generate --api chat
--max-concurrency C -n N`` run as a child process against a server answering every request
after ``L`` seconds with unlimited parallelism and the scripted Self-Instruct responder; the
server counts the requests (the capability probe is off: ``teacher.probe_capabilities=false``).
For each (C, L, N): utilisation = requests / (wall x C / L), on the child's wall clock (process
start to exit, Python start-up included) and on the server's (first request to last answer);
the child's CPU time (``os.wait4``) per request and per finished instruction, and its peak RSS.
Then ``L = 0`` at two sizes (CPU per instruction should not grow with the run), and, as the
floor under it, a bare loop of the SDK's own request path in this process. ``--against DIR``
runs each ``L = 0`` point first with another checkout (e.g. a worktree of the commit an issue
was filed at) and prints the ratio of CPU per instruction: on a shared VM whose speed drifts
by 10-40% within an hour, only figures measured back to back compare.

**teacher** (the transport alone), in three parts:

1. **throughput**: server latency ``L`` per request, unlimited server parallelism, the
   :class:`OpenAITeacher` driven with ``C`` requests at once (fixed and adaptive limit):
   requests/s against the ideal ``C / L``; goal >= 95%;
2. **CPU per request** with ``L = 0``: process CPU time / requests for a bare ``AsyncOpenAI``
   loop (the SDK alone: its typed ``create`` and its lower-level ``post``),
   ``OpenAITeacher.complete`` (SDK + teacher) and the whole pipeline in this process;
   the differences are the teacher's and the pipeline's own cost;
3. **routing**: two endpoints of different latency; least-in-flight routing should split the
   requests in inverse proportion to latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import openai

# the scripted test server lives in tests/support (not in the installed package)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selfinstruct.config import RunConfig
from selfinstruct.teachers import Message, Request
from selfinstruct.teachers.openai import REQUESTS_PER_CLIENT, OpenAIConfig, OpenAITeacher

#: the pipeline runs: (C, L, N); L = 0 measures CPU only
DEFAULT_POINTS = "64:0.25:1000,16:0.25:1000,64:1:1000,16:1:300,64:0:1000,64:0:20000"

REQUEST = Request(stage="outputs", messages=(Message("user", "Name a colour."),), max_tokens=16)


def _serve(latency_s: float, self_instruct: bool, conn: Connection) -> None:
    from tests.support import openai_server
    from tests.support.openai_server import ScriptedOpenAIServer, echo_responder, request_stage
    from tests.support.scripted_teacher import SelfInstructResponder

    # The scripted server writes headers and body in two sends; with Nagle's algorithm on,
    # the body waits for the client's delayed ACK (~40 ms on Linux) and every request looks
    # 40 ms slower than ``latency_s``. Real servers set TCP_NODELAY; so does the benchmark.
    openai_server._Handler.disable_nagle_algorithm = True

    answer: Any = SelfInstructResponder() if self_instruct else echo_responder
    arrivals: list[tuple[float, str | None]] = []  # (monotonic clock, stage); list.append is atomic

    def responder(kind: Any, body: dict[str, Any]) -> Any:
        arrivals.append((time.monotonic(), request_stage()))
        return answer(kind, body)

    with ScriptedOpenAIServer(responder, latency_s=latency_s) as server:
        conn.send(server.base_url)
        conn.recv()  # until told to stop
        work = [t for t, stage in arrivals if stage != "probe"]
        conn.send(
            {
                "requests": len(arrivals),
                "pipeline": len(work),
                "first": min(work, default=0.0),
                "last": max(work, default=0.0),
                "cpu": time.process_time(),  # the server process's own CPU
            }
        )


@contextmanager
def server(
    latency_s: float, *, self_instruct: bool = False
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A scripted server in a child process; yields its URL and (after exit) what it counted:
    completion requests, those not from the capability probe, their first and last arrival
    (``time.monotonic``, the same clock in every process on Linux)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(latency_s, self_instruct, child), daemon=True)
    process.start()
    served: list[dict[str, Any]] = []
    try:
        yield str(parent.recv()), served
    finally:
        parent.send("stop")
        served.append(parent.recv())
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
    # warm up: open the connections (and let an adaptive limit started lower ramp up)
    await asyncio.gather(*(t.complete(REQUEST) for _ in range(2 * t.max_concurrency)))
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(t.complete(REQUEST) for _ in range(requests)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def bare(
    url: str, concurrency: int, requests: int, *, post: bool = False
) -> tuple[float, float]:
    """The SDK alone: ``requests`` chat completions, ``concurrency`` at a time (same sharding),
    through its typed ``create`` or (``post``) the lower-level path the teacher uses."""
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        for _ in range(-(-concurrency // REQUESTS_PER_CLIENT))
    ]
    messages: list[dict[str, str]] = [{"role": "user", "content": "Name a colour."}]
    body = {"model": "m", "messages": messages, "max_tokens": 16, "temperature": 0.7, "top_p": 1.0}
    headers = {"X-Selfinstruct-Stage": "outputs"}
    remaining = requests

    async def worker(client: openai.AsyncOpenAI) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if post:
                raw = await client.post(
                    "/chat/completions", cast_to=bytes, body=body, options={"headers": headers}
                )
                json.loads(raw)
                continue
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


def generate(
    url: str,
    concurrency: int,
    instructions: int,
    timeout_s: float,
    extra: list[str],
    code: str | None = None,
) -> dict[str, float]:
    """``selfinstruct generate`` as a child process: its wall time, CPU time, peak RSS."""
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log", "w+") as log:
        command = [
            sys.executable, "-m", "selfinstruct", "generate", "--api", "chat", "-q",
            "--base-url", url, "--model", "m", "--max-concurrency", str(concurrency),
            "-n", str(instructions), "--out", str(Path(tmp) / "run"),
            "--set", "teacher.probe_capabilities=false", *extra,
        ]  # fmt: skip
        started = time.monotonic()
        env = {**os.environ, "XDG_CACHE_HOME": tmp}  # an empty response cache every point
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=code, env=env)
        while True:  # bounded: killed at the deadline
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout_s:
                os.kill(child.pid, signal.SIGKILL)
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if child.returncode != 0:
            log.seek(0)
            raise SystemExit(f"generate failed ({child.returncode}):\n{log.read()[-2000:]}")
        done = json.loads((Path(tmp) / "run" / "manifest.json").read_text())["counts"]
    return {
        "started": started,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "done": float(done["instructions_done"]),
    }


def pipeline_point(
    c: int, lat: float, n: int, timeout_s: float, extra: list[str], code: str | None = None
) -> dict[str, float]:
    with server(lat, self_instruct=True) as (url, served):
        run = generate(url, c, n, timeout_s, extra, code)
    counted = served[0]
    requests = counted["pipeline"]
    window = counted["last"] + lat - counted["first"]
    return {**run, "requests": requests, "window": window, "server_cpu": counted["cpu"]}


def print_point(c: float, lat: float, n: float, r: dict[str, float], note: str) -> None:
    rate, busy = r["requests"] / r["wall"], r["requests"] / r["window"]
    util = f"{rate * lat / c:6.3f} {r['window']:8.2f} {busy * lat / c:6.3f}" if lat else " " * 22
    print(
        f"   {int(c):3d} {lat:5.2f} {int(n):6d} {int(r['requests']):8d} {r['wall']:7.2f} "
        f"{util} {1000 * r['cpu'] / r['requests']:10.3f} "
        f"{1000 * r['cpu'] / r['done']:8.2f} {r['rss_mb']:7.0f} "
        f"{1000 * r['server_cpu'] / r['requests']:10.3f}{note}"
    )


def pipeline_part(args: argparse.Namespace) -> None:
    print("\npipeline: selfinstruct generate --api chat --max-concurrency C -n N, the probe off;")
    print("utilisation = requests counted by the server / (wall x C/L); wall = the child process")
    print("(start-up included), server = first request to last answer")
    print(
        f"   {'C':>3} {'L s':>5} {'N':>6} {'requests':>8} {'wall s':>7} {'util':>6} "
        f"{'server s':>8} {'util':>6} {'CPU ms/req':>10} {'ms/instr':>8} {'RSS MB':>7} "
        f"{'server CPU':>10}"
    )
    points = [tuple(map(float, p.split(":"))) for p in args.points.split(",")]
    extra = ["--set", "teacher.adaptive_concurrency=false"] if args.fixed else []
    print(f"   teacher limit: {'fixed at C' if args.fixed else 'adaptive (the default)'}", end="")
    print(f"; code: {args.code}" if args.code else "", end="")
    print(f"; reference: {args.against}" if args.against else "")
    for c, lat, n in points:
        if args.against and not lat:  # the reference first, then this code, back to back
            ref = pipeline_point(int(c), lat, int(n), args.timeout, extra, args.against)
            print_point(c, lat, n, ref, "   (--against)")
        r = pipeline_point(int(c), lat, int(n), args.timeout, extra, args.code)
        print_point(c, lat, n, r, "")
        if args.against and not lat:
            ratio = (r["cpu"] / r["done"]) / (ref["cpu"] / ref["done"])
            print(f"   {'':>20} CPU per instruction / the reference's: {ratio:.3f}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "selfinstruct", "generate", "--help"]
    subprocess.run(command, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    boot = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"   start-up reference (selfinstruct generate --help): {1000 * boot:.0f} ms CPU")
    n = args.cpu_requests
    with server(0.0) as (url, _):
        _, post_cpu = asyncio.run(bare(url, 32, n, post=True))
    print(f"   floor: bare SDK client.post loop, L=0, C=32: {1000 * post_cpu / n:.3f} ms CPU/req")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--cpu-requests", type=int, default=600)
    parser.add_argument("--instructions", type=int, default=100)
    parser.add_argument("--part", choices=("teacher", "pipeline", "all"), default="all")
    parser.add_argument(
        "--points", default=DEFAULT_POINTS,
        help="pipeline runs, C:L:N comma-separated (L=0: CPU only, no utilisation)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600, help="per pipeline run, s")
    parser.add_argument(
        "--fixed", action="store_true", help="pipeline: teacher.adaptive_concurrency=false"
    )
    parser.add_argument(
        "--code", help="pipeline: run the child in this directory, so that `python -m "
        "selfinstruct` imports its package (e.g. a worktree of the commit to compare with)",
    )  # fmt: skip
    parser.add_argument(
        "--against", help="pipeline: run each L=0 point first with the checkout in this "
        "directory (as --code) and print this code's CPU per instruction as a ratio of it",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"python {platform.python_version()}, openai {openai.__version__}, "
          f"{mp.cpu_count()} CPUs, {platform.machine()}")  # fmt: skip
    if args.part in ("pipeline", "all"):
        pipeline_part(args)
    if args.part in ("teacher", "all"):
        teacher_part(args)


def teacher_part(args: argparse.Namespace) -> None:
    c, lat = args.concurrency, args.latency
    ideal = c / lat

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
        _, post_cpu = asyncio.run(bare(url, c, n, post=True))
        _, teacher_cpu = asyncio.run(with_teacher(teacher([url], c, False), n))
        _, adaptive_cpu = asyncio.run(with_teacher(teacher([url], c, True), n))
    with server(0.0, self_instruct=True) as (url, _):
        p_requests, p_wall, p_cpu = pipeline_cpu(url, args.instructions)
    per = {
        "bare AsyncOpenAI create loop (SDK only)": 1000 * bare_cpu / n,
        "bare AsyncOpenAI post loop (SDK only)": 1000 * post_cpu / n,
        "OpenAITeacher.complete, fixed limit": 1000 * teacher_cpu / n,
        "OpenAITeacher.complete, adaptive": 1000 * adaptive_cpu / n,
        f"Pipeline, {args.instructions} tasks ({p_requests} requests)": 1000 * p_cpu / p_requests,
    }
    for name, ms in per.items():
        print(f"   {name:<44} {ms:6.2f} ms/req")
    sdk = per["bare AsyncOpenAI post loop (SDK only)"]
    ours_teacher = per["OpenAITeacher.complete, adaptive"] - sdk
    ours_pipeline = 1000 * p_cpu / p_requests - per["OpenAITeacher.complete, adaptive"]
    print(f"   => teacher's own code (teacher - post)      {ours_teacher:6.2f} ms/req")
    print(f"   => pipeline's own code (pipeline - teacher) {ours_pipeline:6.2f} ms/req"
          f"   (prompts, parsing, ROUGE-L filter, store; {p_wall:.1f}s wall)")  # fmt: skip

    print("\n3. routing: two endpoints, L=0.05s and L=0.2s, C=8, 320 requests")
    with server(0.05) as (fast, fast_served), server(0.2) as (slow, slow_served):
        t = teacher([fast, slow], 8, False)
        wall, _ = asyncio.run(with_teacher(t, 320))
    fast_n, slow_n = fast_served[0]["requests"], slow_served[0]["requests"]
    print(
        f"   fast {fast_n} requests, slow {slow_n}: ratio {fast_n / max(1, slow_n):.2f} "
        f"(latency ratio 4); {321 / wall:.0f} req/s vs ideal {4 / 0.05 + 4 / 0.2:.0f}/s"
    )


if __name__ == "__main__":
    sys.exit(main())
