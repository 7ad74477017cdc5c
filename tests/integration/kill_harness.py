"""Kill a real ``selfinstruct generate`` with SIGKILL at random instants, resume, and audit.

Used by the default suite (``test_kill.py``, 10+ kills) and by ``make soak`` (50+ kills):

    python -m tests.integration.kill_harness --kills 50 --target 120

After every kill it snapshots the complete lines of each JSONL file; at the end it checks that
every snapshot is still a prefix of the final file (nothing written before a kill was lost or
rewritten), that every line validates, that no id appears twice, and that the run reached
exactly its target. It prints a one-line summary: kills, resumes, records, lost, duplicated.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.records import Example, Instruction, Rejection, TeacherCall
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

REPO = Path(__file__).resolve().parents[2]
FILES = {
    "instructions.jsonl": Instruction,
    "examples.jsonl": Example,
    "rejected.jsonl": Rejection,
    "requests.jsonl": TeacherCall,
}


@dataclass
class SoakResult:
    kills: int = 0
    resumes: int = 0
    records: int = 0
    lost: int = 0
    duplicated: int = 0
    invalid: int = 0
    instructions_done: int = 0
    target: int = 0
    final_exit: int | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"kills={self.kills} resumes={self.resumes} records={self.records} "
            f"lost={self.lost} duplicated={self.duplicated} invalid={self.invalid} "
            f"done={self.instructions_done}/{self.target} final_exit={self.final_exit}"
        )

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.lost == 0
            and self.duplicated == 0
            and self.invalid == 0
            and self.final_exit == 0
            and self.instructions_done == self.target
        )


def complete_lines(path: Path) -> bytes:
    """The file up to and including its last newline (a torn tail is not yet a record)."""
    if not path.exists():
        return b""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def start_run(
    base_url: str, out: Path, target: int, env: dict[str, str], extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "selfinstruct", "generate", "--base-url", base_url,
        "-n", str(target), "--out", str(out), "-q", "--max-concurrency", "4", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def soak(
    kills: int,
    target: int,
    out: Path,
    seed: int = 0,
    latency_s: float = 0.03,
    fault_rate: float = 0.0,
    max_delay_s: float = 2.0,
    extra: Sequence[str] = (),
) -> SoakResult:
    """Kill ``kills`` times at random instants, then let the run finish, and audit the files.
    ``extra``: more ``generate`` arguments (``--set stages.evolve.enabled=true``...)."""
    rng = random.Random(seed)
    result = SoakResult(target=target)
    snapshots: list[dict[str, bytes]] = []
    env = {"OPENAI_API_KEY": "sk-soak-SECRET"}
    with ScriptedOpenAIServer(
        SelfInstructResponder(), latency_s=latency_s, fault_rate=fault_rate, seed=seed
    ) as server:
        while result.kills < kills:
            process = start_run(server.base_url, out, target, env, extra)
            time.sleep(rng.uniform(0.05, max_delay_s))
            if process.poll() is not None:  # it finished before the kill: more work next time
                result.final_exit = process.returncode
                if process.returncode == 0:
                    result.problems.append(f"run finished before kill {result.kills + 1}")
                    break
                continue
            process.send_signal(signal.SIGKILL)
            process.wait()
            result.kills += 1
            snapshots.append({name: complete_lines(out / name) for name in FILES})
        while True:
            process = start_run(server.base_url, out, target, env, extra)
            result.resumes += 1
            result.final_exit = process.wait(timeout=600)
            if result.final_exit != 3:  # 3: the breaker tripped on injected faults; resume
                break
    audit(out, snapshots, result)
    return result


def audit(out: Path, snapshots: list[dict[str, bytes]], result: SoakResult) -> None:
    finals = {name: (out / name).read_bytes() if (out / name).exists() else b"" for name in FILES}
    for number, snapshot in enumerate(snapshots, start=1):
        for name, before in snapshot.items():
            if not finals[name].startswith(before):
                result.lost += 1
                result.problems.append(f"{name}: lines written before kill {number} changed")
    for name, model in FILES.items():
        ids: list[str] = []
        for line in finals[name].splitlines():
            result.records += 1
            try:
                row = model.model_validate_json(line)
            except ValueError:
                result.invalid += 1
                continue
            if isinstance(row, (Example, Instruction)):
                ids.append(row.id)
        result.duplicated += len(ids) - len(set(ids))
    examples = [Example.model_validate_json(x) for x in finals["examples.jsonl"].splitlines()]
    result.instructions_done = len({row.instruction_id for row in examples})
    everything = b"".join(p.read_bytes() for p in out.iterdir() if p.is_file())
    if b"sk-soak-SECRET" in everything:
        result.problems.append("the API key was written to the run directory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--target", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    # seconds the server takes per request: slow enough that the kills land before the run can
    # finish (at 0.03 s only 22 of 50 did once the client got faster, at 0.1 s 42)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        started = time.monotonic()
        result = soak(
            args.kills, args.target, out,
            seed=args.seed, fault_rate=args.fault_rate, latency_s=args.latency,
        )  # fmt: skip
        print(f"soak: {result.summary()} in {time.monotonic() - started:.0f} s")
        for problem in result.problems:
            print(f"  problem: {problem}")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
