"""The client's CPU work per finished instruction, counted in machine instructions (callgrind).

``python bench/instructions.py [--against DIR] [--small 100] [--large 300]``. On a shared VM
whose speed drifts by 10-40% within an hour (and with no hardware counters), CPU seconds
compare only back to back and then only within ~15%; valgrind's callgrind counts the
instructions a process executes, the same within ~0.1% run to run. Each code (``--against``
first, e.g. a worktree of the commit an issue was filed at, then this checkout) runs
``selfinstruct generate --api chat --max-concurrency 64`` under callgrind at two sizes
against a zero-latency scripted server in another process (the one ``throughput.py`` uses),
and the difference gives the instructions per finished instruction with start-up taken out:
``(I(large) - I(small)) / (done(large) - done(small))``. Start-up is what is left at the
small size. Slow (~50x under valgrind: ~1 min a 100 instructions): the sizes are small.

It counts work, not time: a change that trades instructions for memory stalls (or the reverse)
shows here as it does not in seconds. ``throughput.py`` measures seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import server  # the bench's own scripted server, in a process


def counted_run(url: str, instructions: int, code: str | None) -> tuple[int, int]:
    """``generate`` under callgrind: (machine instructions executed, instructions done)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable, "-m", "selfinstruct", "generate", "--api", "chat", "-q",
            "--base-url", url, "--model", "m", "--max-concurrency", "64",
            "-n", str(instructions), "--out", f"{tmp}/run",
            "--set", "teacher.probe_capabilities=false",
        ]  # fmt: skip
        env = {**os.environ, "XDG_CACHE_HOME": tmp}  # an empty response cache every run
        done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
        counted = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or counted is None:
            raise SystemExit(f"generate under callgrind failed:\n{done.stderr[-2000:]}")
        manifest = json.loads((Path(tmp) / "run" / "manifest.json").read_text())
        return int(counted.group(1)), int(manifest["counts"]["instructions_done"])


def measure(url: str, small: int, large: int, code: str | None) -> tuple[float, float]:
    """(machine instructions per finished instruction, start-up instructions)."""
    few, few_done = counted_run(url, small, code)
    many, many_done = counted_run(url, large, code)
    per = (many - few) / (many_done - few_done)
    return per, few - per * few_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="a checkout to measure first, as the reference")
    parser.add_argument("--small", type=int, default=100, help="instructions, smaller run")
    parser.add_argument("--large", type=int, default=300, help="instructions, larger run")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    if args.large <= args.small:
        raise SystemExit("--large must be more than --small")
    codes = ([args.against] if args.against else []) + [None]
    print(f"generate --api chat --max-concurrency 64, L=0, under callgrind; "
          f"instructions {args.small} and {args.large}")  # fmt: skip
    print(f"{'code':40s} {'M instr/instruction':>20s} {'start-up G instr':>17s}")
    results = []
    with server(0.0, self_instruct=True) as (url, _):
        for code in codes:
            per, startup = measure(url, args.small, args.large, code)
            results.append(per)
            name = code or "this checkout"
            print(f"{name:40s} {per / 1e6:20.2f} {startup / 1e9:17.2f}", flush=True)
    if len(results) == 2:
        print(f"per instruction, this checkout / the reference's: {results[1] / results[0]:.3f}")


if __name__ == "__main__":
    main()
