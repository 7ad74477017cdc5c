"""How much the local teacher costs over calling llama.cpp directly.

    python bench/local_teacher.py [--tokens 256] [--runs 3] [--threads N] [--model-path FILE]

On one stage-1 style prompt, generates ``--tokens`` tokens with a raw
``llama_cpp.Llama.create_completion`` and with ``LocalTeacher.complete`` (same model file,
threads, context, seed and sampling; no stop sequences), alternating the two, after one
warm-up call each. A generation may end early at the model's end-of-text token; both sides
then stop at the same token (same seed, same text), so the headline rate is total tokens over
total time. Prints both rates and the ratio; the goal is a teacher within 10% of raw llama.cpp.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# the same OpenMP wait policy the teacher sets, so both sides run llama.cpp alike
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import llama_cpp

from selfinstruct.teachers.base import Request
from selfinstruct.teachers.local import LocalConfig, LocalTeacher

SEED_TASKS = [
    "Write a short poem about the sea at night.",
    "Summarize the following news article in two sentences.",
    "Give three tips for staying focused while studying.",
    "Translate the sentence into French.",
    "Classify the sentiment of the review as positive or negative.",
    "Explain why the sky is blue to a ten-year-old.",
    "Write a polite email declining a meeting invitation.",
    "List five uses for a paperclip other than holding paper.",
]
PROMPT = (
    "Come up with a series of tasks:\n"
    + "".join(f"Task {i}: {task}\n" for i, task in enumerate(SEED_TASKS, start=1))
    + "Task 9:"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=256, help="max_tokens per request")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (after warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="n_threads (default: cores)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument(
        "--model-path", type=Path, default=None, help="GGUF file (default: SmolLM2)"
    )
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=1234)
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    config = LocalConfig(
        model_path=args.model_path, n_threads=args.threads, n_ctx=args.n_ctx
    )
    teacher = LocalTeacher(config, seed=args.seed)
    await teacher.start()
    assert teacher.model_path is not None
    raw = llama_cpp.Llama(
        model_path=str(teacher.model_path),
        n_threads=teacher.n_threads,
        n_ctx=teacher.n_ctx,
        seed=args.seed,
        verbose=False,
    )

    def run_raw(seed: int) -> tuple[float, int, str]:
        started = time.perf_counter()
        out = raw.create_completion(
            PROMPT,
            max_tokens=args.tokens,
            temperature=args.temperature,
            top_p=1.0,
            stop=[],
            seed=seed,
        )
        elapsed = time.perf_counter() - started
        return elapsed, out["usage"]["completion_tokens"], out["choices"][0]["text"]

    async def run_teacher(seed: int) -> tuple[float, int, str]:
        request = Request(
            stage="instructions",
            prompt=PROMPT,
            max_tokens=args.tokens,
            temperature=args.temperature,
            top_p=1.0,
            seed=seed,
        )
        started = time.perf_counter()
        done = await teacher.complete(request)
        elapsed = time.perf_counter() - started
        return elapsed, done.usage.completion_tokens, done.text

    run_raw(args.seed)  # warm-up: page the weights in, fill each prefix cache
    await run_teacher(args.seed)

    raw_rates: list[float] = []
    teacher_rates: list[float] = []
    totals = {"raw": [0.0, 0], "teacher": [0.0, 0]}  # seconds, tokens
    mismatches = 0
    for run in range(args.runs):
        seed = args.seed + 1 + run
        r_time, r_tokens, r_text = run_raw(seed)
        t_time, t_tokens, t_text = await run_teacher(seed)
        mismatches += r_text != t_text
        raw_rates.append(r_tokens / r_time)
        totals["raw"][0] += r_time
        totals["raw"][1] += r_tokens
        totals["teacher"][0] += t_time
        totals["teacher"][1] += t_tokens
        teacher_rates.append(t_tokens / t_time)
        print(
            f"run {run + 1}: raw {r_tokens} tok in {r_time:.2f}s = {r_tokens / r_time:.1f} tok/s"
            f" | teacher {t_tokens} tok in {t_time:.2f}s = {t_tokens / t_time:.1f} tok/s"
        )
    await teacher.aclose()
    raw.close()

    raw_rate = totals["raw"][1] / totals["raw"][0]
    teacher_rate = totals["teacher"][1] / totals["teacher"][0]
    ratio = teacher_rate / raw_rate
    print(
        f"model {teacher.model}, n_threads {teacher.n_threads}, n_ctx {teacher.n_ctx}, "
        f"max_tokens {args.tokens}, runs {args.runs}, python {platform.python_version()}, "
        f"llama-cpp-python {llama_cpp.__version__}"
    )
    print(
        f"raw llama.cpp : {raw_rate:.1f} tokens/s overall "
        f"({int(totals['raw'][1])} tokens; median of runs {statistics.median(raw_rates):.1f})"
    )
    print(
        f"LocalTeacher  : {teacher_rate:.1f} tokens/s overall ({int(totals['teacher'][1])} "
        f"tokens; median of runs {statistics.median(teacher_rates):.1f})"
    )
    verdict = "within 10%" if ratio >= 0.9 else "MORE than 10% slower"
    print(f"teacher / raw : {ratio:.3f} ({verdict})")
    if mismatches:
        print(f"note: {mismatches} run(s) generated different text (same seed expected same)")


if __name__ == "__main__":
    asyncio.run(main())
