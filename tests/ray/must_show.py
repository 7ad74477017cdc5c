"""The issue's "must show" runs, on a real 2-node Ray cluster on 127.0.0.1, with numbers.

    python -m tests.ray.must_show [--target 300] [--out DIR]

1. ``selfinstruct generate --executor ray --ray-address HOST:PORT --base-url URL -n TARGET``:
   valid (ids unique, no two instructions with ROUGE-L F > 0.7), work on both nodes;
2. the same command SIGKILLed mid-run, then rerun: nothing written before the kill lost,
   nothing duplicated, the target reached;
3. the worker node (its raylet, running one of the two actors) taken away mid-run: Ray
   restarts the actor on the head node and the run still completes at the target.

Each run is a real ``selfinstruct`` child process against the scripted server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from selfinstruct.executors.ray_cluster import prepare_environment
from tests.integration.helpers import max_pairwise_rouge, read_run
from tests.integration.kill_harness import FILES, SoakResult, audit, complete_lines
from tests.ray.cluster import LOOPBACK, LocalCluster, local_cluster
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

REPO = Path(__file__).resolve().parents[2]


def command(address: str, base_url: str, target: int, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "selfinstruct", "generate", "--executor", "ray",
        "--ray-address", address, "--base-url", base_url, "-n", str(target),
        "--out", str(out), "-q",
    ]  # fmt: skip


def lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def wait_for_examples(out: Path, count: int, process: subprocess.Popen[str]) -> None:
    while process.poll() is None and lines(out / "examples.jsonl") < count:
        time.sleep(0.05)


def describe(out: Path, target: int) -> str:
    run = read_run(out)
    instructions, examples = run["instructions"], run["examples"]
    manifest = run["manifest"]
    done = len({row.instruction_id for row in examples})
    unique = len({r.id for r in instructions}) == len(instructions) and len(
        {r.id for r in examples}
    ) == len(examples)
    rouge = max_pairwise_rouge([row.instruction for row in instructions])
    nodes = {node[:8]: counts for node, counts in manifest.executor.get("nodes", {}).items()}
    return (
        f"status={manifest.status} done={done}/{target} instructions={len(instructions)} "
        f"examples={len(examples)} ids_unique={unique} max_pairwise_rougeL={rouge:.3f}\n"
        f"  executor: kind={manifest.executor.get('kind')} "
        f"address={manifest.executor.get('address')} "
        f"lost_job_attempts={manifest.executor.get('lost_job_attempts')}\n"
        f"  nodes: {json.dumps(nodes)}"
    )


def clean_run(cluster: LocalCluster, base_url: str, target: int, out: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(command(cluster.address, base_url, target, out), cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    print(f"[1] clean run: exit={done.returncode} in {time.monotonic() - started:.0f} s")
    print("  " + describe(out, target))


def killed_run(cluster: LocalCluster, base_url: str, target: int, out: Path) -> None:
    args = command(cluster.address, base_url, target, out)
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    wait_for_examples(out, target // 3, first)
    alive = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    snapshot = {name: complete_lines(out / name) for name in FILES}
    before = {name: data.count(b"\n") for name, data in snapshot.items()}
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    result = SoakResult(kills=1, resumes=1, target=target, final_exit=second.returncode)
    audit(out, [snapshot], result)
    print(f"[2] SIGKILL mid-run (alive at kill: {alive}; lines then: {before}), rerun: "
          f"exit={second.returncode}; {result.summary()} problems={result.problems}")  # fmt: skip
    print("  " + describe(out, target))


def node_lost_run(cluster: LocalCluster, base_url: str, target: int, out: Path) -> None:
    node = cluster.workers[0]  # it runs one of the two actors (placement spreads them)
    args = command(cluster.address, base_url, target, out)
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    removed_at: list[int] = []

    def remove() -> None:
        wait_for_examples(out, target // 3, process)
        if process.poll() is None:
            removed_at.append(lines(out / "examples.jsonl"))
            cluster.remove_worker(node)
            print(f"    removed node {str(node.node_id)[:8]}", flush=True)

    remover = threading.Thread(target=remove)
    remover.start()
    code = process.wait()
    remover.join()
    print(f"[3] worker node removed at {removed_at} example lines; exit={code}")
    print("  " + describe(out, target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.02, help="server seconds per answer")
    parser.add_argument("--out", type=Path, help="where the three run directories go")
    args = parser.parse_args()
    prepare_environment(LOOPBACK + ":0")
    out = args.out or Path(tempfile.mkdtemp(prefix="ray-must-show-"))
    with local_cluster(nodes=2) as cluster, ScriptedOpenAIServer(
        SelfInstructResponder(), latency_s=args.latency
    ) as server:
        print(f"cluster {cluster.address} (2 nodes, 1 CPU each); server {server.base_url}; "
              f"runs in {out}")  # fmt: skip
        os.environ.pop("RAY_ADDRESS", None)
        clean_run(cluster, server.base_url, args.target, out / "clean")
        killed_run(cluster, server.base_url, args.target, out / "killed")
        node_lost_run(cluster, server.base_url, args.target, out / "node-lost")


if __name__ == "__main__":
    main()
