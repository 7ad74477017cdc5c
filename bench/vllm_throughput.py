"""In-process vLLM teacher vs a vLLM OpenAI server: the same requests, throughput of each.

    python bench/vllm_throughput.py --model CHECKPOINT [--requests 256] [--max-tokens 128]

Runs the workload through ``--teacher vllm`` (``VllmTeacher``, one engine in this process),
closes it, then starts ``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 and runs
the same requests through the ``openai`` teacher (``--base-url``), all in flight at once.
Prints requests/s and generated tokens/s of each and the in-process/server ratio; ``--json``
writes them to a file. Works on the CUDA build and on the CPU build (``--cpu``: eager mode, a
small KV cache, tiny counts). The ``__main__`` guard matters: vLLM may spawn processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from selfinstruct.teachers import make_teacher  # noqa: E402
from selfinstruct.teachers.base import Request  # noqa: E402
from selfinstruct.teachers.choice import parse_teacher_config  # noqa: E402

SERVED_NAME = "bench-model"
TOPICS = ["rivers", "prime numbers", "bread", "volcanoes", "chess", "tides", "owls", "glass"]


def workload(count: int, max_tokens: int) -> list[Request]:
    """``count`` distinct completion prompts, each with its own seed."""
    return [
        Request(
            stage="outputs",
            prompt=f"Task {i}: Write a short paragraph about {TOPICS[i % len(TOPICS)]}.\nAnswer:",
            max_tokens=max_tokens,
            temperature=0.7,
            seed=i,
        )
        for i in range(count)
    ]


async def run_requests(teacher: Any, requests: list[Request]) -> dict[str, float]:
    await teacher.start()
    try:
        await teacher.complete(requests[0])  # warm-up, not timed
        started = time.perf_counter()
        answers = await asyncio.gather(*(teacher.complete(r) for r in requests))
        elapsed = time.perf_counter() - started
    finally:
        await teacher.aclose()
    tokens = sum(a.usage.completion_tokens for a in answers)
    return {
        "requests": len(answers),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(answers) / elapsed, 3),
        "tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1",
        "--port", str(port), "--model", args.model, "--served-model-name", SERVED_NAME,
        "--max-model-len", str(args.max_model_len),
    ]  # fmt: skip
    env = dict(os.environ)
    if args.cpu:  # as the in-process teacher does on CPU: eager, 2 GiB of KV cache
        command += ["--enforce-eager", "--no-enable-chunked-prefill"]
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = time.monotonic() + args.server_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the vLLM server exited; its log: {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    stop_server(process)
    raise SystemExit(f"the vLLM server did not start in {args.server_timeout} s; log: {log}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="HF checkpoint folder or id")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--cpu", action="store_true", help="vLLM's CPU build: eager, small KV")
    parser.add_argument("--server-timeout", type=float, default=300)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    requests = workload(args.requests, args.max_tokens)
    results: dict[str, Any] = {"workload": vars(args) | {"json": str(args.json)}}

    engine_config = parse_teacher_config(dict(
        kind="vllm",
        model=args.model,
        max_model_len=args.max_model_len,
        max_concurrency=args.requests,
    ))
    inprocess = make_teacher(engine_config)
    print(f">> in-process: {args.requests} requests, max_tokens {args.max_tokens}", flush=True)
    results["inprocess"] = asyncio.run(run_requests(inprocess, requests))
    print(f"   {results['inprocess']}", flush=True)

    log = Path(os.environ.get("TMPDIR", "/tmp")) / "vllm-bench-server.log"
    print(f">> server (log: {log})", flush=True)
    process, base_url = start_server(args, log)
    try:
        server_config = parse_teacher_config(dict(
            kind="openai",
            base_url=base_url,
            model=SERVED_NAME,
            api="completions",
            api_key="bench",
            max_concurrency=args.requests,
            adaptive_concurrency=False,
        ))
        server = make_teacher(server_config)
        results["server"] = asyncio.run(run_requests(server, requests))
    finally:
        stop_server(process)
    print(f"   {results['server']}", flush=True)

    ratio = {
        key: round(results["inprocess"][key] / results["server"][key], 3)
        for key in ("requests_per_s", "tokens_per_s")
    }
    results["inprocess_over_server"] = ratio
    print(
        f"in-process / server: requests/s x{ratio['requests_per_s']}, "
        f"tokens/s x{ratio['tokens_per_s']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
