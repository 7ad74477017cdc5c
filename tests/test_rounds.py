"""Stage-1 rounds in round order: numbering, demonstrations, decisions, given-up rounds; and
whole runs whose replies arrive in another order keep the same instructions."""

from __future__ import annotations

import asyncio
import dataclasses
import random

from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.records import Instruction
from selfinstruct.run.rounds import MAX_FRUITLESS_REQUESTS, RoundOrder
from selfinstruct.run.store import RunState
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder


def kept(request: int, text: str) -> Instruction:
    return Instruction(
        id=f"i{request}", instruction=text, request=request, model="m", max_rouge=0.0
    )


def test_rounds_decide_in_number_order_whatever_order_their_replies_come_in():
    async def main() -> tuple[list[int], list[list[str]]]:
        state = RunState(next_request=3)  # rounds 0-2 were decided in an earlier session
        state.instructions = [kept(0, "a"), kept(2, "b")]
        order = RoundOrder(state, lag=1)
        decided: list[int] = []
        pools: list[list[str]] = []

        async def one_round(delay: float) -> None:
            async with order.numbered() as number:
                pools.append(list(await order.machine_pool(number, state.instructions)))
                await asyncio.sleep(delay)  # the reply
                await order.turn(number)
                decided.append(number)
                state.instructions.append(kept(number, f"from {number}"))

        # replies in reverse order of the rounds
        await asyncio.gather(*(one_round(0.01 * (4 - k)) for k in range(4)))
        return decided, pools

    decided, pools = asyncio.run(main())
    assert decided == [3, 4, 5, 6]
    # round k shows what rounds < k - 1 kept, whenever it started
    assert sorted(pools, key=len) == [
        ["a"], ["a", "b"], ["a", "b", "from 3"], ["a", "b", "from 3", "from 4"]
    ]  # fmt: skip


def test_a_given_up_round_does_not_hold_the_others_back():
    async def main() -> list[int]:
        state = RunState()
        order = RoundOrder(state, lag=16)
        decided: list[int] = []

        async def one_round(fail: bool) -> None:
            async with order.numbered() as number:
                await asyncio.sleep(0.01 if fail else 0)
                if fail:
                    raise RuntimeError("the teacher failed for good")
                await order.turn(number)
                decided.append(number)

        results = await asyncio.gather(
            one_round(False), one_round(True), one_round(False), return_exceptions=True
        )
        assert isinstance(results[1], RuntimeError)
        return decided

    assert asyncio.run(main()) == [0, 2]


def test_fruitless_rounds_are_counted_in_a_row():
    order = RoundOrder(RunState())
    assert all(order.count(0) is None for _ in range(MAX_FRUITLESS_REQUESTS - 1))
    assert order.count(3) is None  # a round that kept one starts the count again
    assert all(order.count(0) is None for _ in range(MAX_FRUITLESS_REQUESTS - 1))
    assert "kept no instruction" in order.count(0)


def test_two_runs_whose_replies_arrive_in_other_orders_keep_the_same_instructions(tmp_path):
    """Random latencies (another seed each run) reorder the replies; --no-cache, so both
    runs really ask."""
    texts = []
    for seed in (1, 2):
        jitter = random.Random(seed)
        answer = SelfInstructResponder()

        def responder(kind, body, answer=answer, jitter=jitter):
            reply = answer(kind, body)
            reply = reply if isinstance(reply, Reply) else Reply(text=reply)
            return dataclasses.replace(reply, delay_s=jitter.uniform(0, 0.03))

        out = tmp_path / f"run{seed}"
        with ScriptedOpenAIServer(responder) as server:
            args = [
                "generate", "--base-url", server.base_url, "--model", "X", "--api", "chat",
                "-n", "30", "--quiet", "--no-cache", "--max-concurrency", "16",
                "--set", "instructions_per_request=4", "--out", str(out),
            ]  # fmt: skip
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
        rows = [Instruction.model_validate_json(line) for line in
                (out / "instructions.jsonl").read_text().splitlines()]  # fmt: skip
        texts.append([(row.id, row.request, row.instruction) for row in rows])
    shorter = min(len(texts[0]), len(texts[1]))
    assert shorter >= 30
    assert texts[0][:shorter] == texts[1][:shorter]
