"""The pipeline's schedule: stage 1 fills the slots at the start, expansions come first, and
nothing is started that the target does not need."""

from __future__ import annotations

from selfinstruct.jobs import Schedule


def rounds_started(plan: Schedule, done: int = 0, jobs: int = 0, backlog: int = 0) -> int:
    rounds = 0
    while plan.wants_round(done, jobs, rounds, backlog):
        rounds += 1
    return rounds


def test_stage_1_fills_the_slots_at_the_start() -> None:
    plan = Schedule(target=1000, slots=64, kept=1.0)
    assert rounds_started(plan) == 72  # one round a slot: every slot (and the queue) busy
    plan = Schedule(target=1000, slots=64, kept=5.0)  # the pipeline's prior for 20 asked
    assert rounds_started(plan) == 72  # nothing to expand yet: a free slot would only idle
    assert rounds_started(plan, backlog=1) == 13  # 1 + 13 x 5 waiting cover the 64 slots
    assert rounds_started(Schedule(target=100, slots=64, kept=5.0)) == 20  # not past the target
    plan = Schedule(target=1000, slots=64, kept=5.0, max_rounds=17)  # round k waits for k - 16
    assert rounds_started(plan) == 17


def test_stage_1_feeds_the_jobs_and_never_runs_past_the_target() -> None:
    plan = Schedule(target=1000, slots=64)
    for _ in range(99):
        plan.round_done(3)  # the yield seen: ~3 a round
    assert 2.9 < plan.per_round < 3.1
    assert rounds_started(plan, jobs=60) == 12  # room: 64 + 8 - 60
    assert rounds_started(plan, jobs=30, backlog=60) == 2  # the backlog covers the slots
    # no room (72 jobs), but the backlog will run dry before a round comes back: rounds start
    # while what is ahead is under a quarter of the slots (16): 2 + 5 x ~3 >= 16
    assert rounds_started(plan, jobs=72, backlog=2) == 5
    assert rounds_started(plan, jobs=72, backlog=20) == 1  # only when none is in flight
    assert rounds_started(plan, done=990, jobs=8) == 1  # 2 short: one round keeps ~3
    assert rounds_started(plan, done=990, jobs=10) == 0  # the jobs cover the target
    assert rounds_started(Schedule(target=5, slots=1)) == 1  # serial: one round at a time


def test_expansions_first_and_a_spare_job_at_the_end() -> None:
    plan = Schedule(target=100, slots=16)
    assert not plan.wants_job(done=0, jobs=0, rounds=18)  # the rounds fill the room (16 + 2)
    assert plan.wants_job(done=0, jobs=0, rounds=17)  # a round ended: its slot goes to a job
    assert not plan.wants_round(done=0, jobs=1, rounds=17, backlog=2)  # not to another round
    assert not plan.wants_job(done=98, jobs=2, rounds=0)  # all jobs end well: two cover two
    for ok in [True] * 16 + [False] * 4:
        plan.job_done(ok)
    assert 0.8 < plan.success < 0.9
    assert plan.wants_job(done=98, jobs=2, rounds=0)  # some end without examples: a spare
    assert not plan.wants_job(done=98, jobs=3, rounds=0)
