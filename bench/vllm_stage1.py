"""Stage 1 with ``n`` and vLLM's prefix cache, measured on one vLLM server in one run.

    python bench/vllm_stage1.py --model CHECKPOINT --cpu          # in .venv-vllm (CPU build)

Starts a vLLM OpenAI server on 127.0.0.1, then runs the whole pipeline (``selfinstruct
generate``) twice to the same target, with ``stages.instructions.samples`` 1 and 4: prompt
tokens stage 1 spent per kept instruction, the ratio, and the server's prefix-cache hit rate
over each run (its ``/metrics``), which the fixed stage-2/3 demonstrations make high.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vllm_throughput import start_server, stop_server

_METRIC = re.compile(r"^(vllm:prefix_cache_(?:hits|queries))_total\{[^}]*\}\s+([0-9.e+]+)$", re.M)


def prefix_cache(base_url: str) -> dict[str, float]:
    """The server's prefix-cache counters (tokens): hits and queries so far."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as page:
        text = page.read().decode()
    found: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        found[name.split("_")[-1]] = found.get(name.split("_")[-1], 0.0) + float(value)
    return found


def generate(base_url: str, out: Path, samples: int, target: int) -> dict[str, float]:
    command = [
        sys.executable, "-m", "selfinstruct", "generate", "--base-url", base_url,
        "--model", "bench-model", "--api", "completions", "-n", str(target), "--out", str(out),
        "-q", "--seed", "5", "--max-concurrency", "8",
        "--set", f"stages.instructions.samples={samples}",
        "--set", "classify_demos=6", "--set", "max_instances_per_instruction=1",
        "--set", "stages.inputs.sampling.max_tokens=48",
        "--set", "stages.outputs.sampling.max_tokens=64",
        "--set", "stages.instructions.sampling.max_tokens=200",
    ]  # fmt: skip
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    stage1 = manifest["usage"]["instructions"]
    kept = manifest["counts"]["instructions_kept"]
    return {
        "samples": samples,
        "stage1_requests": manifest["counts"]["requests"]["instructions"],
        "instructions_kept": kept,
        "stage1_prompt_tokens": stage1["prompt_tokens"],
        "prompt_tokens_per_kept": stage1["prompt_tokens"] / max(kept, 1),
        "seconds": time.monotonic() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="HF checkpoint folder or id")
    parser.add_argument("--target", type=int, default=12, help="instructions per run")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--cpu", action="store_true", help="vLLM's CPU build: eager, small KV")
    parser.add_argument("--server-timeout", type=float, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vllm-stage1-"))
    process, base_url = start_server(args, work / "server.log")
    try:
        rows = []
        for samples in (1, 4):
            before = prefix_cache(base_url)
            row = generate(base_url, work / f"n{samples}", samples, args.target)
            after = prefix_cache(base_url)
            queries = after.get("queries", 0) - before.get("queries", 0)
            row["prefix_cache_hit_rate"] = (after.get("hits", 0) - before.get("hits", 0)) / max(
                queries, 1
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stop_server(process)
    one, four = rows
    ratio = four["prompt_tokens_per_kept"] / max(one["prompt_tokens_per_kept"], 1e-9)
    print(f"stage-1 prompt tokens per kept instruction: n=1 {one['prompt_tokens_per_kept']:.0f}, "
          f"n=4 {four['prompt_tokens_per_kept']:.0f} (ratio {ratio:.2f})")
    print(f"prefix-cache hit rate (tokens): n=1 run {one['prefix_cache_hit_rate']:.0%}, "
          f"n=4 run {four['prefix_cache_hit_rate']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
